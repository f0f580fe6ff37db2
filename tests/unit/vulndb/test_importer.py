"""The importer: validation counts, newest ``modified`` wins, withdrawn removal, atomicity."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubegate.errors import UsageError, VulnDBError
from kubegate.vulndb import VulnDB, import_paths
from kubegate.vulndb.records import InvalidRecord, index_ecosystem, index_record, normalise_name
from tests.fixtures.osvdb import OSV_DATA


def _record(record_id: str, modified: str, fixed: str = "1.0-2", **extra: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "demo"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
        **extra,
    }


def _write(directory: Path, *records: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return directory


def _fixed(db_path: Path, record_id: str) -> str:
    with VulnDB(db_path) as db:
        (row,) = [r for r in db.affecting("Debian:12", "demo") if r.id == record_id]
        return str(row.entries[0]["ranges"][0]["events"][1]["fixed"])


def test_newest_modified_wins_and_reimport_is_idempotent(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    old = _write(tmp_path / "old", _record("DEBIAN-CVE-1", "2024-01-01T00:00:00Z", "1.0-2"))
    new = _write(tmp_path / "new", _record("DEBIAN-CVE-1", "2024-02-01T00:00:00+00:00", "1.0-3"))
    assert import_paths(db_path, [old]).added == 1
    stats = import_paths(db_path, [new])
    assert (stats.added, stats.replaced) == (0, 1)
    assert _fixed(db_path, "DEBIAN-CVE-1") == "1.0-3"
    # The older record arriving later does not win, and importing twice changes nothing.
    stats = import_paths(db_path, [old])
    assert (stats.replaced, stats.unchanged) == (0, 1)
    assert _fixed(db_path, "DEBIAN-CVE-1") == "1.0-3"
    stats = import_paths(db_path, [new])
    assert (stats.added, stats.replaced, stats.unchanged) == (0, 0, 1)
    with VulnDB(db_path) as db:
        assert len(db.affecting("Debian:12", "demo")) == 1
        assert db.status().records == 1


def test_withdrawn_update_removes_the_record(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    import_paths(db_path, [_write(tmp_path / "a", _record("X-1", "2024-01-01T00:00:00Z"))])
    withdrawn = _record("X-1", "2024-03-01T00:00:00Z", withdrawn="2024-03-01T00:00:00Z")
    stats = import_paths(db_path, [_write(tmp_path / "b", withdrawn)])
    assert stats.withdrawn == 1
    with VulnDB(db_path) as db:
        assert db.affecting("Debian:12", "demo") == []
        assert db.records(["X-1"]) == {}


def test_zip_like_the_bucket_and_invalid_records_counted(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((OSV_DATA / "debian").glob("*.json")):
            zf.write(path, path.name)
        zf.writestr("broken.json", "[1, 2")
        zf.writestr("README.txt", "not a record")
    stats = import_paths(tmp_path / "db.sqlite3", [archive])
    assert (stats.read, stats.added, stats.invalid) == (5, 4, 1)
    assert stats.ecosystems == {"Debian": 4}


def test_missing_path_is_a_usage_error_and_db_untouched(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        import_paths(tmp_path / "db.sqlite3", [tmp_path / "nope"])
    assert not (tmp_path / "db.sqlite3").exists()


def test_corrupt_zip_rolls_back_everything(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    import_paths(db_path, [_write(tmp_path / "a", _record("X-1", "2024-01-01T00:00:00Z"))])
    good = _write(tmp_path / "b", _record("X-2", "2024-01-01T00:00:00Z"))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(VulnDBError):
        import_paths(db_path, [good, bad])
    with VulnDB(db_path) as db:
        assert [r.id for r in db.affecting("Debian:12", "demo")] == ["X-1"]


def test_not_a_database_file(tmp_path: Path) -> None:
    bogus = tmp_path / "db.sqlite3"
    bogus.write_text("hello, I am not SQLite" * 100)
    with pytest.raises(VulnDBError, match="not a kubegate advisory database"):
        VulnDB(bogus)


def test_other_schema_version_refused(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    import_paths(db_path, [_write(tmp_path / "a", _record("X-1", "2024-01-01T00:00:00Z"))])
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(VulnDBError, match="schema 999"):
        VulnDB(db_path)


def test_freshness_per_needed_ecosystem(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite3"
    then = datetime(2026, 1, 1, tzinfo=UTC)
    import_paths(
        db_path, [_write(tmp_path / "a", _record("X-1", "2025-12-31T00:00:00Z"))], now=then
    )
    with VulnDB(db_path) as db:
        (debian,) = db.status().ecosystems
        assert debian.last_import == then
        assert debian.newest_modified == datetime(2025, 12, 31, tzinfo=UTC)
        db.check_fresh(["Debian:12"], timedelta(hours=120), now=then + timedelta(hours=119))
        with pytest.raises(VulnDBError, match=r"Debian advisories are 121\.0h old"):
            db.check_fresh(["Debian:12"], timedelta(hours=120), now=then + timedelta(hours=121))
        with pytest.raises(VulnDBError, match="no PyPI data"):
            db.check_fresh(["PyPI"], timedelta(hours=120), now=then)
        # Freshness is per release: a fresh Debian feed says nothing of a release it lacks
        # (an os-release VERSION_ID="99" would otherwise match nothing and pass).
        assert db.covers("Debian:12") and not db.covers("Debian:99")
        with pytest.raises(VulnDBError, match="no advisories for Debian:99"):
            db.check_fresh(["Debian:12", "Debian:99"], timedelta(hours=120), now=then)
        # Ecosystems the scan did not need are not checked.
        db.check_fresh([], timedelta(hours=1), now=then + timedelta(days=400))


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([], "JSON object"),
        ({"modified": "2024-01-01T00:00:00Z"}, "id"),
        ({"id": "X", "modified": "soon"}, "RFC 3339"),
        ({"id": "X", "modified": "2024-01-01T00:00:00Z", "aliases": "CVE-1"}, "aliases"),
        ({"id": "X", "modified": "2024-01-01T00:00:00Z", "affected": {}}, "affected"),
        (
            {
                "id": "X",
                "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [{}]}],
            },
            "type",
        ),
        (
            {"id": "X", "modified": "2024-01-01T00:00:00Z", "severity": [{"type": "CVSS_V3"}]},
            "severity",
        ),
    ],
)
def test_invalid_records(record: object, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        index_record(record)


def test_index_keys() -> None:
    assert index_ecosystem("Ubuntu:Pro:18.04:LTS") == "Ubuntu:18.04"
    assert index_ecosystem("Ubuntu:22.04:LTS") == "Ubuntu:22.04"
    assert index_ecosystem("Debian:12") == "Debian:12"
    assert index_ecosystem("Red Hat:enterprise_linux:9::baseos") == "Red Hat:enterprise_linux:9"
    assert normalise_name("PyPI", "Zope.Interface_x") == "zope-interface-x"
    assert normalise_name("Debian:12", "Foo") == "Foo"


def test_repeated_ids_across_batches_of_a_first_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubegate.vulndb import importer

    monkeypatch.setattr(importer, "BATCH", 2)
    old = _write(
        tmp_path / "a",
        *(_record(f"X-{i}", "2024-01-01T00:00:00Z", "1.0-2") for i in range(5)),
    )
    new = _write(tmp_path / "b", _record("X-3", "2024-05-01T00:00:00Z", "1.0-9"))
    withdrawn = _write(
        tmp_path / "c", _record("X-1", "2024-06-01T00:00:00Z", withdrawn="2024-06-01T00:00:00Z")
    )
    db_path = tmp_path / "db.sqlite3"
    stats = import_paths(db_path, [old, new, withdrawn, old])
    assert (stats.added, stats.replaced, stats.withdrawn, stats.unchanged) == (5, 1, 1, 5)
    assert _fixed(db_path, "X-3") == "1.0-9"
    with VulnDB(db_path) as db:
        ids = sorted(r.id for r in db.affecting("Debian:12", "demo"))
        assert ids == ["X-0", "X-2", "X-3", "X-4"]
        assert db.status().ecosystems[0].records == 4


def test_oversized_record_is_invalid_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubegate.vulndb import importer

    monkeypatch.setattr(importer, "MAX_RECORD_BYTES", 1000)
    big = _record("BIG-1", "2024-01-01T00:00:00Z", details="x" * 5000)
    directory = _write(tmp_path / "d", big, _record("SMALL-1", "2024-01-01T00:00:00Z"))
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BIG-2.json", json.dumps({**big, "id": "BIG-2"}))
    stats = import_paths(tmp_path / "db.sqlite3", [directory, archive])
    assert (stats.added, stats.invalid) == (1, 2)


def test_symlinked_files_are_not_followed(tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside", _record("OUT-1", "2024-01-01T00:00:00Z"))
    feed = _write(tmp_path / "feed", _record("IN-1", "2024-01-01T00:00:00Z"))
    (feed / "OUT-1.json").symlink_to(outside / "OUT-1.json")
    stats = import_paths(tmp_path / "db.sqlite3", [feed])
    assert (stats.read, stats.added) == (1, 1)


def test_odd_path_and_read_only_file_when_not_root(tmp_path: Path) -> None:
    db_path = tmp_path / "we?ird #dir" / "db.sqlite3"
    import_paths(db_path, [_write(tmp_path / "a", _record("X-1", "2024-01-01T00:00:00Z"))])
    db_path.chmod(0o444)
    try:
        with VulnDB(db_path) as db:
            assert [r.id for r in db.affecting("Debian:12", "demo")] == ["X-1"]
    finally:
        db_path.chmod(0o644)


def test_stored_members_and_a_corrupted_member(tmp_path: Path) -> None:
    stored = tmp_path / "stored.zip"
    with zipfile.ZipFile(stored, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("S-1.json", json.dumps(_record("S-1", "2024-01-01T00:00:00Z")))
    assert import_paths(tmp_path / "a.sqlite3", [stored]).added == 1
    corrupted = tmp_path / "corrupted.zip"
    payload = json.dumps(_record("C-1", "2024-01-01T00:00:00Z")).encode()
    with zipfile.ZipFile(corrupted, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("C-1.json", payload)
    data = corrupted.read_bytes()
    at = data.index(payload) + 10
    corrupted.write_bytes(data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :])
    with pytest.raises(VulnDBError, match="CRC"):
        import_paths(tmp_path / "b.sqlite3", [corrupted])
