"""``kubegate watch``: the gate as a daemon (DESIGN.md section 4).

Every ``interval`` the :class:`Watcher` asks the remote for the branch head (``git ls-remote``,
nothing cloned). A head with no verdict yet is judged once, with the same options as ``scan``
(the :class:`Judge` the CLI builds), published when it passes, and its verdict recorded in the
state file (:mod:`kubegate.publish.state`) after the publish finished; an unchanged head costs
one ``ls-remote`` and no scan. An UNPROVEN verdict is retried after ``retry_unproven`` (a registry
that was down should not need a new commit). When the advisory database changes, the approved
revision is judged again without publishing: a new blocking finding there sends an ``error``
notification ``ApprovedRevisionVulnerable`` (kubegate never un-publishes; the cluster keeps what
it runs and people decide).

HTTP (``--listen``): ``/healthz`` (the loop is alive), ``/readyz`` (advisory database present and
fresh), ``/metrics`` (Prometheus text format 0.0.4). ``stop`` (SIGTERM) ends the loop between
steps; a scan in progress finishes but is not published (the Judge checks ``stop`` before it
pushes), so a stop never leaves a partial publish. Never imports ``kubegate.cli``.
"""

from __future__ import annotations

import dataclasses
import http.server
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubegate.errors import KubegateError
from kubegate.publish.notify import Notifier, flux_event
from kubegate.publish.state import Approved, Record, WatchState

_logger = logging.getLogger(__name__)

#: Histogram buckets of the scan duration, in seconds.
BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
_REASONS = {
    "PASS": ("info", "RevisionApproved"),
    "BLOCKED": ("error", "RevisionBlocked"),
    "UNPROVEN": ("error", "RevisionUnproven"),
}


@dataclass(frozen=True, slots=True)
class Judgement:
    """The outcome of judging one revision (and publishing it, when asked and it passed)."""

    commit: str
    revision: str
    verdict: str
    counts: Mapping[str, int]
    blocking: int
    #: The published manifest digest (None: nothing was published).
    digest: str | None = None
    #: Why a passing revision was not published (a failed push, a stop), if so.
    publish_error: str | None = None
    summary: str = ""


class Judge(Protocol):
    """What the loop needs from the scan pipeline (the CLI implements it)."""

    def judge(self, commit: str | None, *, publish: bool) -> Judgement:
        """Judge the watched ref (``commit`` None) or one commit; publish when it passes."""

    def refresh_db(self) -> None:
        """Update the advisory database if it is due (errors only warn)."""

    def db_fingerprint(self) -> str | None:
        """Identifies the database content (None: no database)."""

    def db_status(self) -> tuple[bool, str, float | None]:
        """(ready, why, age in seconds) for ``/readyz`` and ``/metrics``."""


