"""``kubegate db update`` and the scans' refresh as a user runs them (real subprocess, a real
bucket-shaped tree on 127.0.0.1, the real loopback registry for ``kubegate image``).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

from kubegate.vulndb import import_paths
from tests.conftest import REPO, RunCli
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.nvdfeed import NvdTree
from tests.fixtures.oci import build_image
from tests.fixtures.osvbucket import BucketTree, osv_record
from tests.fixtures.registry import RegistryServer
from tests.integration.test_image_cli import _image


def _tree() -> BucketTree:
    tree = BucketTree()
    for path in sorted((REPO / "examples" / "osv").glob("*.json")):
        tree.put("Debian", json.loads(path.read_text()))
    return tree.put(
        "Alpine",
        osv_record(
            "ALPINE-CVE-2025-1", "2025-01-01T00:00:00Z", ecosystem="Alpine:v3.20", name="musl"
        ),
    )


def test_update_then_status(run_cli: RunCli, http_serve: HTTPServe, tmp_path: Path) -> None:
    url = _tree().publish(http_serve)
    db = str(tmp_path / "osv.db")
    args = ("db", "update", "--source", url, "--db", db, "--ecosystem", "Debian")
    result = run_cli(*args, "--ecosystem", "alpine")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = import_paths(tmp_path / "baseline.db", [REPO / "examples" / "osv"]).added
    assert lines[0].startswith(f"Debian: full: {expected} added") and "KiB fetched" in lines[0]
    assert lines[1].startswith("Alpine: full: 1 added")
    # Off a TTY: plain progress lines on stderr, the size announced before the download.
    assert "full download of 2 feed(s)" in result.stderr
    assert "Debian: downloading all.zip" in result.stderr
    status = json.loads(run_cli("db", "status", "--db", db, "--format", "json").stdout)
    assert [e["ecosystem"] for e in status["ecosystems"]] == ["Alpine", "Debian"]
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Debian: unchanged")


def test_unknown_ecosystem_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("db", "update", "--ecosystem", "Debain", "--db", str(tmp_path / "d"))
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert "unknown ecosystem 'Debain'; known: Debian, Ubuntu, Alpine, Red Hat" in line


def test_bad_source_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    for source in ("ftp://mirror.example/osv", "http://", str(tmp_path / "none")):
        result = run_cli("db", "update", "--source", source, "--db", str(tmp_path / "d"))
        assert result.returncode == 3, (source, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"kubegate: error: --source {source}: ")


def test_network_failure_is_one_line_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("db", "update", "--db", str(tmp_path / "d"), "-q")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kubegate: error: Debian, Ubuntu, Alpine")
    assert "update failed" in line and "127.0.0.1:9" in line
    assert "Traceback" not in result.stderr


def test_server_error_keeps_other_ecosystems(
    run_cli: RunCli, http_serve: HTTPServe, tmp_path: Path
) -> None:
    url = _tree().publish(http_serve)
    http_serve.add("Alpine/all.zip", b"", status=404)
    db = str(tmp_path / "osv.db")
    result = run_cli(
        "db",
        "update",
        "--source",
        url,
        "--db",
        db,
        "--ecosystem",
        "Debian",
        "--ecosystem",
        "Alpine",
    )
    assert result.returncode == 2
    assert result.stdout.startswith("Debian: full")
    assert (
        result.stderr.strip().splitlines()[-1].endswith("Alpine/all.zip: not in the bucket (404)")
    )


def test_image_scan_builds_missing_db_from_mirror(
    run_cli: RunCli, http_serve: HTTPServe, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    ref = registry_plain.ref("dbupdate/web", "1.0")
    registry_plain.push(
        "dbupdate/web", "1.0", build_image([_image("1.1.1d-0+deb10u6", "1:1.2.11.dfsg-1")])
    )
    url = _tree().publish(http_serve)
    # The mirror's NVD feeds (NVD's layout under nvd/, every yearly feed and the modified one):
    # the demo's excerpt (examples/nvd) rates the findings, OSV's Debian records rate nothing.
    nvd = NvdTree().put("modified")
    for year in range(2002, datetime.now(UTC).year + 1):
        nvd.put(str(year))
    for path in sorted((REPO / "examples" / "nvd").glob("nvdcve-2.0-*.json.gz")):
        items = json.loads(gzip.decompress(path.read_bytes()))["vulnerabilities"]
        nvd.put(path.name.removeprefix("nvdcve-2.0-").removesuffix(".json.gz"), *items)
    nvd.publish(http_serve, "nvd/")
    db = tmp_path / "scan.db"
    result = run_cli("image", ref, "--db", str(db), "--db-source", url, "--format", "json")
    assert result.returncode == 1, result.stderr  # built, then the image was judged
    assert db.is_file() and http_serve.requests["/Debian/all.zip"] == 2
    report = json.loads(result.stdout)
    assert any(f["id"] == "CVE-2021-3711" for f in report["findings"])
    # Fresh now: the next scan asks nothing of the bucket.
    before = sum(http_serve.requests.values())
    again = run_cli("image", ref, "--db", str(db), "--db-source", url)
    assert again.returncode == 1
    assert sum(http_serve.requests.values()) == before
    # --skip-db-update with an unreachable source and a missing database: exit 2, one line.
    missing = run_cli("image", ref, "--db", str(tmp_path / "none.db"), "-q")
    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert "no advisory database and the update failed" in line
