"""Real severities end to end (issue "add NVD scores and fail closed without them").

The demo image (examples/images, Debian 10 nginx with the vulnerable openssl and zlib) judged
against the demo's real OSV Debian records (examples/osv: DSA/DLA, which rate nothing) with and
without the NVD 2.0 feed excerpt (examples/nvd, the published vectors), through the CLI and the
real importers. Custom NVD feeds and Debian tracker JSON follow the published shapes
(tests/fixtures/nvdfeed.py says where each shape comes from).
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO, RunCli
from tests.fixtures.nvdfeed import (
    CISA_ADP,
    NvdTree,
    nvd_cve,
    tracker_document,
    tracker_entry,
    v2,
    v31,
    v40,
)

IMAGE = "oci:examples/images/nginx-1.21.0:1.21.0"
NVD_FEEDS = sorted((REPO / "examples" / "nvd").glob("nvdcve-2.0-*.json.gz"))
FIX_LINE = (
    "13 finding(s) cannot be rated: the advisory database holds no NVD data; "
    "run `kubegate db update` (or import NVD feeds with `--nvd-source URL|DIR`)"
)
V31_98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def _primary_high_or_critical() -> set[str]:
    """The demo CVEs whose NVD Primary v3.1 rating is HIGH or CRITICAL, read from the excerpt."""
    found: set[str] = set()
    for path in NVD_FEEDS:
        for item in json.loads(gzip.decompress(path.read_bytes()))["vulnerabilities"]:
            cve = item["cve"]
            for metric in cve["metrics"].get("cvssMetricV31", ()):
                if metric["type"] == "Primary" and metric["cvssData"]["baseSeverity"] in {
                    "HIGH",
                    "CRITICAL",
                }:
                    found.add(cve["id"])
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of examples/ whose config imports only the OSV Debian records (no NVD)."""
    target = tmp_path / "repo" / "examples"
    shutil.copytree(REPO / "examples", target, ignore=shutil.ignore_patterns(".kubegate"))
    config = target / "flux-demo.kubegate.yaml"
    text = config.read_text()
    assert "import: [osv, nvd]" in text
    config.write_text(text.replace("import: [osv, nvd]", "import: [osv]"))
    return target.parent


def _scan(run_cli: RunCli, repo: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "scan",
        "examples/flux-demo",
        "--config",
        "examples/flux-demo.kubegate.yaml",
        *args,
        cwd=repo,
    )


def test_osv_debian_records_alone_are_not_proven_then_nvd_blocks_exactly(
    run_cli: RunCli, demo: Path
) -> None:
    result = _scan(run_cli, demo, "--format", "json")
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    (image,) = report["images"]
    assert {f["severity"] for f in image["findings"]} == {"UNKNOWN"}
    assert len(image["findings"]) == 13 == report["summary"]["withoutSeverity"]
    assert [u["message"] for u in report["unseen"]] == [FIX_LINE]
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"kubegate: error: not proven: {FIX_LINE}"]
    assert "Traceback" not in result.stderr

    # --fail-open: the missing source is a warning, the exit code 0.
    loose = _scan(run_cli, demo, "--fail-open", "-q")
    assert loose.returncode == 0, loose.stderr
    assert f"kubegate: warning: not proven: {FIX_LINE}" in loose.stderr

    # A policy that blocks UNKNOWN already blocks: no need for a rating.
    strict = _scan(run_cli, demo, "--severity", "CRITICAL,HIGH,UNKNOWN", "-q")
    assert strict.returncode == 1, strict.stderr
    assert "cannot be rated" not in strict.stderr

    # Import the NVD feed excerpt with `db import` into the same database: the same image now
    # blocks on exactly the CVEs NVD's own score rates HIGH or CRITICAL.
    db = demo / "examples" / ".kubegate" / "flux-demo.sqlite3"
    imported = run_cli("db", "import", *map(str, NVD_FEEDS), "--db", str(db))
    assert imported.returncode == 0, imported.stderr
    after = _scan(run_cli, demo, "--format", "json")
    assert after.returncode == 1, after.stderr
    report = json.loads(after.stdout)
    assert report["unseen"] == [] and report["summary"]["withoutSeverity"] == 0
    findings = report["images"][0]["findings"]
    blocking = {f["id"] for f in findings if f["blocking"]}
    assert blocking == _primary_high_or_critical()
    assert "CVE-2021-4160" not in blocking  # NVD: 5.9 MEDIUM
    assert {f["severitySource"] for f in findings} == {"nvd"}
    # CVE-2022-1292: NVD's own 7.3 HIGH wins over CISA-ADP's Secondary 9.8.
    c_rehash = next(f for f in findings if f["id"] == "CVE-2022-1292")
    assert (c_rehash["severity"], c_rehash["cvss"]) == (
        "HIGH",
        {"vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:H/I:H/A:H", "score": 7.3},
    )
    assert c_rehash["title"].startswith("The c_rehash script does not properly sanitise")


