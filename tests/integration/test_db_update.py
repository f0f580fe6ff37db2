"""``kubegate.vulndb.update`` against a bucket-shaped tree on a real 127.0.0.1 HTTP server.

Full download, incremental updates from ``modified_id.csv``, the ``Red%20Hat`` directory, retried
and failing server errors, timeouts, truncated zips, invalid records, all-or-nothing incremental
updates, a local mirror directory, and the scans' :func:`ensure_updated` rules.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubegate.errors import UsageError, VulnDBError
from kubegate.vulndb import VulnDB, import_paths
from kubegate.vulndb.fetch import FetchOptions
from kubegate.vulndb.update import (
    DEFAULT_ECOSYSTEMS,
    default_ecosystems,
    ensure_updated,
    import_local_sources,
    parse_ecosystems,
    update,
)
from tests.fixtures.httpserve import HTTPServe, Route
from tests.fixtures.osvbucket import BucketTree, osv_record

FAST = FetchOptions(timeout=2.0, retries=2, backoff=0.01, max_retry_after=0.05)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _debian() -> BucketTree:
    return BucketTree().put(
        "Debian",
        osv_record("DEBIAN-CVE-2025-0001", "2025-01-01T00:00:00Z"),
        osv_record("DEBIAN-CVE-2025-0002", "2025-01-02T00:00:00Z", name="other"),
        osv_record("DSA-5000-1", "2025-01-03T10:00:00.123456Z", name="other"),
    )


def _ids(db_path: Path, name: str = "demo", eco: str = "Debian:12") -> list[str]:
    with VulnDB(db_path) as db:
        return sorted(row.id for row in db.affecting(eco, name))


def _fixed(db_path: Path, record_id: str) -> str:
    with VulnDB(db_path) as db:
        record = db.records([record_id])[record_id]
    fixed: str = record["affected"][0]["ranges"][0]["events"][1]["fixed"]
    return fixed


def test_full_download_then_incremental_then_unchanged(
    http_serve: HTTPServe, tmp_path: Path
) -> None:
    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    (result,) = update(db, ["Debian"], source=url, options=FAST, now=T0)
    assert result.error is None and result.mode == "full"
    assert result.stats is not None and result.stats.added == 3
    assert _ids(db, "other") == ["DEBIAN-CVE-2025-0002", "DSA-5000-1"]
    with VulnDB(db) as opened:
        (status,) = opened.status().ecosystems
        assert status.ecosystem == "Debian" and status.last_import == T0
        assert opened.meta("osv-cursor:") == {"osv-cursor:Debian": "2025-01-03T10:00:00.123456Z"}

    # Upstream: one record changes, one is added.
    tree.put(
        "Debian",
        osv_record("DEBIAN-CVE-2025-0001", "2025-02-01T00:00:00Z", fixed="1.0-9"),
        osv_record("DEBIAN-CVE-2025-0003", "2025-02-02T00:00:00Z"),
    )
    tree.publish(http_serve)
    later = T0 + timedelta(hours=13)
    (result,) = update(db, ["Debian"], source=url, options=FAST, now=later)
    assert result.error is None and result.mode == "incremental"
    assert result.stats is not None
    assert (result.stats.added, result.stats.replaced) == (1, 1)
    assert _ids(db) == ["DEBIAN-CVE-2025-0001", "DEBIAN-CVE-2025-0003"]
    assert _fixed(db, "DEBIAN-CVE-2025-0001") == "1.0-9"
    assert http_serve.requests["/Debian/all.zip"] == 2  # HEAD + GET once: not again
    assert http_serve.requests["/Debian/DEBIAN-CVE-2025-0003.json"] == 1
    assert http_serve.requests["/Debian/DEBIAN-CVE-2025-0002.json"] == 0  # older than the cursor

    (result,) = update(db, ["Debian"], source=url, options=FAST, now=later + timedelta(hours=1))
    assert result.mode == "unchanged" and result.error is None
    with VulnDB(db) as opened:
        assert opened.status().ecosystems[0].last_import == later + timedelta(hours=1)
    assert http_serve.requests["/Debian/DEBIAN-CVE-2025-0003.json"] == 1


def test_red_hat_directory_is_url_encoded(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = BucketTree().put(
        "Red Hat",
        osv_record(
            "RHSA-2025:0001",
            "2025-03-01T00:00:00Z",
            ecosystem="Red Hat:enterprise_linux:9::baseos",
            name="openssl",
            fixed="1:3.0.7-27.el9",
        ),
    )
    url = tree.publish(http_serve)
    (result,) = update(db, parse_ecosystems(["red hat:enterprise_linux:9"]), source=url)
    assert result.error is None, result.error
    assert http_serve.requests["/Red%20Hat/all.zip"] == 2  # HEAD (size) + GET
    assert _ids(db, "openssl", "Red Hat:enterprise_linux:9") == ["RHSA-2025:0001"]
    tree.put(
        "Red Hat",
        osv_record(
            "RHSA-2025:0002",
            "2025-03-02T00:00:00Z",
            ecosystem="Red Hat:enterprise_linux:9::appstream",
            name="openssl",
        ),
    )
    tree.publish(http_serve)
    (result,) = update(db, ["Red Hat"], source=url)
    assert result.mode == "incremental" and result.error is None
    assert http_serve.requests["/Red%20Hat/RHSA-2025%3A0002.json"] == 1
    assert _ids(db, "openssl", "Red Hat:enterprise_linux:9") == ["RHSA-2025:0001", "RHSA-2025:0002"]


def test_server_errors_are_retried_honouring_retry_after(
    http_serve: HTTPServe, tmp_path: Path
) -> None:
    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    http_serve.add_sequence(
        "Debian/all.zip",
        [Route(b"busy", 503, {"Retry-After": "0"}), Route(b"slow down", 429)],
    )
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is None and result.mode == "full"
    # The size HEAD took the 503 and the 429 (both retried), then HEAD and GET succeeded.
    assert http_serve.requests["/Debian/all.zip"] == 4
    assert len(_ids(db, "other")) == 2


def test_persistent_server_error_fails_that_ecosystem_only(
    http_serve: HTTPServe, tmp_path: Path
) -> None:
    db = tmp_path / "osv.db"
    tree = _debian().put("Alpine", osv_record("ALPINE-CVE-1", "2025-01-01T00:00:00Z"))
    url = tree.publish(http_serve)
    http_serve.add("Debian/all.zip", b"oops", status=500)
    debian, alpine = update(db, ["Debian", "Alpine"], source=url, options=FAST)
    assert debian.error is not None and "HTTP 500" in debian.error.diagnostics()
    assert "/Debian/all.zip" in debian.error.diagnostics()
    assert http_serve.requests["/Debian/all.zip"] == 2 * (FAST.retries + 1)  # HEAD and GET
    assert alpine.error is None
    with VulnDB(db) as opened:
        assert [e.ecosystem for e in opened.status().ecosystems] == ["Alpine"]


def test_timeout_fails_and_keeps_previous_db(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    tree.put("Debian", osv_record("DEBIAN-CVE-2025-0009", "2025-05-01T00:00:00Z"))
    tree.publish(http_serve)
    body = http_serve.routes["/Debian/modified_id.csv"].body
    http_serve.routes["/Debian/modified_id.csv"] = Route(body, delay=1.0)
    quick = FetchOptions(timeout=0.2, retries=1, backoff=0.01, max_retry_after=0.01)
    (result,) = update(db, ["Debian"], source=url, options=quick)
    assert result.error is not None and "timed out after 0.2s" in result.error.diagnostics()
    assert _ids(db) == ["DEBIAN-CVE-2025-0001"]


def test_unreachable_source_fails_every_ecosystem_at_once(tmp_path: Path) -> None:
    results = update(
        tmp_path / "osv.db",
        ["Debian", "Ubuntu", "PyPI"],
        source="http://127.0.0.1:9/",
        options=FAST,
    )
    assert [r.mode for r in results] == ["failed"] * 3
    assert all(r.error is not None and "cannot download" in r.error.message for r in results)


def test_truncated_zip_applies_nothing(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    import_paths(db, [_write_one(tmp_path)])
    url = _debian().publish(http_serve)
    whole = http_serve.routes["/Debian/all.zip"].body
    http_serve.add("Debian/all.zip", whole[: len(whole) // 2])
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is not None and "not a valid zip" in result.error.message
    assert _ids(db) == ["LOCAL-1"]
    # A connection dropped before Content-Length bytes arrived is caught as well.
    http_serve.add("Debian/all.zip", whole[:100], headers={"Content-Length": str(len(whole))})
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is not None and "interrupted" in result.error.message
    assert _ids(db) == ["LOCAL-1"]
    with VulnDB(db) as opened:
        assert opened.meta("osv-cursor:") == {}
    assert not list(tmp_path.glob(".kubegate-update-*"))  # temp files removed


def _write_one(tmp_path: Path) -> Path:
    directory = tmp_path / "local"
    BucketTree().put("Debian", osv_record("LOCAL-1", "2024-01-01T00:00:00Z")).write_dir(directory)
    return directory / "Debian" / "LOCAL-1.json"


def test_zip_member_with_bad_crc_rolls_back(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    import_paths(db, [_write_one(tmp_path)])
    url = _debian().publish(http_serve)
    whole = bytearray(http_serve.routes["/Debian/all.zip"].body)
    whole[70] ^= 0xFF  # inside the first member's compressed data (header + name are 55 bytes)
    http_serve.add("Debian/all.zip", bytes(whole))
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is not None
    assert _ids(db) == ["LOCAL-1"] and _ids(db, "other") == []


def test_invalid_record_is_skipped_and_counted(
    http_serve: HTTPServe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    tree.put_raw("Debian", "DEBIAN-CVE-2025-0100", "2025-06-01T00:00:00Z", b'{"id": 5}')
    tree.put("Debian", osv_record("DEBIAN-CVE-2025-0101", "2025-06-02T00:00:00Z"))
    tree.publish(http_serve)
    with caplog.at_level(logging.WARNING):
        (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is None and result.stats is not None
    assert (result.stats.invalid, result.stats.added) == (1, 1)
    assert "skipping invalid OSV record" in caplog.text
    assert _ids(db) == ["DEBIAN-CVE-2025-0001", "DEBIAN-CVE-2025-0101"]


def test_incremental_failing_part_way_applies_nothing(
    http_serve: HTTPServe, tmp_path: Path
) -> None:
    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    tree.put(
        "Debian",
        osv_record("DEBIAN-CVE-2025-0001", "2025-07-01T00:00:00Z", fixed="2.0-1"),
        osv_record("DEBIAN-CVE-2025-0200", "2025-07-02T00:00:00Z"),
    )
    tree.publish(http_serve)
    http_serve.add("Debian/DEBIAN-CVE-2025-0001.json", b"gone wrong", status=502)
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is not None and "HTTP 502" in result.error.message
    assert _ids(db) == ["DEBIAN-CVE-2025-0001"]  # the new record was not applied either
    assert _fixed(db, "DEBIAN-CVE-2025-0001") == "1.0-2"
    tree.publish(http_serve)  # the server recovers: the same update now applies both
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.mode == "incremental" and result.error is None
    assert _ids(db) == ["DEBIAN-CVE-2025-0001", "DEBIAN-CVE-2025-0200"]
    assert _fixed(db, "DEBIAN-CVE-2025-0001") == "2.0-1"


def test_bad_index_line_and_hostile_id_apply_nothing(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    http_serve.add("Debian/modified_id.csv", b"2026-01-01T00:00:00Z,../../etc/passwd\n")
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is not None and "bad record id" in result.error.message
    http_serve.add("Debian/modified_id.csv", b"yesterday,DSA-1-1\n")
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.error is not None and "bad timestamp" in result.error.message


def test_many_changes_switch_to_full_download(http_serve: HTTPServe, tmp_path: Path) -> None:
    from kubegate.vulndb.update import UpdateLimits

    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    tree.put(
        "Debian",
        *(osv_record(f"DEBIAN-CVE-2025-1{i:03d}", f"2025-08-01T00:00:{i:02d}Z") for i in range(5)),
    )
    tree.publish(http_serve)
    limits = UpdateLimits(incremental_max=3)
    (result,) = update(db, ["Debian"], source=url, options=FAST, limits=limits)
    assert result.mode == "full" and result.error is None
    assert http_serve.requests["/Debian/all.zip"] == 4  # HEAD + GET each time
    assert len(_ids(db)) == 6


def test_local_mirror_directory(tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = _debian().put(
        "Red Hat",
        osv_record(
            "RHSA-2025:0003", "2025-01-01T00:00:00Z", ecosystem="Red Hat:enterprise_linux:8"
        ),
    )
    mirror = tree.write_dir(tmp_path / "mirror")
    results = update(db, ["Debian", "Red Hat"], source=str(mirror))
    assert [r.error for r in results] == [None, None]
    tree.put(
        "Red Hat",
        osv_record(
            "RHSA-2025:0004", "2025-02-01T00:00:00Z", ecosystem="Red Hat:enterprise_linux:8"
        ),
    )
    tree.write_dir(mirror)
    _, redhat = update(db, ["Debian", "Red Hat"], source=f"file://{mirror}")
    assert redhat.mode == "incremental"
    assert _ids(db, "demo", "Red Hat:enterprise_linux:8") == ["RHSA-2025:0003", "RHSA-2025:0004"]


@pytest.mark.parametrize("source", ["ftp://mirror/osv", "http:///nohost", "/no/such/dir"])
def test_bad_source_is_usage_error(tmp_path: Path, source: str) -> None:
    with pytest.raises(UsageError) as raised:
        update(tmp_path / "osv.db", ["Debian"], source=source)
    assert raised.value.where == f"--source {source}"
    assert not (tmp_path / "osv.db").exists()


def test_ecosystem_names() -> None:
    assert parse_ecosystems(["debian:12", "Debian", "PYPI", "Red Hat"]) == (
        "Debian",
        "PyPI",
        "Red Hat",
    )
    with pytest.raises(UsageError) as raised:
        parse_ecosystems(["Debain"])
    assert "known: Debian, Ubuntu" in raised.value.message
    assert default_ecosystems(["npm", "Alpine", "Bogus"])[:3] == ("npm", "Alpine", "Debian")
    assert sorted(default_ecosystems()) == sorted(DEFAULT_ECOSYSTEMS)


# -- ensure_updated ---------------------------------------------------------------------------

MAX_AGE = timedelta(hours=120)


def test_ensure_updated_missing_fresh_and_stale(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    done = ensure_updated(
        db, ecosystems=["Debian"], source=url, max_age=MAX_AGE, options=FAST, now=T0
    )
    assert [r.mode for r in done] == ["full"]
    # Younger than 12 h: nothing asked of the server.
    before = sum(http_serve.requests.values())
    assert ensure_updated(db, source=url, max_age=MAX_AGE, now=T0 + timedelta(hours=11)) == []
    assert sum(http_serve.requests.values()) == before
    # Older: the ecosystems the database holds are refreshed.
    done = ensure_updated(db, source=url, max_age=MAX_AGE, now=T0 + timedelta(hours=13))
    assert [(r.ecosystem, r.mode) for r in done] == [("Debian", "unchanged")]
    # --skip-db-update: nothing, even when old.
    before = sum(http_serve.requests.values())
    assert ensure_updated(db, source=url, skip=True, max_age=MAX_AGE) == []
    assert sum(http_serve.requests.values()) == before


def test_ensure_updated_failure_warns_while_young_enough(
    http_serve: HTTPServe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    ensure_updated(db, ecosystems=["Debian"], source=url, max_age=MAX_AGE, options=FAST, now=T0)
    http_serve.add("Debian/modified_id.csv", b"", status=503)
    with caplog.at_level(logging.WARNING):
        done = ensure_updated(
            db, source=url, max_age=MAX_AGE, options=FAST, now=T0 + timedelta(hours=20)
        )
    assert done[0].error is not None
    assert "could not update Debian advisories, going on" in caplog.text
    with pytest.raises(VulnDBError, match="older than --db-max-age"):
        ensure_updated(db, source=url, max_age=MAX_AGE, options=FAST, now=T0 + timedelta(days=6))


def test_ensure_updated_missing_db_and_no_network_fails(tmp_path: Path) -> None:
    with pytest.raises(VulnDBError, match="no advisory database and the update failed"):
        ensure_updated(
            tmp_path / "osv.db",
            ecosystems=["Debian", "Alpine"],
            source="http://127.0.0.1:9/",
            max_age=MAX_AGE,
            options=FAST,
        )


def test_local_sources_are_the_update(tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    mirror = _debian().write_dir(tmp_path / "mirror")
    done = ensure_updated(
        db, source="http://127.0.0.1:9/", max_age=MAX_AGE, local_sources=[mirror / "Debian"]
    )
    assert done == []  # no network involved
    assert len(_ids(db, "other")) == 2
    again = import_local_sources(db, [mirror / "Debian"])  # re-imported: it is the update
    assert again.added == 0 and again.unchanged > 0
    (mirror / "Debian" / "NEW-1.json").write_text(
        json.dumps(osv_record("NEW-1", "2025-09-01T00:00:00Z"))
    )
    stats = import_local_sources(db, [mirror / "Debian"])
    assert stats.added == 1
    assert "NEW-1" in _ids(db)


def test_update_that_cannot_lock_warns_while_young_enough(
    http_serve: HTTPServe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    ensure_updated(db, ecosystems=["Debian"], source=url, max_age=MAX_AGE, now=T0)
    (tmp_path / "osv.db.update-lock").unlink()
    (tmp_path / "osv.db.update-lock").mkdir()  # the lock cannot be taken (as in a read-only dir)
    assert ensure_updated(db, source=url, max_age=MAX_AGE, now=T0 + timedelta(hours=1)) == []
    with caplog.at_level(logging.WARNING):
        (failed,) = ensure_updated(db, source=url, max_age=MAX_AGE, now=T0 + timedelta(hours=13))
    assert failed.error is not None and "cannot lock" in failed.error.message
    assert "going on with data from 2026-01-01 00:00 UTC" in caplog.text


def test_size_limits(http_serve: HTTPServe, tmp_path: Path) -> None:
    from kubegate.vulndb.update import UpdateLimits

    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    small = UpdateLimits(max_zip_bytes=200)
    (result,) = update(db, ["Debian"], source=url, options=FAST, limits=small)
    assert result.error is not None and "more than the 200 allowed" in result.error.message
    # Without a Content-Length the cap is enforced while streaming.
    whole = http_serve.routes["/Debian/all.zip"].body
    http_serve.add("Debian/all.zip", whole, headers={"Content-Length": None})
    (result,) = update(db, ["Debian"], source=url, options=FAST, limits=small)
    assert result.error is not None and "larger than the 200 bytes allowed" in result.error.message
    assert not db.exists() or _held_ecosystems(db) == []
    (result,) = update(db, ["Debian"], source=url, options=FAST, limits=UpdateLimits())
    assert result.error is None
    (result,) = update(db, ["Debian"], source=url, options=FAST, limits=UpdateLimits(max_members=2))
    assert result.error is None and result.mode == "unchanged"  # the cursor avoids the zip
    with VulnDB(db) as opened:
        opened_meta = opened.meta("osv-cursor:")
    assert opened_meta
    fresh = tmp_path / "fresh.db"
    (result,) = update(
        fresh, ["Debian"], source=url, options=FAST, limits=UpdateLimits(max_members=2)
    )
    assert result.error is not None and "3 members, more than the 2 allowed" in result.error.message
    tiny_index = UpdateLimits(max_index_bytes=10)
    (result,) = update(db, ["Debian"], source=url, options=FAST, limits=tiny_index)
    assert result.error is not None and "larger than 10 bytes" in result.error.message


def _held_ecosystems(db: Path) -> list[str]:
    with VulnDB(db) as opened:
        return [e.ecosystem for e in opened.status().ecosystems]


def test_withdrawn_record_is_removed_incrementally(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    tree.put(
        "Debian",
        osv_record(
            "DEBIAN-CVE-2025-0001", "2025-04-01T00:00:00Z", withdrawn="2025-04-01T00:00:00Z"
        ),
    )
    tree.publish(http_serve)
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.stats is not None and result.stats.withdrawn == 1
    assert _ids(db) == []


def test_concurrent_update_waits_for_the_lock(http_serve: HTTPServe, tmp_path: Path) -> None:
    import fcntl
    import threading

    db = tmp_path / "osv.db"
    url = _debian().publish(http_serve)
    results: list[object] = []
    with (tmp_path / "osv.db.update-lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(
            target=lambda: results.extend(update(db, ["Debian"], source=url, options=FAST))
        )
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and http_serve.requests["/Debian/all.zip"] == 0
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(10)
    assert len(results) == 1 and http_serve.requests["/Debian/all.zip"] == 2


def test_incremental_fetches_many_records(http_serve: HTTPServe, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    tree = _debian()
    url = tree.publish(http_serve)
    update(db, ["Debian"], source=url, options=FAST)
    new = [osv_record(f"DEBIAN-CVE-2025-2{i:03d}", f"2025-09-01T00:{i:02d}:00Z") for i in range(40)]
    tree.put("Debian", *new)
    tree.publish(http_serve)
    http_serve.add("Debian/DEBIAN-CVE-2025-2007.json", b"", status=404)  # listed, then removed
    (result,) = update(db, ["Debian"], source=url, options=FAST)
    assert result.mode == "incremental" and result.stats is not None
    assert result.stats.added == 39
    assert len(_ids(db)) == 40 and "DEBIAN-CVE-2025-2007" not in _ids(db)
    with VulnDB(db) as opened:
        assert opened.meta("osv-cursor:")["osv-cursor:Debian"] == "2025-09-01T00:39:00Z"