@dataclass
class Metrics:
    """Counters and gauges for ``/metrics`` (updated by the loop, read by the HTTP thread)."""

    scans: dict[str, int] = field(default_factory=dict)
    #: The duration histogram as Prometheus keeps it: a count per bucket of :data:`BUCKETS`
    #: (not cumulative), the sum and the count (a daemon must not keep every duration).
    bucket_counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    duration_sum: float = 0.0
    duration_count: int = 0
    last_findings: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    poll_errors: int = 0
    scan_errors: int = 0
    rejudgements: int = 0
    approved: tuple[str, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, duration: float) -> None:
        """Count one scan duration (call with :attr:`lock` held)."""
        for index, bound in enumerate(BUCKETS):
            if duration <= bound:
                self.bucket_counts[index] += 1
                break
        self.duration_sum += duration
        self.duration_count += 1

    def render(self, db_age: float | None, notify_failed: int) -> str:
        """The Prometheus text exposition."""
        with self.lock:
            out: list[str] = []
            _metric(out, "scans_total", "counter", "Revisions judged, by verdict.")
            out.extend(
                f'kubegate_watch_scans_total{{verdict="{verdict}"}} {self.scans.get(verdict, 0)}'
                for verdict in ("PASS", "BLOCKED", "UNPROVEN")
            )
            _metric(out, "scan_duration_seconds", "histogram", "Time to judge a revision.")
            count = 0
            for bound, in_bucket in zip(BUCKETS, self.bucket_counts, strict=True):
                count += in_bucket
                out.append(f'kubegate_watch_scan_duration_seconds_bucket{{le="{bound:g}"}} {count}')
            total = self.duration_count
            out.append(f'kubegate_watch_scan_duration_seconds_bucket{{le="+Inf"}} {total}')
            out.append(f"kubegate_watch_scan_duration_seconds_sum {self.duration_sum:.6f}")
            out.append(f"kubegate_watch_scan_duration_seconds_count {total}")
            _metric(
                out, "last_findings", "gauge", "Findings of the last judged revision by severity."
            )
            for severity in SEVERITIES:
                value = self.last_findings.get(severity, 0)
                out.append(f'kubegate_watch_last_findings{{severity="{severity}"}} {value}')
            _metric(out, "db_age_seconds", "gauge", "Age of the advisory database.")
            out.append(f"kubegate_watch_db_age_seconds {_number(db_age)}")
            _metric(out, "approved_info", "gauge", "The revision the moving tag points at.")
            if self.approved is not None:
                revision, digest = (_label(v) for v in self.approved)
                out.append(
                    f'kubegate_watch_approved_info{{revision="{revision}",digest="{digest}"}} 1'
                )
            for name, kind, text, value in (
                ("polls_total", "counter", "Branch head polls.", self.polls),
                ("poll_errors_total", "counter", "Polls that failed.", self.poll_errors),
                ("scan_errors_total", "counter", "Scans that raised.", self.scan_errors),
                (
                    "rejudgements_total",
                    "counter",
                    "Approved revision re-judged.",
                    self.rejudgements,
                ),
                ("notifications_failed_total", "counter", "Undelivered events.", notify_failed),
            ):
                _metric(out, name, kind, text)
                out.append(f"kubegate_watch_{name} {value}")
            return "\n".join(out) + "\n"


def _metric(out: list[str], name: str, kind: str, text: str) -> None:
    out.append(f"# HELP kubegate_watch_{name} {text}")
    out.append(f"# TYPE kubegate_watch_{name} {kind}")


