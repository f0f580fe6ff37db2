"""``db update``'s NVD and Debian tracker part against feeds served on 127.0.0.1.

The NVD layout is the public one (``nvdcve-2.0-YYYY.json.gz`` + ``.meta`` and the ``modified``
feed side by side, tests/fixtures/nvdfeed.py). ``now`` is fixed in 2004 so that a full run
checks three yearly feeds (2002..2004) plus the modified one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubegate.vulndb import VulnDB
from kubegate.vulndb.nvdimport import import_tracker
from kubegate.vulndb.update import EcosystemResult, SeveritySources, ensure_updated, update
from tests.conftest import RunCli
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.nvdfeed import NvdTree, nvd_cve, tracker_document, tracker_entry, v31
from tests.fixtures.osvbucket import BucketTree, osv_record

NOW = datetime(2004, 6, 1, tzinfo=UTC)
YEARS = ("2002", "2003", "2004")
CRITICAL = v31(9.8, "CRITICAL", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")


def _tree() -> NvdTree:
    tree = NvdTree()
    for year in YEARS:
        tree.put(year, nvd_cve(f"CVE-{year}-0001", f"{year}-02-01T00:00:00.000"))
    tree.put("modified", nvd_cve("CVE-2004-0002", "2004-05-30T00:00:00.000"))
    return tree


def _run(server: HTTPServe, now: datetime, db: Path) -> EcosystemResult:
    results = update(
        db,
        [],
        source=server.url("/"),
        severity=SeveritySources(server.url("nvd/"), None),
        now=now,
    )
    (result,) = results
    assert result.ecosystem == "NVD"
    return result


def _gets(server: HTTPServe, feed: str) -> tuple[int, int]:
    return (
        server.requests[f"/nvd/nvdcve-2.0-{feed}.meta"],
        server.requests[f"/nvd/nvdcve-2.0-{feed}.json.gz"],
    )


def test_first_run_full_then_modified_only_then_weekly_full(
    http_serve: HTTPServe, tmp_path: Path
) -> None:
    db = tmp_path / "osv.db"
    tree = _tree()
    tree.publish(http_serve)
    first = _run(http_serve, NOW, db)
    assert first.error is None and first.mode == "full"
    assert first.note == "4 feed(s) fetched, 0 unchanged"
    assert all(_gets(http_serve, feed) == (1, 1) for feed in (*YEARS, "modified"))
    with VulnDB(db) as held:
        status = held.nvd_status()
        assert status is not None
        assert (status.cves, status.last_full, status.last_import) == (4, NOW, NOW)

    # A day later: only the modified feed's .meta is read; unchanged, so not downloaded.
    second = _run(http_serve, NOW + timedelta(days=1), db)
    assert (second.mode, second.note) == ("incremental", "0 feed(s) fetched, 1 unchanged")
    assert _gets(http_serve, "2002") == (1, 1)
    assert _gets(http_serve, "modified") == (2, 1)

    # The modified feed changes: downloaded and applied; the newer lastModified wins.
    tree.put(
        "modified",
        nvd_cve("CVE-2002-0001", "2004-06-01T00:00:00.000", metrics={"cvssMetricV31": [CRITICAL]}),
    )
    tree.publish(http_serve)
    third = _run(http_serve, NOW + timedelta(days=2), db)
    assert (third.mode, third.note) == ("incremental", "1 feed(s) fetched, 0 unchanged")
    assert third.stats is not None and third.downloaded > 0
    assert _gets(http_serve, "modified") == (3, 2)
    with VulnDB(db) as held:
        cve = held.nvd(["CVE-2002-0001"])["CVE-2002-0001"]
        assert cve.metrics[0].score == 9.8
        status = held.nvd_status()
        assert status is not None and status.last_full == NOW
        assert status.last_import == NOW + timedelta(days=2)

    # Seven days after the full run: every yearly .meta again, unchanged ones not downloaded.
    fourth = _run(http_serve, NOW + timedelta(days=7), db)
    assert (fourth.mode, fourth.note) == ("full", "0 feed(s) fetched, 4 unchanged")
    assert _gets(http_serve, "2003") == (2, 1)
    with VulnDB(db) as held:
        status = held.nvd_status()
        assert status is not None and status.last_full == NOW + timedelta(days=7)


def test_meta_sha_mismatch_fails_and_applies_nothing(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = _tree()
    tree.publish(http_serve)
    http_serve.add("nvd/nvdcve-2.0-2003.meta", b"sha256:" + b"0" * 64 + b"\r\n")
    result = _run(http_serve, NOW, db)
    assert result.error is not None and "its .meta says" in result.error.diagnostics()
    with VulnDB(db) as held:
        # One transaction for the run: nothing of it applied, NVD not imported at all.
        assert held.nvd_status() is None
        assert held.nvd(["CVE-2002-0001", "CVE-2003-0001"]) == {}
    # Fixed upstream: the next run applies everything.
    tree.publish(http_serve)
    again = _run(http_serve, NOW, db)
    assert again.error is None and again.note == "4 feed(s) fetched, 0 unchanged"
    assert _gets(http_serve, "2002") == (2, 2)


def test_truncated_download_fails_and_keeps_db(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = _tree()
    tree.publish(http_serve)
    files = tree.files()
    gz = files["nvdcve-2.0-modified.json.gz"]
    http_serve.add("nvd/nvdcve-2.0-modified.json.gz", gz[: len(gz) // 2])
    result = _run(http_serve, NOW, db)
    assert result.error is not None and "cannot read NVD feed" in result.error.diagnostics()
    with VulnDB(db) as held:
        assert held.nvd(["CVE-2004-0002"]) == {}
        assert held.nvd_status() is None


def _osv_mirror(directory: Path) -> Path:
    bucket = BucketTree().put(
        "Debian", osv_record("DSA-1-1", "2024-01-01T00:00:00Z", aliases=["CVE-2002-0001"])
    )
    for name, data in bucket.files(encoded=False).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


def _all_years(tree: NvdTree) -> NvdTree:
    # The CLI runs at the real date: every yearly feed up to this year must exist.
    for year in range(2002, datetime.now(UTC).year + 1):
        if str(year) not in tree.feeds:
            tree.put(str(year))
    return tree


def test_cli_air_gapped_mirror_dir_with_nvd_subdir(run_cli: RunCli, tmp_path: Path) -> None:
    mirror = _osv_mirror(tmp_path / "mirror")
    _all_years(_tree()).write_dir(mirror / "nvd")
    (mirror / "debian-tracker.json").write_bytes(
        tracker_document({"demo": {"CVE-2002-0001": tracker_entry({"bookworm": "low**"})}})
    )
    db = tmp_path / "osv.db"
    result = run_cli(
        "db", "update", "--source", str(mirror), "--ecosystem", "Debian", "--db", str(db)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Debian: full: 1 added")
    assert lines[1].startswith("NVD: full: 4 added") and "fetched, 0 unchanged" in lines[1]
    assert lines[2] == "Debian tracker: full: 1 CVE entries of 1 packages"
    assert "NVD 2003: downloading" in result.stderr  # plain progress off a TTY
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-2002-0001", "demo", "12") == "low**"
        assert held.nvd_status() is not None
    status = run_cli("db", "status", "--db", str(db))
    assert any(line.split()[:2] == ["NVD", "4"] for line in status.stdout.splitlines())


def test_cli_mirror_without_severity_sources_skips_them(
    run_cli: RunCli, http_serve: HTTPServe, tmp_path: Path
) -> None:
    http_serve.serve_dir(_osv_mirror(tmp_path / "mirror"))
    db = tmp_path / "osv.db"
    args = ("db", "update", "--source", http_serve.url("/"), "--ecosystem", "Debian")
    result = run_cli(*args, "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "NVD: absent; no NVD feeds in the mirror",
        "Debian tracker: absent; not in the mirror",
    ]
    with VulnDB(db) as held:
        assert held.nvd_status() is None


def test_cli_explicit_sources_over_http(
    run_cli: RunCli, http_serve: HTTPServe, tmp_path: Path
) -> None:
    http_serve.serve_dir(_osv_mirror(tmp_path / "mirror"))
    nvd_url = _all_years(_tree()).publish(http_serve, prefix="feeds/")
    tracker = tracker_document({"demo": {"CVE-2002-0001": tracker_entry({"bookworm": "high"})}})
    tracker_url = http_serve.add("tracker/data/json", tracker)
    db = tmp_path / "osv.db"
    base = ("db", "update", "--source", http_serve.url("/"), "--ecosystem", "Debian")
    result = run_cli(
        *base, "--nvd-source", nvd_url, "--debian-tracker-source", tracker_url, "--db", str(db)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("NVD: full: 4 added")
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-2002-0001", "demo", "12") == "high"
    # Environment variables name them too; a failing tracker only warns (exit 0).
    http_serve.add("tracker/data/json", b"{}", status=500)
    env = {"KUBEGATE_NVD_SOURCE": nvd_url, "KUBEGATE_DEBIAN_TRACKER_SOURCE": tracker_url}
    again = run_cli(*base, "--db", str(db), env=env)
    assert again.returncode == 0, again.stderr
    assert "NVD: incremental: 0 added" in again.stdout
    assert "Debian tracker: update failed (optional): " in again.stdout
    assert http_serve.requests["/feeds/nvdcve-2.0-modified.meta"] == 2


def test_cli_explicit_nvd_source_missing_fails(
    run_cli: RunCli, http_serve: HTTPServe, tmp_path: Path
) -> None:
    http_serve.serve_dir(_osv_mirror(tmp_path / "mirror"))
    result = run_cli(
        "db",
        "update",
        "--source",
        http_serve.url("/"),
        "--ecosystem",
        "Debian",
        "--nvd-source",
        http_serve.url("nowhere/"),
        "--db",
        str(tmp_path / "osv.db"),
        "-q",
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kubegate: error: NVD: update failed: ")
    assert line.endswith("nowhere/nvdcve-2.0-modified.meta: not in the bucket (404)")


@pytest.mark.parametrize("source", ["ftp://x/nvd", "relative/missing-dir"])
def test_cli_bad_nvd_source_is_usage_error(run_cli: RunCli, tmp_path: Path, source: str) -> None:
    mirror = _osv_mirror(tmp_path / "mirror")
    result = run_cli(
        "db", "update", "--source", str(mirror), "--nvd-source", source, "--db", str(tmp_path / "d")
    )
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"kubegate: error: --nvd-source {source}: ")


def test_scan_refresh_updates_held_stale_nvd_only(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    BucketTree().put("Debian", osv_record("DSA-1-1", "2004-01-01T00:00:00Z")).publish(http_serve)
    _tree().publish(http_serve)
    sources = SeveritySources(http_serve.url("nvd/"), None)
    url = http_serve.url("/")
    ensure_updated(db, ecosystems=["Debian"], source=url, max_age=timedelta(hours=120), now=NOW)
    # Without NVD data held, the scans' refresh never fetches it for the first time.
    later = NOW + timedelta(hours=1)
    ensure_updated(db, source=url, max_age=timedelta(hours=120), now=later, severity=sources)
    assert http_serve.requests["/nvd/nvdcve-2.0-modified.meta"] == 0
    _run(http_serve, NOW, db)  # db update: full run
    assert http_serve.requests["/nvd/nvdcve-2.0-modified.meta"] == 1
    # Held and fresh: nothing asked; held and 13 h old: the modified feed is checked.
    ensure_updated(db, source=url, max_age=timedelta(hours=120), now=later, severity=sources)
    assert http_serve.requests["/nvd/nvdcve-2.0-modified.meta"] == 1
    stale = NOW + timedelta(hours=13)
    results = ensure_updated(
        db, source=url, max_age=timedelta(hours=120), now=stale, severity=sources
    )
    assert [(r.ecosystem, r.mode) for r in results] == [
        ("Debian", "unchanged"),
        ("NVD", "incremental"),
    ]
    assert http_serve.requests["/nvd/nvdcve-2.0-modified.meta"] == 2
    with VulnDB(db) as held:
        status = held.nvd_status()
        assert status is not None and status.last_import == stale


def test_scan_refresh_nvd_failure_only_warns(
    http_serve: HTTPServe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "osv.db"
    BucketTree().put("Debian", osv_record("DSA-1-1", "2004-01-01T00:00:00Z")).publish(http_serve)
    _tree().publish(http_serve)
    _run(http_serve, NOW, db)
    url = http_serve.url("/")
    ensure_updated(db, ecosystems=["Debian"], source=url, max_age=timedelta(hours=120), now=NOW)
    http_serve.add("nvd/nvdcve-2.0-modified.meta", b"", status=404)
    sources = SeveritySources(http_serve.url("nvd/"), None)
    stale = NOW + timedelta(hours=13)
    results = ensure_updated(
        db, source=url, max_age=timedelta(hours=120), now=stale, severity=sources
    )
    (nvd,) = [r for r in results if r.ecosystem == "NVD"]
    assert nvd.error is not None
    assert "could not update NVD, going on with the data held" in caplog.text


def test_config_local_sources_take_nvd_dirs_and_tracker(tmp_path: Path) -> None:
    # config db.import: an examples/nvd/-like directory of feeds + .meta, and the tracker.
    nvd_dir = NvdTree().put("2021", nvd_cve("CVE-2021-3711")).write_dir(tmp_path / "nvd")
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes(
        tracker_document({"openssl": {"CVE-2021-3711": tracker_entry({"bullseye": "high"})}})
    )
    db = tmp_path / "osv.db"
    ensure_updated(db, max_age=timedelta(hours=1), local_sources=[nvd_dir, tracker], now=NOW)
    with VulnDB(db) as held:
        status = held.nvd_status()
        assert status is not None and status.last_import == NOW and status.cves == 1
        assert held.debian_urgency("CVE-2021-3711", "openssl", "11") == "high"
    # Unchanged .meta sha256: not parsed again (a CVE slipped into the file stays unseen),
    # but NVD is stamped fresh again.
    other = NvdTree().put("2021", nvd_cve("CVE-2021-9999")).files()["nvdcve-2.0-2021.json.gz"]
    (nvd_dir / "nvdcve-2.0-2021.json.gz").write_bytes(other)
    later = NOW + timedelta(hours=2)
    ensure_updated(db, max_age=timedelta(hours=1), local_sources=[nvd_dir], now=later)
    with VulnDB(db) as held:
        status = held.nvd_status()
        assert status is not None and status.last_import == later
        assert held.nvd(["CVE-2021-9999"]) == {}


def test_config_local_tracker_is_not_reimported_while_unchanged(tmp_path: Path) -> None:
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes(
        tracker_document({"openssl": {"CVE-2021-3711": tracker_entry({"bullseye": "high"})}})
    )
    db = tmp_path / "osv.db"
    ensure_updated(db, max_age=timedelta(hours=1), local_sources=[tracker], now=NOW)
    # Mark the held row: a re-import of the unchanged file would put "high" back.
    with sqlite3.connect(db) as conn:
        conn.execute('UPDATE debian_urgency SET urgencies=\'{"bullseye":"marked"}\'')
    later = NOW + timedelta(hours=2)
    ensure_updated(db, max_age=timedelta(hours=1), local_sources=[tracker], now=later)
    with VulnDB(db) as held:
        assert held.debian_tracker_status() == later  # stamped fresh ...
        assert held.debian_urgency("CVE-2021-3711", "openssl", "11") == "marked"  # not re-read
    # A changed file (size and mtime) is imported again.
    tracker.write_bytes(
        tracker_document({"openssl": {"CVE-2021-3711": tracker_entry({"bullseye": "medium"})}})
    )
    ensure_updated(db, max_age=timedelta(hours=1), local_sources=[tracker], now=later)
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-2021-3711", "openssl", "11") == "medium"
    # Another tracker import replaces the snapshot: the local file is no longer what is held.
    other = tmp_path / "other.json"
    other.write_bytes(tracker_document({"zlib": {"CVE-2022-37434": tracker_entry({"x": "low"})}}))
    import_tracker(db, other, now=later)
    ensure_updated(db, max_age=timedelta(hours=1), local_sources=[tracker], now=later)
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-2021-3711", "openssl", "11") == "medium"


def test_cli_config_names_the_sources(run_cli: RunCli, tmp_path: Path) -> None:
    mirror = _osv_mirror(tmp_path / "mirror")  # no nvd/ in it: the config's sources are used
    _all_years(_tree()).write_dir(tmp_path / "conf" / "feeds")
    (tmp_path / "conf" / "tracker.json").write_bytes(
        tracker_document({"demo": {"CVE-2002-0001": tracker_entry({"trixie": "medium"})}})
    )
    config = tmp_path / "conf" / "kubegate.yaml"
    config.write_text("db:\n  nvdSource: feeds\n  debianTrackerSource: tracker.json\n")
    db = tmp_path / "osv.db"
    result = run_cli(
        "db",
        "update",
        "--source",
        str(mirror),
        "--ecosystem",
        "Debian",
        "--config",
        str(config),
        "--db",
        str(db),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("NVD: full: 4 added")
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-2002-0001", "demo", "13") == "medium"


def test_missing_year_fails_except_the_current_one(http_serve: HTTPServe, tmp_path: Path) -> None:
    tree = _tree()
    tree.publish(http_serve)
    http_serve.add("nvd/nvdcve-2.0-2004.meta", b"", status=404)
    current = _run(http_serve, NOW, tmp_path / "a.db")  # 2004 is NOW's year: not yet out
    assert current.error is None and current.note == "3 feed(s) fetched, 0 unchanged"
    http_serve.add("nvd/nvdcve-2.0-2003.meta", b"", status=404)
    past = _run(http_serve, NOW, tmp_path / "b.db")
    assert past.error is not None and "nvdcve-2.0-2003.meta" in past.error.diagnostics()
