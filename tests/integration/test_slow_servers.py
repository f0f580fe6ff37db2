"""Time is bounded: a registry or advisory mirror that trickles, stalls or refuses for ever ends
the command with exit 2 and a clear line, within the idle timeout, the minimum rate, the deadline
and the retry budget (docs/security.md "Time and memory are bounded").

The hostile servers are written here: :class:`TrickleServer` is a loopback TCP server (threads)
that answers every HTTP request one byte a second, either the whole response (status line and
headers included) or only the body after fast headers; it refuses TLS (a ClientHello's first
byte is 0x16) so that kubegate's HTTPS-then-HTTP fallback for loopback registries reaches it at
once, and it stops by itself after ``lifetime`` seconds. The 429/500 mirror is the suite's
:class:`~tests.fixtures.httpserve.HTTPServe`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubegate.transfer import RetryBudget
from kubegate.vulndb.fetch import FetchOptions
from kubegate.vulndb.update import update
from tests.conftest import RunCli
from tests.fixtures.gatefleet import write_fleet
from tests.fixtures.httpserve import HTTPServe, Route

#: A manifest-sized body: far more than a trickle delivers before any limit trips.
_BODY = b"{" + b" " * 4096 + b"}"


class TrickleServer:
    """HTTP on 127.0.0.1 at ``rate`` bytes per second (see the module docstring)."""

    def __init__(self, *, headers_too: bool, lifetime: float = 150.0, rate: float = 1.0) -> None:
        self.headers_too = headers_too
        self.lifetime = lifetime
        self.interval = 1.0 / rate
        self.requests: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        #: ``127.0.0.1:PORT``.
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._until = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self._listener:
            while time.monotonic() < self._until:
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                head = conn.recv(65536)
            except OSError:
                return
            if not head or head[0] == 0x16:  # TLS ClientHello: this server speaks plain HTTP
                return
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.requests.append(line)
            if line.startswith("HEAD "):  # no digest header: the client GETs the manifest
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                return
            if line.startswith("GET /v2/ ") and not self.headers_too:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                return
            headers = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                f"Content-Length: {len(_BODY)}\r\n\r\n"
            ).encode()
            trickled = headers + _BODY
            if not self.headers_too:
                conn.sendall(headers)
                trickled = _BODY
            for byte in trickled:
                if time.monotonic() > self._until:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what the test wants
                time.sleep(self.interval)

    def stop(self) -> None:
        """End the accept loop now (handlers end at their next byte)."""
        self._until = 0.0
        self._thread.join(timeout=5)


@contextlib.contextmanager
def trickle(*, headers_too: bool) -> Iterator[TrickleServer]:
    server = TrickleServer(headers_too=headers_too)
    try:
        yield server
    finally:
        server.stop()


#: Small limits so that the tests take seconds: a 2 s window, 1 KiB/s floor.
FAST = ("--idle-timeout", "2", "--min-rate", "1024")


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("kubegate: error:")]
    assert errors, stderr
    return errors[-1]


def test_image_from_a_registry_trickling_headers_ends_on_the_rate_floor(
    run_cli: RunCli, gate_dbs: dict[str, Path]
) -> None:
    with trickle(headers_too=True) as server:
        started = time.monotonic()
        result = run_cli(
            "image", f"{server.host}/slow/app:1.0", "--db", str(gate_dbs["osv"]), *FAST
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result.stderr)
    assert f"{server.host}/slow/app:1.0" in line
    assert "slower than 1024 bytes/s over 2s (minimum rate)" in line
    # Not retried: one request (the ping) reached the trickling server.
    assert server.requests == ["GET /v2/ HTTP/1.1"]
    assert elapsed < 30


def test_sbom_of_a_registry_trickling_a_manifest_body_ends_on_the_rate_floor(
    run_cli: RunCli,
) -> None:
    with trickle(headers_too=False) as server:
        started = time.monotonic()
        result = run_cli("sbom", f"{server.host}/slow/app:1.0", *FAST)
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result.stderr)
    assert "reading from the registry failed" in line and "(minimum rate)" in line
    assert any(r.startswith("GET /v2/slow/app/manifests/1.0 ") for r in server.requests)
    assert elapsed < 30


def test_scan_of_a_trickling_registry_is_not_proven(
    run_cli: RunCli, tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    with trickle(headers_too=True) as server:
        fleet = write_fleet(tmp_path / "fleet", f"{server.host}/slow/app:1.0")
        started = time.monotonic()
        result = run_cli(
            "scan", str(fleet), "--db", str(gate_dbs["osv"]), "--format", "json", *FAST
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "UNPROVEN"
    (unseen,) = report["unseen"]
    assert unseen["kind"] == "image" and "(minimum rate)" in unseen["message"]
    assert "not proven" in _one_error_line(result.stderr)
    assert elapsed < 30


def test_scan_deadline_cuts_a_trickle_that_meets_no_other_limit(
    run_cli: RunCli, tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    # --min-rate 0: only the deadline is left to stop a registry sending a byte a second.
    with trickle(headers_too=True) as server:
        fleet = write_fleet(tmp_path / "fleet", f"{server.host}/slow/app:1.0")
        started = time.monotonic()
        result = run_cli(
            "scan", str(fleet), "--db", str(gate_dbs["osv"]), "--format", "json",
            "--min-rate", "0", "--timeout", "4",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert [u["kind"] for u in report["unseen"]] == ["timeout"]
    assert "--timeout" in _one_error_line(result.stderr)
    assert elapsed < 30


@pytest.mark.timeout(240)
def test_default_limits_end_a_one_byte_per_second_registry_within_two_minutes(
    run_cli: RunCli, gate_dbs: dict[str, Path]
) -> None:
    # No limit given: the defaults (idle 30 s, 10 KiB/s over 30 s, 15 min overall) must do.
    with trickle(headers_too=True) as server:
        started = time.monotonic()
        result = run_cli(
            "image", f"{server.host}/slow/app:1.0", "--db", str(gate_dbs["osv"]), timeout=200
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "(minimum rate)" in _one_error_line(result.stderr)
    assert elapsed < 120


def _refusing_mirror(server: HTTPServe, status: int) -> None:
    """Every path answers ``status`` (with ``Retry-After: 1`` for 429), for ever."""
    headers: dict[str, str | None] = {"Retry-After": "1"} if status == 429 else {}
    server.fallback = Route(b"busy\n", status, headers)


def test_db_update_from_a_429_mirror_ends_at_its_deadline(
    run_cli: RunCli, tmp_path: Path, http_serve: HTTPServe
) -> None:
    _refusing_mirror(http_serve, 429)
    started = time.monotonic()
    result = run_cli(
        "db", "update", "--db", str(tmp_path / "db.sqlite3"), "--source", http_serve.url(),
        "--ecosystem", "Debian", "--ecosystem", "Alpine", "--timeout", "4",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result.stderr)
    # The NVD feeds (fetched after the OSV ones, from <mirror>/nvd/) fail the same way.
    assert line.startswith(
        ("kubegate: error: Debian, Alpine: update failed:", "kubegate: error: Debian, Alpine, NVD:")
    )
    assert "answered 429" in line or "HTTP 429" in line
    assert "deadline (--timeout) passed" in line
    assert elapsed < 20


def test_db_update_retries_within_one_budget_for_the_whole_update(
    tmp_path: Path, http_serve: HTTPServe
) -> None:
    # Before the budget every request had its own retries: thousands of records x 5 attempts
    # x up to 60 s. Now the whole update stops after the budget's retries, whatever remains.
    _refusing_mirror(http_serve, 500)
    budget = RetryBudget(max_retries=3, max_seconds=60)
    options = FetchOptions(retries=4, backoff=0.01, max_retry_after=0.05, retry_budget=budget)
    started = time.monotonic()
    results = update(
        tmp_path / "db.sqlite3",
        ["Debian", "Alpine", "PyPI"],
        source=http_serve.url(),
        options=options,
    )
    elapsed = time.monotonic() - started
    assert [r.mode for r in results] == ["failed"] * 3
    errors = {r.error.diagnostics() for r in results if r.error is not None}
    (error,) = errors
    assert "HTTP 500; not retried: retry budget spent (3 retries)" in error
    # 1 first attempt + 3 retries, then nothing more for any ecosystem.
    assert sum(http_serve.requests.values()) == 4
    assert elapsed < 10


def test_db_update_through_the_environment_proxy_is_bounded_too(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # Advisory downloads honour http_proxy (registries do not): the proxy connection goes
    # through the same bounded transport. The trickling server plays the proxy; the mirror's
    # host does not even resolve, so an answer can only have come through the proxy.
    with trickle(headers_too=True) as proxy:
        url = f"http://{proxy.host}"
        env = {"http_proxy": url, "HTTP_PROXY": url, "no_proxy": "", "NO_PROXY": ""}
        result = run_cli(
            "db", "update", "--db", str(tmp_path / "db.sqlite3"),
            "--source", "http://mirror.invalid/", "--ecosystem", "Debian", *FAST, env=env,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    _one_error_line(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("kubegate: error:")]
    # One line per failed feed: the OSV one, then the NVD feeds under <mirror>/nvd/.
    (line,) = [e for e in errors if e.startswith("kubegate: error: Debian")]
    assert line.startswith("kubegate: error: Debian: update failed: http://mirror.invalid/")
    assert all("(minimum rate)" in e for e in errors)
    assert proxy.requests and all(" http://mirror.invalid/" in r for r in proxy.requests)
    assert any(" http://mirror.invalid/Debian/" in r for r in proxy.requests)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--timeout", "-1", "--timeout: must not be negative"),
        ("--idle-timeout", "0", "--idle-timeout: must be positive"),
        ("--min-rate", "-5", "--min-rate: must not be negative"),
    ],
)
def test_bad_limits_are_usage_errors(run_cli: RunCli, flag: str, value: str, message: str) -> None:
    result = run_cli("sbom", "127.0.0.1:9/app:1", flag, value)
    assert result.returncode == 3
    assert result.stderr.strip() == f"kubegate: error: {message}"


def test_flux_artifact_from_a_trickling_server_ends_on_the_rate_floor() -> None:
    # The artifact download shares the bounded transport: a drip no longer waits for the
    # 600 s download deadline.
    from kubegate.errors import SourceError
    from kubegate.source import SourceSpec, open_source
    from kubegate.source.limits import SourceLimits

    limits = SourceLimits(http_timeout=2, min_rate=1024, rate_window=2)
    with trickle(headers_too=False) as server:
        spec = SourceSpec(
            artifact_url=f"http://{server.host}/artifact.tar.gz",
            artifact_digest="sha256:" + "0" * 64,
            limits=limits,
        )
        started = time.monotonic()
        with pytest.raises(SourceError) as info, open_source(spec):
            pass
        elapsed = time.monotonic() - started
    assert "download failed" in info.value.message and "(minimum rate)" in info.value.message
    assert elapsed < 30