def _number(value: float | None) -> str:
    return "NaN" if value is None else f"{value:.3f}"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Watcher:
    """The loop; :meth:`run` returns when ``stop`` is set."""

    def __init__(
        self,
        *,
        poll: Callable[[], str],
        judge: Judge,
        state: WatchState,
        notifier: Notifier,
        interval: float,
        stop: threading.Event,
        name: str,
        namespace: str = "flux-system",
        retry_unproven: float = 600.0,
        db_refresh: float = 3600.0,
    ) -> None:
        self.poll = poll
        self.judge = judge
        self.state = state
        self.notifier = notifier
        self.interval = interval
        self.stop = stop
        self.name = name
        self.namespace = namespace
        self.retry_unproven = retry_unproven
        self.db_refresh = db_refresh
        self.metrics = Metrics()
        self._last_refresh = time.monotonic()
        approved = state.approved
        if approved is not None:
            self.metrics.approved = (approved.revision, approved.digest)

    def run(self) -> None:
        """Poll until stopped."""
        while not self.stop.is_set():
            self.step()
            self.stop.wait(self.interval)

    def step(self) -> None:
        """One poll: judge a new head, re-judge the approved revision on a database change."""
        with self.metrics.lock:
            self.metrics.polls += 1
        try:
            head = self.poll()
        except KubegateError as exc:
            with self.metrics.lock:
                self.metrics.poll_errors += 1
            _logger.warning("poll failed: %s", exc.diagnostics())
            return
        if not self.state.judged(head, retry_unproven=self.retry_unproven):
            self.judge.refresh_db()
            self._last_refresh = time.monotonic()
            self._judge_head()
        if self.stop.is_set():
            return
        if time.monotonic() - self._last_refresh >= self.db_refresh:
            self.judge.refresh_db()
            self._last_refresh = time.monotonic()
        fingerprint = self.judge.db_fingerprint()
        approved = self.state.approved
        if fingerprint is None or fingerprint == self.state.fingerprint:
            return
        if approved is None:
            self.state.set_fingerprint(fingerprint)
            return
        self._rejudge(approved, fingerprint)

    def _judge_head(self) -> None:
        fingerprint = self.judge.db_fingerprint()
        started = time.monotonic()
        try:
            judgement = self.judge.judge(None, publish=True)
        except KubegateError as exc:
            with self.metrics.lock:
                self.metrics.scan_errors += 1
            _logger.error("cannot judge the head: %s", exc.diagnostics())
            return
        self._observe(judgement, time.monotonic() - started)
        if judgement.publish_error is not None:
            # Not recorded: the next poll judges (and tries to publish) it again.
            if not self.stop.is_set():
                self._notify(judgement, "error", "RevisionUnproven", judgement.publish_error)
            _logger.error("%s not published: %s", judgement.revision, judgement.publish_error)
            return
        approved = judgement.digest is not None
        self.state.record(
            Record(
                judgement.commit,
                judgement.revision,
                judgement.verdict,
                judgement.digest,
                judgement.counts,
            ),
            approved=approved,
            db_fingerprint=fingerprint,
        )
        if approved and judgement.digest:
            with self.metrics.lock:
                self.metrics.approved = (judgement.revision, judgement.digest)
        severity, reason = _REASONS.get(judgement.verdict, ("error", "RevisionUnproven"))
        self._notify(judgement, severity, reason, judgement.summary)

    def _rejudge(self, approved: Approved, fingerprint: str) -> None:
        _logger.info("advisory database changed: judging the approved revision again")
        try:
            judged = self.judge.judge(approved.commit, publish=False)
        except KubegateError as exc:
            with self.metrics.lock:
                self.metrics.scan_errors += 1
            _logger.error("cannot re-judge %s: %s", approved.revision, exc.diagnostics())
            return
        # Checked out by its commit, it is still the revision that was approved (its branch).
        judgement = dataclasses.replace(judged, revision=approved.revision)
        with self.metrics.lock:
            self.metrics.rejudgements += 1
            self.metrics.last_findings = dict(judgement.counts)
        if judgement.verdict == "UNPROVEN":
            _logger.warning("re-judging %s was not conclusive; retrying", judgement.revision)
            return
        self.state.record(
            Record(
                judgement.commit,
                judgement.revision,
                judgement.verdict,
                None,
                judgement.counts,
                kind="rejudge",
            ),
            approved=False,
            db_fingerprint=fingerprint,
        )
        if judgement.verdict == "BLOCKED":
            message = (
                f"the approved revision {judgement.revision} now blocks after an advisory update "
                f"({judgement.blocking} blocking finding(s)); it stays published: "
                f"{judgement.summary}"
            )
            self._notify(
                judgement,
                "error",
                "ApprovedRevisionVulnerable",
                message,
                digest=approved.digest,
            )

    def _observe(self, judgement: Judgement, duration: float) -> None:
        with self.metrics.lock:
            self.metrics.scans[judgement.verdict] = self.metrics.scans.get(judgement.verdict, 0) + 1
            self.metrics.observe(duration)
            self.metrics.last_findings = dict(judgement.counts)
        _logger.info("%s: %s in %.1fs", judgement.revision, judgement.verdict, duration)

    def _notify(
        self,
        judgement: Judgement,
        severity: str,
        reason: str,
        message: str,
        *,
        digest: str | None = None,
    ) -> None:
        metadata = {"revision": judgement.revision}
        if digest or judgement.digest:
            metadata["digest"] = digest or judgement.digest or ""
        self.notifier.send(
            flux_event(
                name=self.name,
                namespace=self.namespace,
                severity=severity,
                reason=reason,
                message=message,
                metadata=metadata,
            )
        )


class StatusServer:
    """``/healthz``, ``/readyz``, ``/metrics`` on a background thread."""

    def __init__(self, host: str, port: int, watcher: Watcher) -> None:
        owner = watcher

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._reply(200, "ok\n")
                elif path == "/readyz":
                    ready, why, _ = owner.judge.db_status()
                    self._reply(200 if ready else 503, f"{why}\n")
                elif path == "/metrics":
                    _, _, age = owner.judge.db_status()
                    body = owner.metrics.render(age, owner.notifier.failed)
                    self._reply(200, body, "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._reply(404, "not found\n")

            def _reply(self, status: int, body: str, kind: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                _logger.debug("http: %s", format % args)

        try:
            self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise KubegateError(f"cannot listen: {exc.strerror}", where=f"{host}:{port}") from exc
        self._server.daemon_threads = True
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kubegate-http", daemon=True
        )

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
