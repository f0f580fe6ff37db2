"""``kubegate watch`` end to end, in a subprocess: a real git repository (``file://``), the real
loopback registry for images and for the published artifacts, advisories imported by the real
importer, a loopback receiver for notifications, ``/metrics`` scraped over HTTP. Waits poll
with generous deadlines; nothing asserts on timing.
"""

from __future__ import annotations

import http.server
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import cli_env
from tests.fixtures import fluxartifact as flux
from tests.fixtures.gatefleet import FIXED, UNFIXED, VULNERABLE, fleet_repo, gate_layer
from tests.fixtures.gitserve import free_port, git
from tests.fixtures.oci import build_image
from tests.fixtures.registry import ForwardingProxy, QuietHTTPServer, RegistryServer, Reply, Seen

DEADLINE = 120.0


@pytest.fixture(scope="module")
def images(registry_plain: RegistryServer) -> dict[str, str]:
    registry_plain.push("watch/web", "vulnerable", build_image([gate_layer(*VULNERABLE)]))
    registry_plain.push("watch/web", "fixed", build_image([gate_layer(*FIXED)]))
    return {
        "vulnerable": registry_plain.ref("watch/web", "vulnerable"),
        "fixed": registry_plain.ref("watch/web", "fixed"),
    }


class Receiver:
    """A loopback webhook recording every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.events.append(json.loads(self.rfile.read(length)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def wait_for(what: str, predicate: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Watch:
    """One ``kubegate watch`` process."""

    def __init__(self, tmp: Path, cache: Path, args: list[str]) -> None:
        self.port = free_port()
        self.log = tmp / f"watch-{self.port}.log"
        env = cli_env({"KUBEGATE_CACHE_DIR": str(cache), "NO_COLOR": "1"})
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "kubegate", "watch", *args,
                    "--interval", "1s", "--listen", f"127.0.0.1:{self.port}", "--skip-db-update",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp,
            )  # fmt: skip

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)
        except httpx.HTTPError:
            return None

    def metrics(self) -> dict[str, float]:
        response = self.get("/metrics")
        if response is None:
            return {}
        values = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _commit_image(work: Path, image: str) -> str:
    web = work / "apps" / "web.yaml"
    text = web.read_text()
    start = text.index("image: ") + len("image: ")
    web.write_text(text[:start] + image + "\n")
    git("commit", "-q", "-am", f"use {image}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def _scans(watch: Watch, verdict: str) -> float:
    return watch.metrics().get(f'kubegate_watch_scans_total{{verdict="{verdict}"}}', 0.0)


def test_new_commit_one_scan_publish_unchanged_head_no_scan_restart_remembers(
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
    receiver: Receiver,
) -> None:
    work, first = fleet_repo(tmp_path / "work", images["fixed"])
    cache = tmp_path / "cache"
    target = f"oci://{registry_plain.host}/watch/one"
    args = [work.as_uri(), "--ref", "main", "--publish", target, "--db", str(gate_dbs["osv"])]
    # A second receiver that is down: warnings and a metric, never a stalled gate.
    args += ["--notify", receiver.url, "--notify", "http://127.0.0.1:9/"]
    watch = Watch(tmp_path, cache, args)
    try:
        wait_for("the first verdict", lambda: receiver.events)
        (event,) = receiver.events
        assert (event["severity"], event["reason"]) == ("info", "RevisionApproved")
        assert event["involvedObject"]["kind"] == "GitRepository"
        assert event["reportingController"] == "kubegate"
        metadata = event["metadata"]
        assert metadata["source.toolkit.fluxcd.io/revision"] == f"main@sha1:{first}"
        with registry_plain.http() as client:
            approved = flux.fetch_artifact(client, "watch/one", "approved")
            assert flux.tags(client, "watch/one") == ["approved", f"main-{first[:12]}"]
        assert metadata["source.toolkit.fluxcd.io/digest"] == approved["digest"]
        # The head does not move: polls go on, no second scan.
        polls = watch.metrics()["kubegate_watch_polls_total"]
        wait_for(
            "three more polls", lambda: watch.metrics()["kubegate_watch_polls_total"] > polls + 3
        )
        assert _scans(watch, "PASS") == 1 and len(receiver.events) == 1
        metrics = watch.metrics()
        assert metrics["kubegate_watch_scan_duration_seconds_count"] == 1
        assert metrics['kubegate_watch_scan_duration_seconds_bucket{le="+Inf"}'] == 1
        assert metrics["kubegate_watch_db_age_seconds"] >= 0
        approved_info = (
            f'kubegate_watch_approved_info{{revision="main@sha1:{first}",'
            f'digest="{approved["digest"]}"}}'
        )
        assert metrics[approved_info] == 1
        health, ready = watch.get("/healthz"), watch.get("/readyz")
        assert health is not None and health.status_code == 200
        assert ready is not None and ready.status_code == 200
        # A vulnerable commit: one scan, blocked, nothing published.
        second = _commit_image(work, images["vulnerable"])
        wait_for("the second verdict", lambda: len(receiver.events) == 2)
        blocked = receiver.events[1]
        assert (blocked["severity"], blocked["reason"]) == ("error", "RevisionBlocked")
        assert blocked["metadata"]["source.toolkit.fluxcd.io/revision"] == f"main@sha1:{second}"
        assert "source.toolkit.fluxcd.io/digest" not in blocked["metadata"]
        assert _scans(watch, "BLOCKED") == 1
        assert watch.metrics()['kubegate_watch_last_findings{severity="CRITICAL"}'] > 0
        with registry_plain.http() as client:
            assert (
                flux.fetch_artifact(client, "watch/one", "approved")["digest"] == approved["digest"]
            )
        wait_for(
            "the failed deliveries",
            lambda: watch.metrics()["kubegate_watch_notifications_failed_total"] >= 2,
        )
        assert watch.stop() == 0, watch.output()
    finally:
        watch.stop(signal.SIGKILL)
    assert "Traceback" not in watch.output()
    assert "notification to http://127.0.0.1:9/ failed" in watch.output()
    # A restart neither re-judges nor forgets: no scan, and it still knows what is approved.
    again = Watch(tmp_path, cache, args)
    try:
        wait_for(
            "polls after the restart",
            lambda: again.metrics().get("kubegate_watch_polls_total", 0) >= 3,
        )
        assert _scans(again, "PASS") == _scans(again, "BLOCKED") == 0
        assert again.metrics()[approved_info] == 1
        assert len(receiver.events) == 2
        assert again.stop() == 0
    finally:
        again.stop(signal.SIGKILL)


def test_database_update_rejudges_the_approved_revision(
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
    receiver: Receiver,
) -> None:
    from kubegate.vulndb import import_paths

    db = tmp_path / "osv.sqlite3"
    shutil.copyfile(gate_dbs["osv"], db)
    work, first = fleet_repo(tmp_path / "work", images["fixed"])
    target = f"oci://{registry_plain.host}/watch/rejudge"
    args = [work.as_uri(), "--ref", "main", "--publish", target, "--db", str(db)]
    watch = Watch(tmp_path, tmp_path / "cache", [*args, "--notify", receiver.url])
    try:
        wait_for("the approval", lambda: receiver.events)
        assert receiver.events[0]["reason"] == "RevisionApproved"
        with registry_plain.http() as client:
            approved = flux.fetch_artifact(client, "watch/rejudge", "approved")["digest"]
        # A new advisory: an unfixed critical flaw in the approved image's zlib.
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "CVE-2099-1000.json").write_text(json.dumps(UNFIXED))
        import_paths(db, [extra])
        wait_for("the re-judgement", lambda: len(receiver.events) == 2)
        event = receiver.events[1]
        assert (event["severity"], event["reason"]) == ("error", "ApprovedRevisionVulnerable")
        assert event["metadata"]["source.toolkit.fluxcd.io/revision"] == f"main@sha1:{first}"
        assert event["metadata"]["source.toolkit.fluxcd.io/digest"] == approved
        assert "now blocks" in event["message"] and "1 blocking finding" in event["message"]
        assert watch.metrics()["kubegate_watch_rejudgements_total"] == 1
        # Never un-published.
        with registry_plain.http() as client:
            assert flux.fetch_artifact(client, "watch/rejudge", "approved")["digest"] == approved
        assert watch.stop() == 0
    finally:
        watch.stop(signal.SIGKILL)


class _Gate:
    """A loopback proxy in front of the registry that holds every request until released."""

    def __init__(self, upstream: str) -> None:
        self.release = threading.Event()
        self.seen = threading.Event()
        self._proxy = ForwardingProxy(upstream, self._hold)
        self.host = self._proxy.host

    def _hold(self, seen: Seen) -> Reply | None:
        self.seen.set()
        return None if self.release.wait(DEADLINE) else Reply(503)

    def stop(self) -> None:
        self.release.set()
        self._proxy.stop()


def test_kill_9_mid_scan_publishes_nothing_and_the_restart_finishes_the_job(
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    gate = _Gate(registry_plain.url)
    try:
        image = images["fixed"].replace(registry_plain.host, gate.host)
        work, first = fleet_repo(tmp_path / "work", image)
        cache = tmp_path / "cache"
        target = f"oci://{registry_plain.host}/watch/killed"
        args = [work.as_uri(), "--ref", "main", "--publish", target, "--db", str(gate_dbs["osv"])]
        watch = Watch(tmp_path, cache, args)
        try:
            assert gate.seen.wait(DEADLINE), watch.output()  # the scan is resolving the image
            watch.process.kill()
            assert watch.process.wait(timeout=30) == -signal.SIGKILL
        finally:
            watch.stop(signal.SIGKILL)
        with registry_plain.http() as client:
            assert flux.tags(client, "watch/killed") == []
        (state,) = cache.glob("watch-*.sqlite3")
        with sqlite3.connect(state) as conn:
            assert conn.execute("SELECT COUNT(*) FROM verdicts").fetchone() == (0,)
        gate.release.set()
        again = Watch(tmp_path, cache, args)
        try:
            wait_for("the verdict after the restart", lambda: _scans(again, "PASS") == 1)
            with registry_plain.http() as client:
                assert flux.tags(client, "watch/killed") == ["approved", f"main-{first[:12]}"]
            with sqlite3.connect(state) as conn:
                rows = conn.execute("SELECT commit_sha, verdict, kind FROM verdicts").fetchall()
            assert rows == [(first, "PASS", "head")]
            assert again.stop() == 0
        finally:
            again.stop(signal.SIGKILL)
    finally:
        gate.stop()


def test_bad_watch_options_are_usage_errors(tmp_path: Path) -> None:
    env = cli_env({"KUBEGATE_CACHE_DIR": str(tmp_path / "cache")})
    for args, message in [
        ([str(tmp_path)], "expected a git repository"),
        (["file:///nowhere.git", "--interval", "soon"], "--interval"),
        (["file:///nowhere.git", "--listen", "8080"], "--listen"),
        (["file:///nowhere.git", "--notify", "ftp://x"], "--notify"),
        (["file:///nowhere.git", "--publish-tag", "x"], "--publish-tag"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "kubegate", "watch", *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 3, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


def test_policy_files_inside_the_watched_repository_are_refused_as_by_scan(
    tmp_path: Path,
) -> None:
    """watch loads its policy through scan's loader: every input file is checked against the
    judged source before it is read (was: --vex, --var-file and --ca-file were read unchecked)."""
    repo = tmp_path / "fleet"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "vex.json").write_text("{}")
    (repo / "vars.env").write_text("A=1\n")
    (repo / "ca.pem").write_text("not a CA\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "policy files of the watched repository", cwd=repo)
    env = cli_env({"KUBEGATE_CACHE_DIR": str(tmp_path / "cache")})
    for flag, name in [("--vex", "vex.json"), ("--var-file", "vars.env"), ("--ca-file", "ca.pem")]:
        result = subprocess.run(
            [sys.executable, "-m", "kubegate", "watch", repo.as_uri(), flag, str(repo / name)],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 3, (flag, result.stderr)
        assert f"kubegate: error: {flag}: " in result.stderr, result.stderr
        assert "inside the judged source" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_mid_scan_finishes_the_scan_and_publishes_nothing(
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    registry_plain: RegistryServer,
) -> None:
    gate = _Gate(registry_plain.url)
    try:
        image = images["fixed"].replace(registry_plain.host, gate.host)
        work, _ = fleet_repo(tmp_path / "work", image)
        cache = tmp_path / "cache"
        target = f"oci://{registry_plain.host}/watch/stopped"
        args = [work.as_uri(), "--ref", "main", "--publish", target, "--db", str(gate_dbs["osv"])]
        watch = Watch(tmp_path, cache, args)
        try:
            assert gate.seen.wait(DEADLINE), watch.output()
            watch.process.send_signal(signal.SIGTERM)
            gate.release.set()
            assert watch.process.wait(timeout=DEADLINE) == 0, watch.output()
        finally:
            watch.stop(signal.SIGKILL)
        assert "nothing was published" in watch.output()
        with registry_plain.http() as client:
            assert flux.tags(client, "watch/stopped") == []
        (state,) = cache.glob("watch-*.sqlite3")
        with sqlite3.connect(state) as conn:
            assert conn.execute("SELECT COUNT(*) FROM verdicts").fetchone() == (0,)
    finally:
        gate.stop()
