"""A ``kill -9`` during a real ``kubegate db update`` leaves the previous database usable.

The update runs as a subprocess against a 30,000-record generated ``Debian/all.zip`` served on
127.0.0.1. It is killed (SIGKILL) while the download is pending and inside the import's
transaction; the database must then hold exactly the previous records, and the next update must
complete (removing the killed run's temp dir).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.corpus import write_zip

from kubegate.vulndb import VulnDB, import_paths
from tests.conftest import cli_env
from tests.fixtures.httpserve import HTTPServe, Route
from tests.fixtures.osvdb import OSV_DATA

RECORDS = 30_000


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("corpus") / "all.zip"
    write_zip(path, RECORDS)
    return path.read_bytes()


def _serve(server: HTTPServe, archive: bytes) -> str:
    server.add("Debian/all.zip", archive)
    server.add("Debian/modified_id.csv", b"2025-12-31T00:00:00Z,DSA-1-1\n")
    return server.url("/")


def _start(db: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubegate",
            "db",
            "update",
            "--ecosystem",
            "Debian",
            "--source",
            url,
            "--db",
            str(db),
        ],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(proc: subprocess.Popen[bytes], seen: object) -> None:
    deadline = time.monotonic() + 60
    while not seen():  # type: ignore[operator]
        assert proc.poll() is None, "update ended before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.005)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, "update finished before the kill: enlarge the corpus"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def _previous(db: Path) -> int:
    import_paths(db, [OSV_DATA / "debian"])
    with VulnDB(db) as before:
        return before.status().records


def _check_unchanged(db: Path, expected: int) -> None:
    with VulnDB(db) as after:
        assert after.status().records == expected
        assert [row.id for row in after.affecting("Debian:10", "zlib")] == ["DLA-3103-1"]
        assert after.affecting("Debian:12", "linux") == []
        assert after.meta("osv-cursor:") == {}


def _complete(db: Path, url: str, expected: int) -> None:
    proc = _start(db, url)
    assert proc.wait(timeout=120) == 0
    with VulnDB(db) as done:
        assert done.status().records == expected + RECORDS
        assert done.meta("osv-cursor:") == {"osv-cursor:Debian": "2025-12-31T00:00:00Z"}
    assert not list(db.parent.glob(".kubegate-update-*"))


def test_kill_while_downloading(tmp_path: Path, http_serve: HTTPServe, big_zip: bytes) -> None:
    db = tmp_path / "osv.db"
    expected = _previous(db)
    url = _serve(http_serve, big_zip)
    # The size HEAD answers at once; the GET hangs: the update is killed mid-download.
    http_serve.add_sequence("Debian/all.zip", [Route(big_zip), Route(big_zip, delay=3)])
    proc = _start(db, url)
    _wait_for(proc, lambda: http_serve.requests["/Debian/all.zip"] >= 2)
    _kill(proc)
    assert list(tmp_path.glob(".kubegate-update-*"))  # the killed run's private temp dir
    _check_unchanged(db, expected)
    _complete(db, url, expected)


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_kill_while_importing(
    tmp_path: Path, http_serve: HTTPServe, big_zip: bytes, delay: float
) -> None:
    db = tmp_path / "osv.db"
    expected = _previous(db)
    url = _serve(http_serve, big_zip)
    proc = _start(db, url)
    journal = db.with_name(db.name + "-journal")
    _wait_for(proc, journal.exists)
    time.sleep(delay)
    _kill(proc)
    _check_unchanged(db, expected)
    if not delay:
        _complete(db, url, expected)
