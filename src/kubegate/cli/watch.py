"""``kubegate watch GIT_URL``: poll a branch, judge each new head like ``scan``, publish passes.

Takes the options of ``scan`` (policy, exceptions, VEX, database, registry, render, config file:
mount it from a ConfigMap; nothing of the policy ever comes from the watched repository) plus
``--interval``, ``--listen`` and ``--notify``. The loop, state, metrics and notifications are
:mod:`kubegate.publish.watch`'s; this module builds the :class:`~kubegate.publish.watch.Judge`
from the scan pipeline and handles SIGTERM/SIGINT. Exit 0 after a clean stop, 3 on bad options.
Documented in docs/publish.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kubegate.cli.common import (
    DEFAULT_TIMEOUT,
    add_limit_arguments,
    add_output_arguments,
    add_registry_arguments,
    add_render_arguments,
    revision_request,
    transfer_limits,
)
from kubegate.cli.publish_options import add_publish_arguments
from kubegate.cli.revision_options import (
    add_allowed_registries_argument,
    add_helm_arguments,
    configured_request,
    open_fetcher,
)
from kubegate.cli.scan import (
    DEFAULT_CONCURRENCY,
    LoadedPolicy,
    judge_revision,
    load_policy,
    update_db,
)
from kubegate.cli.scan_options import (
    add_db_arguments,
    add_db_update_arguments,
    add_policy_arguments,
)
from kubegate.decide.policy import parse_duration
from kubegate.errors import KubegateError, UsageError
from kubegate.transfer import RetryBudget
from kubegate.trust import JudgedTree

if TYPE_CHECKING:
    from kubegate.publish import DatabaseView, PublishOptions
    from kubegate.publish.watch import Judgement
    from kubegate.registry import RegistryOptions
    from kubegate.scan import RevisionRequest

_logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = "1m"
DEFAULT_LISTEN = "127.0.0.1:8080"


def register(subparsers: Any) -> None:
    """Add the ``watch`` sub-command."""
    parser = subparsers.add_parser(
        "watch",
        help="poll a git branch, judge each new head, publish those that pass",
        description="A long-running gate: judge every new head of a branch with the options of "
        "scan, publish passing revisions as Flux OCI artifacts, serve health and metrics.",
    )
    parser.add_argument("source", metavar="GIT_URL", help="git repository URL (or path with --ref)")
    parser.add_argument("--ref", help="branch to follow (default: the remote's default branch)")
    parser.add_argument("--path", default="", help="path inside the source to render")
    add_render_arguments(parser)
    add_helm_arguments(parser)
    add_policy_arguments(parser)
    parser.add_argument("--ignorefile", type=Path, help="exceptions file (as for scan)")
    parser.add_argument("--vex", action="append", type=Path, metavar="FILE", help="OpenVEX file")
    add_allowed_registries_argument(parser)
    parser.add_argument("--config", type=Path, help="configuration file (mount a ConfigMap)")
    add_db_arguments(parser)
    parser.set_defaults(db_max_age=None)
    add_db_update_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    add_limit_arguments(parser, default_timeout=DEFAULT_TIMEOUT, timeout_help="bound each scan")
    add_registry_arguments(parser)
    add_publish_arguments(parser)
    parser.add_argument(
        "--interval",
        default=DEFAULT_INTERVAL,
        metavar="DURATION",
        help=f"time between two polls of the branch head (default {DEFAULT_INTERVAL})",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address of /healthz, /readyz and /metrics (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="POST a Flux-style event per verdict to URL (repeatable)",
    )
    parser.add_argument(
        "--retry-unproven",
        default="10m",
        metavar="DURATION",
        help="judge an UNPROVEN head again after this long (default 10m)",
    )
    add_output_arguments(parser)
    # What scan has and watch does not: policy never comes from the watched repository.
    parser.set_defaults(
        run=run,
        fail_open=False,
        artifact_url=None,
        artifact_digest=None,
        config_ref=None,
        trust_source_config=False,
        write_into_source=False,
    )


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"expected HOST:PORT, got {text!r}", where="--listen")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    """Watch until SIGTERM/SIGINT; 0 after a clean stop."""
    from kubegate.cachedir import cache_dir
    from kubegate.publish.notify import Notifier
    from kubegate.publish.state import WatchState, state_path
    from kubegate.publish.watch import StatusServer, Watcher
    from kubegate.source import head_commit, local_root

    interval = parse_duration(args.interval, option="--interval").total_seconds()
    retry = parse_duration(args.retry_unproven, option="--retry-unproven").total_seconds()
    if interval <= 0:
        raise UsageError("must be positive", where="--interval")
    host, port = _listen(args.listen)
    if args.concurrency < 1:
        raise UsageError("must be at least 1", where="--concurrency")
    if args.publish_tag is not None:
        raise UsageError(
            "watch publishes many revisions, each under its own tag", where="--publish-tag"
        )
    for url in args.notify:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"expected an http(s) URL, got {url!r}", where="--notify")
    limits = transfer_limits(args, time.monotonic(), arm_watchdog=False)
    # Policy as for scan (the same loading and checks): the user config dir or explicit files,
    # never the judged repository (docs/security.md); a daemon has no process-wide deadline,
    # each scan gets its own.
    request = revision_request(args)
    # A wrong URL or ref (or no git source at all) is reported first, not after the first sleep.
    head_commit(request.source)
    judged = JudgedTree(root=local_root(request.source), trust_config=False, write_into=False)
    with contextlib.ExitStack() as stack:  # no --config-ref: nothing is entered on it
        loaded = load_policy(args, request.source, judged, stack, limits)
    config = loaded.config
    request = configured_request(request, args, config)
    stop = threading.Event()
    judge = ScanJudge(
        args=args,
        loaded=loaded,
        registry=loaded.registry,
        publishing=loaded.publishing,
        request=request,
        stop=stop,
    )
    target = str(judge.publishing.target) if judge.publishing else ""
    path = state_path(cache_dir(), request.source.location, args.ref or "", target)
    notifier = Notifier(args.notify)
    name = Path(request.source.location.rstrip("/")).name.removesuffix(".git") or "kubegate"
    with WatchState(path) as state:
        watcher = Watcher(
            poll=lambda: head_commit(request.source),
            judge=judge,
            state=state,
            notifier=notifier,
            interval=interval,
            stop=stop,
            name=name,
            retry_unproven=retry,
        )
        server = StatusServer(host, port, watcher)

        def _stop(signum: int, frame: FrameType | None) -> None:
            _logger.info("signal %s: stopping after the current step", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        server.start()
        notifier.start()
        _logger.info(
            "watching %s%s every %gs; publishing to %s; http on %s; state %s",
            request.source.location,
            f" ({args.ref})" if args.ref else "",
            interval,
            target or "nowhere",
            server.address,
            path,
        )
        try:
            watcher.run()
        finally:
            server.close()
            notifier.close()
    _logger.info("stopped")
    return 0


@dataclasses.dataclass
class ScanJudge:
    """The scan pipeline as the watch loop's :class:`~kubegate.publish.watch.Judge`."""

    args: argparse.Namespace
    loaded: LoadedPolicy
    registry: RegistryOptions
    publishing: PublishOptions | None
    request: RevisionRequest
    stop: threading.Event
    #: The database's summary, read again only when its file changes.
    database: DatabaseView = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        from kubegate.publish import DatabaseView

        self.database = DatabaseView(self.loaded.db_path)

    def refresh_db(self) -> None:
        """The scan's update step; a failure only warns (the freshness check decides)."""
        try:
            update_db(self.args, self.loaded, self.registry.limits)
        except KubegateError as exc:
            _logger.warning("advisory database update failed: %s", exc.diagnostics())

    def db_fingerprint(self) -> str | None:
        """Digest of every import time and record count (ecosystems, NVD, Debian tracker)."""
        try:
            summary = self.database.summary()
        except KubegateError:
            return None
        return summary.fingerprint if summary is not None else None

    def db_status(self) -> tuple[bool, str, float | None]:
        """(ready, why, age of the newest import in seconds)."""
        import datetime as dt

        try:
            summary = self.database.summary()
        except KubegateError as exc:
            return False, exc.diagnostics(), None
        if summary is None:
            return False, "no advisory database", None
        imports = summary.imports
        if not imports:
            return False, "the advisory database is empty", None
        now = dt.datetime.now(dt.UTC)
        max_age = self.loaded.settings.max_age
        if now - min(imports) > max_age:
            return False, f"advisories older than {max_age}", (now - min(imports)).total_seconds()
        return True, "ready", (now - max(imports)).total_seconds()

    def judge(self, commit: str | None, *, publish: bool) -> Judgement:
        """Read, render and judge the ref (or ``commit``); publish a pass when asked."""
        from kubegate.publish import Snapshot, publish_result, refusal
        from kubegate.publish.watch import Judgement
        from kubegate.registry import RegistryClient
        from kubegate.scan import read_revision

        started = time.monotonic()
        source = dataclasses.replace(self.request.source, ref=commit or self.request.source.ref)
        request = dataclasses.replace(self.request, source=source)
        snapshot = Snapshot() if publish and self.publishing else None
        timeout = self.loaded.settings.timeout
        deadline = None if timeout is None else started + timeout
        # Each scan its own deadline and retry budget: a daemon must not spend them once for all.
        registry = dataclasses.replace(
            self.registry,
            limits=dataclasses.replace(self.registry.limits, deadline=deadline),
            retry_budget=RetryBudget(),
        )
        request = dataclasses.replace(request, deadline=deadline)
        try:
            with open_fetcher(
                registry,
                allowed=self.loaded.settings.policy.registry_allowed,
                deadline=deadline,
            ) as fetcher:
                revision = read_revision(
                    dataclasses.replace(request, fetcher=fetcher),
                    on_checkout=snapshot.capture if snapshot else None,
                )
            result, updated = judge_revision(
                revision,
                self.loaded.settings,
                self.loaded.config,
                registry,
                self.loaded.db_path,
                deadline=deadline,
                workers=1,
                database=self.database if snapshot is not None else None,
            )
            digest = error = None
            if snapshot is not None and self.publishing and refusal(result) is None:
                if self.stop.is_set():
                    error = "stopping: the scan finished but nothing was published"
                else:
                    try:
                        with RegistryClient(registry) as client:
                            published = publish_result(
                                result,
                                snapshot,
                                self.publishing,
                                client,
                                database_updated=updated,
                            )
                        digest = published.digest
                    except KubegateError as exc:
                        error = exc.diagnostics()
        finally:
            if snapshot is not None:
                snapshot.close()
        counts = Counter(f.finding.severity.name for image in result.images for f in image.findings)
        blocking = sum(len(image.blocking) + len(image.violations) for image in result.images)
        info = revision.info
        summary = (
            f"{result.verdict.value}: {len(result.images)} image(s), {blocking} blocking "
            f"finding(s), {len(result.blocking_unseen)} not proven"
        )
        if digest:
            summary += (
                f"; published {self.publishing.target.url if self.publishing else ''}@{digest}"
            )
        return Judgement(
            commit=info.commit or commit or "",
            revision=info.revision or info.location,
            verdict=result.verdict.value,
            counts=dict(counts),
            blocking=blocking,
            digest=digest,
            publish_error=error,
            summary=summary,
        )