def _image(run_cli: RunCli, db: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "image", IMAGE, "--db", str(db), "--skip-db-update", "--format", "json", *args, cwd=REPO
    )


def _osv_db(run_cli: RunCli, tmp_path: Path) -> Path:
    db = tmp_path / "advisories.sqlite3"
    result = run_cli("db", "import", str(REPO / "examples" / "osv"), "--db", str(db))
    assert result.returncode == 0, result.stderr
    return db


def test_image_without_nvd_data_is_unproven_with_the_fix(run_cli: RunCli, tmp_path: Path) -> None:
    result = _image(run_cli, _osv_db(run_cli, tmp_path))
    assert result.returncode == 2, result.stderr
    assert f"kubegate: error: {IMAGE}: {FIX_LINE}" in result.stderr
    assert json.loads(result.stdout)["summary"]["UNKNOWN"] == 13
    # --ignore-unfixed does not help: every finding here has a fix, any severity could block.
    assert _image(run_cli, _osv_db(run_cli, tmp_path), "--ignore-unfixed").returncode == 2


def test_rejected_secondary_v2_and_tracker_urgencies(run_cli: RunCli, tmp_path: Path) -> None:
    db = _osv_db(run_cli, tmp_path)
    adp_v40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    tree = NvdTree()
    tree.put(
        "2021",
        # Rejected by its CNA: no finding at all.
        nvd_cve(
            "CVE-2021-3711",
            status="Rejected",
            metrics={"cvssMetricV31": [v31(9.8, "CRITICAL", V31_98)]},
        ),
        # NVD's own v2 only, a CNA's v3.1: Primary first, whatever its version.
        nvd_cve(
            "CVE-2021-3712",
            metrics={
                "cvssMetricV31": [
                    v31(9.1, "CRITICAL", V31_98, source="openssl-security@openssl.org")
                ],
                "cvssMetricV2": [v2(5.8, "MEDIUM", "AV:N/AC:M/Au:N/C:P/I:N/A:P")],
            },
        ),
        # The tracker's starred estimate is no rating: NVD decides.
        nvd_cve("CVE-2021-4160", metrics={"cvssMetricV31": [v31(5.9, "MEDIUM", V31_98)]}),
    )
    tree.put(
        "2022",
        # The tracker's "low" (Debian's rating) wins over NVD's HIGH.
        nvd_cve("CVE-2022-0778", metrics={"cvssMetricV31": [v31(7.5, "HIGH", V31_98)]}),
        # "not yet assigned" is no rating: NVD decides.
        nvd_cve("CVE-2022-1292", metrics={"cvssMetricV31": [v31(7.3, "HIGH", V31_98)]}),
        # Not analysed by NVD: no Primary metric, the ADP's (v4.0 before its v3.1) decides.
        nvd_cve(
            "CVE-2022-37434",
            status="Awaiting Analysis",
            metrics={
                "cvssMetricV40": [v40(9.3, "CRITICAL", adp_v40, source=CISA_ADP)],
                "cvssMetricV31": [v31(7.5, "HIGH", V31_98, source=CISA_ADP)],
            },
        ),
        # CVE-2022-2068 has no NVD entry at all: UNKNOWN, with NVD data present.
    )
    feeds = tree.write_dir(tmp_path / "nvd")
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes(
        tracker_document(
            {
                "openssl": {
                    "CVE-2021-4160": tracker_entry({"buster": "medium**"}),
                    "CVE-2022-0778": tracker_entry({"buster": "low", "bullseye": "high"}),
                    "CVE-2022-1292": tracker_entry({"buster": "not yet assigned"}),
                }
            }
        )
    )
    paths = [*map(str, sorted(feeds.glob("*.json.gz"))), str(tracker)]
    imported = run_cli("db", "import", *paths, "--db", str(db))
    assert imported.returncode == 0, imported.stderr
    result = _image(run_cli, db)
    report = json.loads(result.stdout)
    decided = {
        f["id"]: (f["severity"], f["severitySource"])
        for f in report["findings"]
        if f["package"]["name"] == "openssl" or f["id"] == "CVE-2022-37434"
    }
    assert decided == {
        "CVE-2021-3712": ("MEDIUM", "nvd"),
        "CVE-2021-4160": ("MEDIUM", "nvd"),
        "CVE-2022-0778": ("LOW", "debian"),
        "CVE-2022-1292": ("HIGH", "nvd"),
        "CVE-2022-2068": ("UNKNOWN", "none"),
        "CVE-2022-37434": ("CRITICAL", "secondary:CISA-ADP"),
    }
    zlib = next(f for f in report["findings"] if f["id"] == "CVE-2022-37434")
    assert zlib["cvss"] == {"vector": adp_v40, "score": 9.3}
    # NVD data is present and fresh: the UNKNOWN follows --severity and the image is blocked
    # by the HIGH and CRITICAL ones, not "not proven".
    assert result.returncode == 1, result.stderr
    assert "cannot be rated" not in result.stderr
    table = run_cli("image", IMAGE, "--db", str(db), "--skip-db-update", cwd=REPO)
    assert table.stdout.rstrip().endswith("; 2 without any severity")


