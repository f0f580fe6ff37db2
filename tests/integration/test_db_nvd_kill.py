"""A ``kill -9`` during a real ``kubegate db update`` of NVD feeds leaves the old database usable.

The update runs as a subprocess against a generated 20,000-CVE feed (bench/nvdcorpus.py, shaped
like the real ones) served on 127.0.0.1 as the mirror's ``nvd/nvdcve-2.0-modified.json.gz``
(every yearly feed is served too, empty). It is killed inside the NVD import's transaction; the
database must then hold exactly what it held before, and the next update must complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.nvdcorpus import write_modified

from kubegate.vulndb import VulnDB, import_paths
from tests.conftest import cli_env
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.nvdfeed import NvdTree
from tests.fixtures.osvbucket import BucketTree, osv_record
from tests.fixtures.osvdb import OSV_DATA

CVES = 20_000
KUBEGATE = (sys.executable, "-m", "kubegate")


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("nvd")
    write_modified(directory, CVES // 2, CVES // 2)
    tree = NvdTree()
    for year in range(2002, datetime.now(UTC).year + 1):
        tree.put(str(year))
    tree.write_dir(directory)
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def _start(db: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*KUBEGATE, "db", "update", "--ecosystem", "Debian", "--source", url, "--db", str(db)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_while_importing_nvd(
    tmp_path: Path, http_serve: HTTPServe, feeds: dict[str, bytes]
) -> None:
    db = tmp_path / "osv.db"
    import_paths(db, [OSV_DATA / "debian"])
    with VulnDB(db) as before:
        records = before.status().records
    # The mirror's OSV part (one record, applied before NVD) and its nvd/ directory.
    BucketTree().put("Debian", osv_record("DSA-9-1", "2024-01-01T00:00:00Z")).publish(http_serve)
    http_serve.add_many({f"nvd/{name}": data for name, data in feeds.items()})
    proc = _start(db, http_serve.url("/"))
    journal = db.with_name(db.name + "-journal")
    deadline = time.monotonic() + 90
    # Wait for the big feed's download, then for the import's journal.
    while not (http_serve.requests["/nvd/nvdcve-2.0-modified.json.gz"] and journal.exists()):
        assert proc.poll() is None, "update ended before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    with VulnDB(db) as after:
        assert after.status().records == records + 1
        assert after.nvd(["CVE-2025-00001", "CVE-2026-00001"]) == {}
        # The run is one transaction: nothing of it is held.
        assert after.nvd_status() is None
        assert [row.id for row in after.affecting("Debian:10", "zlib")] == ["DLA-3103-1"]
    # The next update completes (and removes the killed run's temp dir).
    proc = _start(db, http_serve.url("/"))
    assert proc.wait(timeout=120) == 0
    with VulnDB(db) as done:
        status = done.nvd_status()
        assert status is not None and status.cves == CVES and status.last_full is not None
    assert not list(db.parent.glob(".kubegate-update-*"))
