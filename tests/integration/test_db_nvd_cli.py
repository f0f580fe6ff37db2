"""``kubegate db import|status`` with NVD 2.0 feeds and the Debian tracker (real subprocess)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kubegate.vulndb import VulnDB
from tests.conftest import RunCli
from tests.fixtures.nvdfeed import (
    NvdTree,
    feed_document,
    nvd_cve,
    tracker_document,
    tracker_entry,
    v31,
)
from tests.fixtures.osvdb import OSV_DATA

HIGH = v31(7.5, "HIGH", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H")


def test_import_feeds_tracker_and_osv_together(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    feeds = (
        NvdTree()
        .put("2021", nvd_cve("CVE-2021-3711", metrics={"cvssMetricV31": [HIGH]}))
        .put("2022", nvd_cve("CVE-2022-37434"), nvd_cve("CVE-2022-0001", status="Rejected"))
        .write_dir(tmp_path / "feeds")
    )
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes(
        tracker_document({"openssl": {"CVE-2021-3711": tracker_entry({"bullseye": "high"})}})
    )
    result = run_cli(
        "db",
        "import",
        str(OSV_DATA / "debian"),
        str(feeds / "nvdcve-2.0-2021.json.gz"),
        str(feeds / "nvdcve-2.0-2022.json.gz"),
        str(tracker),
        "--db",
        str(db),
    )
    assert result.returncode == 0, result.stderr
    assert "imported 3 NVD CVEs from 2 feed(s)" in result.stdout
    assert "3 added, 0 replaced, 0 unchanged, 0 invalid (skipped)" in result.stdout
    assert "Debian security tracker" in result.stdout and "1 CVE entries" in result.stdout
    assert "  Debian: " in result.stdout  # the OSV part as before
    with VulnDB(db) as held:
        assert held.nvd(["CVE-2021-3711"])["CVE-2021-3711"].metrics[0].score == 7.5
        assert held.debian_urgency("CVE-2021-3711", "openssl", "11") == "high"

    status = run_cli("db", "status", "--db", str(db), "--format", "json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["nvd"]["cves"] == 3
    assert document["nvd"]["newestModified"].startswith("2024-01-01T00:00:00")
    assert document["nvd"]["lastImport"] and document["nvd"]["lastFullFetch"] is None
    assert document["debianTracker"]["entries"] == 1 and document["debianTracker"]["lastImport"]
    table = run_cli("db", "status", "--db", str(db))
    assert any(line.split()[:2] == ["NVD", "3"] for line in table.stdout.splitlines())
    assert any(line.startswith("Debian tracker") for line in table.stdout.splitlines())


def test_plain_json_feed_without_meta(run_cli: RunCli, tmp_path: Path) -> None:
    feed = tmp_path / "nvdcve-2.0-2024.json"
    feed.write_bytes(feed_document([nvd_cve("CVE-2024-0001")]))
    result = run_cli("db", "import", str(feed), "--db", str(tmp_path / "d.db"))
    assert result.returncode == 0, result.stderr
    assert "imported 1 NVD CVEs from 1 feed(s)" in result.stdout


def test_bad_meta_sha_exits_2_and_keeps_db(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    feeds = NvdTree().put("2024", nvd_cve("CVE-2024-0001")).write_dir(tmp_path / "feeds")
    assert run_cli("db", "import", str(OSV_DATA / "debian"), "--db", str(db)).returncode == 0
    (feeds / "nvdcve-2.0-2024.meta").write_text("sha256:" + "A" * 64 + "\n")
    before = db.read_bytes()
    result = run_cli("db", "import", str(feeds / "nvdcve-2.0-2024.json.gz"), "--db", str(db))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kubegate: error: ") and "nvdcve-2.0-2024.json.gz" in line
    assert "its .meta says " + "A" * 64 in line
    assert db.read_bytes() == before


def test_truncated_feed_exits_2_and_keeps_db(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    assert run_cli("db", "import", str(OSV_DATA / "debian"), "--db", str(db)).returncode == 0
    data = gzip.compress(feed_document([nvd_cve(f"CVE-2024-{n:04d}") for n in range(1, 300)]))
    feed = tmp_path / "nvdcve-2.0-2024.json.gz"
    feed.write_bytes(data[: len(data) * 2 // 3])
    before = db.read_bytes()
    result = run_cli("db", "import", str(feed), "--db", str(db))
    assert result.returncode == 2
    assert "cannot read NVD feed" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before


def test_random_bytes_named_json_gz_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    assert run_cli("db", "import", str(OSV_DATA / "debian"), "--db", str(db)).returncode == 0
    before = db.read_bytes()
    # Fixed pseudo-random bytes, one with the gzip magic in front (a corrupt gzip stream).
    noise = bytes((n * 197 + 89) % 256 for n in range(4096))
    for name, data in (("noise.json.gz", noise), ("bad-gzip.json.gz", b"\x1f\x8b" + noise)):
        path = tmp_path / name
        path.write_bytes(data)
        result = run_cli("db", "import", str(path), "--db", str(db))
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line == (
            f"kubegate: error: {path}: neither an NVD 2.0 feed nor the Debian tracker JSON "
            "(unreadable gzip or another document)"
        )
    assert db.read_bytes() == before