def test_stale_nvd_rating_is_no_rating(run_cli: RunCli, tmp_path: Path) -> None:
    from kubegate.vulndb.nvdimport import feed_file, import_nvd

    db = _osv_db(run_cli, tmp_path)
    import_nvd(db, [feed_file(p) for p in NVD_FEEDS], now=datetime.now(UTC) - timedelta(days=10))
    # --severity CRITICAL: the HIGH and MEDIUM findings rated by 10-day-old NVD data would pass.
    result = _image(run_cli, db, "--severity", "CRITICAL", "--db-max-age", "120h")
    assert result.returncode == 1  # the CRITICAL ones still block
    medium = _image(run_cli, db, "--severity", "LOW", "--db-max-age", "120h")
    assert medium.returncode == 2, medium.stderr
    (line,) = [x for x in medium.stderr.splitlines() if "NVD data" in x]
    assert "its NVD data is 240." in line and "more than --db-max-age 120.0h" in line
    fresh = _image(run_cli, db, "--severity", "LOW", "--db-max-age", "30d")
    assert fresh.returncode == 0, fresh.stderr


def test_tracker_older_than_max_age_is_not_used(run_cli: RunCli, tmp_path: Path) -> None:
    from kubegate.vulndb.nvdimport import import_tracker

    db = _osv_db(run_cli, tmp_path)
    assert run_cli("db", "import", *map(str, NVD_FEEDS), "--db", str(db)).returncode == 0
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes(
        tracker_document({"openssl": {"CVE-2022-0778": tracker_entry({"buster": "low"})}})
    )
    import_tracker(db, tracker, now=datetime.now(UTC) - timedelta(days=10))

    def rating(*args: str) -> tuple[str, str]:
        report = json.loads(_image(run_cli, db, *args).stdout)
        found = next(f for f in report["findings"] if f["id"] == "CVE-2022-0778")
        return found["severity"], found["severitySource"]

    assert rating("--db-max-age", "30d") == ("LOW", "debian")
    # Stale: like an absent tracker, NVD's own score decides.
    assert rating("--db-max-age", "120h") == ("HIGH", "nvd")
