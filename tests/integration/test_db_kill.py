"""A ``kill -9`` at any point of a real import leaves the previous database usable.

The import runs as a real ``kubegate db import`` subprocess over a generated 30,000-record zip;
it is killed (SIGKILL) at several points after its transaction started (the rollback journal
exists), then the database is opened and queried: it must hold exactly the previous records.
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
from tests.fixtures.osvdb import OSV_DATA

RECORDS = 30_000


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "Debian-all.zip"
    write_zip(path, RECORDS)
    return path


def _start_import(db: Path, archive: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kubegate", "db", "import", str(archive), "--db", str(db)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_inside_transaction(proc: subprocess.Popen[bytes], db: Path, delay: float) -> None:
    journal = db.with_name(db.name + "-journal")
    deadline = time.monotonic() + 60
    while not journal.exists():
        assert proc.poll() is None, "import ended before its transaction was seen"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    assert proc.poll() is None, "import finished before the kill: enlarge the corpus"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.45])
def test_kill_during_import_keeps_previous_db(tmp_path: Path, big_zip: Path, delay: float) -> None:
    db = tmp_path / "osv.db"
    import_paths(db, [OSV_DATA / "debian", OSV_DATA / "nvd"])
    with VulnDB(db) as before:
        expected = before.status().records
    proc = _start_import(db, big_zip)
    _kill_inside_transaction(proc, db, delay)
    assert db.with_name(db.name + "-journal").exists()  # a hot journal was left behind
    with VulnDB(db) as after:
        assert after.status().records == expected
        assert [row.id for row in after.affecting("Debian:10", "zlib")] == ["DLA-3103-1"]
        assert after.affecting("Debian:12", "linux") == []
    if delay:
        return
    # The database is still writable: the same import now completes.
    stats = import_paths(db, [big_zip])
    assert stats.added == RECORDS
    with VulnDB(db) as done:
        assert done.status().records == expected + RECORDS


def test_kill_during_first_import_leaves_empty_usable_db(tmp_path: Path, big_zip: Path) -> None:
    db = tmp_path / "fresh.db"
    proc = _start_import(db, big_zip)
    _kill_inside_transaction(proc, db, 0.2)
    with VulnDB(db) as after:
        assert after.status().records == 0
        assert after.status().ecosystems == ()
