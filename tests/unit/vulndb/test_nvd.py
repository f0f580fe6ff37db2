"""NVD 2.0 feeds and the Debian tracker: parsing, streaming import, store queries, schema upgrade.

Fixtures in the real shapes (tests/fixtures/nvdfeed.py says where each shape comes from).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from kubegate.errors import VulnDBError
from kubegate.models import Severity
from kubegate.vulndb import VulnDB, import_paths, nvd
from kubegate.vulndb.jsonstream import JSONStream
from kubegate.vulndb.nvd import (
    FeedReader,
    NvdCve,
    NvdMetric,
    decode,
    encode,
    parse_cve,
    parse_meta,
)
from kubegate.vulndb.nvdimport import classify, feed_file, import_nvd, import_tracker
from kubegate.vulndb.records import InvalidRecord
from kubegate.vulndb.store import SCHEMA_VERSION
from tests.fixtures.nvdfeed import (
    CISA_ADP,
    NvdTree,
    feed_document,
    nvd_cve,
    tracker_document,
    tracker_entry,
    v2,
    v30,
    v31,
    v40,
)
from tests.fixtures.osvdb import OSV_DATA

V31_NVD = "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:H/I:H/A:H"
V31_ADP = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
V2 = "AV:N/AC:L/Au:N/C:C/I:C/A:C"


def _real_shaped() -> dict[str, object]:
    """CVE-2022-1292 as NVD publishes it, plus a v4.0 CNA metric, a v3.0 and an SSVC entry."""
    return nvd_cve(
        "CVE-2022-1292",
        "2025-08-11T17:19:56.250",
        description="The c_rehash script does not properly sanitise shell metacharacters.",
        metrics={
            "cvssMetricV40": [v40(9.3, "CRITICAL", V40, source="openssl-security@openssl.org")],
            "cvssMetricV31": [
                v31(7.3, "HIGH", V31_NVD),
                v31(9.8, "CRITICAL", V31_ADP, source=CISA_ADP),
            ],
            "cvssMetricV30": [v30(7.8, "HIGH", "CVSS:3.0/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H")],
            "cvssMetricV2": [v2(10.0, "HIGH", V2)],
            # CISA-ADP's SSVC decision (real key, since 2024): not a CVSS score, ignored.
            "ssvcV203": [{"source": CISA_ADP, "type": "Secondary", "ssvcData": {}}],
        },
    )


def test_parse_every_metric_version() -> None:
    cve = parse_cve(_real_shaped())
    assert cve.id == "CVE-2022-1292"
    assert cve.status == "Analyzed"
    assert cve.last_modified == "2025-08-11T17:19:56.250"
    assert cve.published == "2022-05-03T16:15:18.823"
    assert cve.description == "The c_rehash script does not properly sanitise shell metacharacters."
    assert cve.metrics == (
        NvdMetric("4.0", "openssl-security@openssl.org", False, V40, 9.3, Severity.CRITICAL),
        NvdMetric("3.1", "nvd@nist.gov", True, V31_NVD, 7.3, Severity.HIGH),
        NvdMetric("3.1", CISA_ADP, False, V31_ADP, 9.8, Severity.CRITICAL),
        NvdMetric(
            "3.0",
            "nvd@nist.gov",
            True,
            "CVSS:3.0/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            7.8,
            Severity.HIGH,
        ),
        # v2: the severity is the metric object's own baseSeverity.
        NvdMetric("2.0", "nvd@nist.gov", True, V2, 10.0, Severity.HIGH),
    )


def test_rejected_status_is_kept_and_descriptions_pick_english() -> None:
    item = nvd_cve("CVE-2023-0001", status="Rejected", description="** REJECT ** duplicate")
    cve = parse_cve(item)
    assert cve.status == "Rejected"
    assert cve.metrics == ()
    assert cve.description == "** REJECT ** duplicate"  # "es" comes first in the list
    item["cve"]["descriptions"] = [{"lang": "es", "value": "solo"}]  # type: ignore[index]
    assert parse_cve(item).description is None


@pytest.mark.parametrize(
    "item",
    [{}, {"cve": []}, {"cve": {"id": "GHSA-1"}}, {"cve": {"id": "CVE-2024-1"}}],
    ids=["no-cve", "cve-not-object", "not-a-cve-id", "no-lastModified"],
)
def test_unusable_cve_is_invalid(item: object) -> None:
    with pytest.raises(InvalidRecord):
        parse_cve(item)


def test_row_encoding_round_trips() -> None:
    cve = parse_cve(_real_shaped())
    blob = encode(cve)
    assert decode(cve.id, cve.last_modified, blob) == cve
    assert len(blob) < len(json.dumps(_real_shaped()))


def test_meta_parsing() -> None:
    meta = parse_meta(
        "lastModifiedDate:2024-06-01T03:00:01-04:00\r\nsize:12\r\nzipSize:5\r\ngzSize:6\r\n"
        "sha256:" + "ab" * 32 + "\r\n",
        "x.meta",
    )
    assert (meta.size, meta.gz_size, meta.sha256) == (12, 6, "AB" * 32)
    with pytest.raises(VulnDBError, match="no valid sha256"):
        parse_meta("size:1\n", "x.meta")


def test_stream_splits_across_small_windows() -> None:
    # A window far smaller than one value: values, numbers and strings cut anywhere.
    doc = json.dumps({"a": [1, 22, 333, "x" * 50, {"b": [4444]}], "z": 5}).encode()
    for step in (1, 3, 7):
        buffer = io.BytesIO(doc)
        stream = JSONStream(lambda _n, b=buffer, s=step: b.read(s), "doc", 10_000)  # type: ignore[misc]
        seen: dict[str, object] = {}
        for key in stream.members():
            if key == "a":
                seen[key] = list(stream.elements())
            else:
                seen[key] = stream.value()
        stream.end()
        assert seen == {"a": [1, 22, 333, "x" * 50, {"b": [4444]}], "z": 5}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b'{"format": "NVD_CVE", "vulnerabilities": [{"cve": {}}', "truncated"),
        (b'{"format": "NVD_CVE", "vulnerabilities": [1 2]}', "expected ','"),
        (b'{"format": "OSV", "vulnerabilities": []}', "not an NVD CVE feed"),
        (b'{"vulnerabilities": []}', "not an NVD CVE feed"),
        (b'{"format": "NVD_CVE", "vulnerabilities": []} x', "trailing data"),
    ],
)
def test_malformed_feed(tmp_path: Path, doc: bytes, message: str) -> None:
    path = tmp_path / "nvdcve-2.0-2024.json"
    path.write_bytes(doc)
    with pytest.raises(VulnDBError, match=message):
        list(FeedReader(path))


def _db_with_osv(tmp_path: Path) -> Path:
    db = tmp_path / "osv.db"
    import_paths(db, [OSV_DATA / "debian"])
    return db


def test_import_and_query(tmp_path: Path) -> None:
    db = _db_with_osv(tmp_path)
    tree = NvdTree().put("2022", _real_shaped(), nvd_cve("CVE-2022-0002", status="Rejected"))
    tree.write_dir(tmp_path / "feeds")
    feed = tmp_path / "feeds" / "nvdcve-2.0-2022.json.gz"
    with VulnDB(db) as before:
        assert before.nvd_status() is None
        assert before.nvd(["CVE-2022-1292"]) == {}
    stats = import_nvd(db, [feed_file(feed)])
    assert (stats.read, stats.added, stats.invalid) == (2, 2, 0)
    with VulnDB(db) as after:
        found = after.nvd(["CVE-2022-1292", "CVE-2022-0002", "CVE-1999-0001", "DSA-1-1"])
        assert set(found) == {"CVE-2022-1292", "CVE-2022-0002"}
        assert found["CVE-2022-1292"] == parse_cve(_real_shaped())
        assert found["CVE-2022-0002"].status == "Rejected"
        status = after.nvd_status()
        assert status is not None
        assert status.cves == 2
        assert status.last_full is None
        assert status.newest_modified is not None
        assert status.newest_modified.isoformat() == "2025-08-11T17:19:56.250000+00:00"
        # OSV data untouched.
        assert [row.id for row in after.affecting("Debian:10", "zlib")] == ["DLA-3103-1"]


def test_newer_lastmodified_wins(tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    old = nvd_cve("CVE-2024-0001", "2024-01-01T00:00:00.000", metrics={})
    new = nvd_cve(
        "CVE-2024-0001",
        "2024-03-01T00:00:00.000",
        metrics={"cvssMetricV31": [v31(9.8, "CRITICAL", V31_ADP)]},
    )
    NvdTree().put("modified", new).write_dir(tmp_path / "a")
    NvdTree().put("2024", old).write_dir(tmp_path / "b")
    stats = import_nvd(
        db,
        [
            feed_file(tmp_path / "a" / "nvdcve-2.0-modified.json.gz"),
            feed_file(tmp_path / "b" / "nvdcve-2.0-2024.json.gz"),
        ],
    )
    assert (stats.added, stats.unchanged) == (1, 1)
    with VulnDB(db) as held:
        assert held.nvd(["CVE-2024-0001"])["CVE-2024-0001"].metrics[0].score == 9.8


def test_sha_mismatch_leaves_db_unchanged(tmp_path: Path) -> None:
    db = _db_with_osv(tmp_path)
    tree = NvdTree().put("2024", nvd_cve("CVE-2024-0001"))
    feeds = tree.write_dir(tmp_path / "feeds")
    (feeds / "nvdcve-2.0-2024.meta").write_text("sha256:" + "0" * 64 + "\n")
    with pytest.raises(VulnDBError, match="sha256 of the uncompressed feed"):
        import_nvd(db, [feed_file(feeds / "nvdcve-2.0-2024.json.gz")])
    with VulnDB(db) as held:
        assert held.nvd_status() is None
        assert held.nvd(["CVE-2024-0001"]) == {}


def test_truncated_gzip_leaves_db_unchanged(tmp_path: Path) -> None:
    db = _db_with_osv(tmp_path)
    items = [nvd_cve(f"CVE-2024-{n:04d}") for n in range(1, 400)]
    data = gzip.compress(feed_document(items))
    path = tmp_path / "nvdcve-2.0-2024.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VulnDBError, match="cannot read NVD feed"):
        import_nvd(db, [feed_file(path)])
    with VulnDB(db) as held:
        assert held.nvd_status() is None


@pytest.mark.parametrize("offset", [10, 11, 12, 200, -6])
def test_corrupt_gzip_is_one_error(tmp_path: Path, offset: int) -> None:
    # Bad deflate data (ISA-L raises its own error class), a bad CRC: never a traceback.
    data = bytearray(
        gzip.compress(feed_document([nvd_cve(f"CVE-2024-{n:04d}") for n in range(1, 60)]))
    )
    data[offset] ^= 0xFF
    path = tmp_path / "nvdcve-2.0-2024.json.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(VulnDBError):
        list(FeedReader(path))


def test_classify_by_content(tmp_path: Path) -> None:
    tree = NvdTree().put("2024", nvd_cve("CVE-2024-0001"))
    feeds = tree.write_dir(tmp_path / "feeds")
    plain = tmp_path / "nvd-plain.json"
    plain.write_bytes(feed_document([nvd_cve("CVE-2024-0002")]))
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes(tracker_document({"zlib": {"CVE-2022-37434": tracker_entry({})}}))
    record = OSV_DATA / "debian"
    osv_json = next(record.rglob("*.json"))
    kinds = classify([feeds / "nvdcve-2.0-2024.json.gz", plain, tracker, record, osv_json])
    assert kinds.nvd == (feeds / "nvdcve-2.0-2024.json.gz", plain)
    assert kinds.tracker == (tracker,)
    assert kinds.osv == (record, osv_json)


def test_tracker_import_and_urgency(tmp_path: Path) -> None:
    db = _db_with_osv(tmp_path)
    doc = {
        "openssl": {
            "CVE-2021-3711": tracker_entry(
                {"bullseye": "not yet assigned", "bookworm": "high", "buster": "medium**"},
                status="resolved",
            ),
            "TEMP-0000000-ABCDEF": tracker_entry({"sid": "unimportant"}),
        },
        "zlib": {"CVE-2022-37434": tracker_entry({"bookworm": "low", "trixie": "end-of-life"})},
        "empty": {},
    }
    path = tmp_path / "tracker.json.gz"
    path.write_bytes(gzip.compress(tracker_document(doc)))
    with VulnDB(db) as before:
        assert before.debian_tracker_status() is None
        assert before.debian_urgency("CVE-2021-3711", "openssl", "12") is None
    stats = import_tracker(db, path)
    assert (stats.packages, stats.entries) == (3, 3)
    with VulnDB(db) as held:
        assert held.debian_tracker_status() is not None
        assert held.debian_urgency("CVE-2021-3711", "openssl", "12") == "high"
        assert held.debian_urgency("CVE-2021-3711", "openssl", "11") == "not yet assigned"
        assert held.debian_urgency("CVE-2021-3711", "openssl", "10") == "medium**"  # raw
        assert held.debian_urgency("CVE-2021-3711", "openssl", "13") is None
        assert held.debian_urgency("CVE-2022-37434", "zlib", "13") == "end-of-life"
        assert held.debian_urgency("CVE-2022-37434", "openssl", "12") is None
    # A new snapshot replaces the old one.
    path.write_bytes(
        tracker_document({"zlib": {"CVE-2022-37434": tracker_entry({"bookworm": "medium"})}})
    )
    import_tracker(db, path)
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-2021-3711", "openssl", "12") is None
        assert held.debian_urgency("CVE-2022-37434", "zlib", "12") == "medium"


def test_truncated_tracker_leaves_db_unchanged(tmp_path: Path) -> None:
    db = _db_with_osv(tmp_path)
    good = tmp_path / "tracker.json"
    good.write_bytes(tracker_document({"zlib": {"CVE-1": tracker_entry({"bookworm": "low"})}}))
    import_tracker(db, good)
    bad = tmp_path / "bad.json"
    bad.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(VulnDBError, match="truncated"):
        import_tracker(db, bad)
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-1", "zlib", "12") == "low"


def test_schema_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = _db_with_osv(tmp_path)
    # Make it what schema 1 wrote: no NVD/tracker tables, version 1.
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TABLE nvd; DROP TABLE debian_urgency;"
        "UPDATE meta SET value='1' WHERE key='schema_version';"
    )
    conn.close()
    with VulnDB(db) as held:
        assert held.status().schema_version == SCHEMA_VERSION
        assert held.nvd_status() is None
        assert [row.id for row in held.affecting("Debian:10", "zlib")] == ["DLA-3103-1"]
    NvdTree().put("2024", nvd_cve("CVE-2024-0001")).write_dir(tmp_path / "f")
    import_nvd(db, [feed_file(tmp_path / "f" / "nvdcve-2.0-2024.json.gz")])
    with VulnDB(db) as held:
        assert set(held.nvd(["CVE-2024-0001"])) == {"CVE-2024-0001"}


def test_nvdcve_dataclass_contract() -> None:
    # The interface the matcher codes against (issue 11): field names and order.
    assert list(NvdCve.__dataclass_fields__)[:5] == [
        "id",
        "status",
        "last_modified",
        "description",
        "metrics",
    ]
    assert list(NvdMetric.__dataclass_fields__) == [
        "version",
        "source",
        "primary",
        "vector",
        "score",
        "severity",
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_parallel_parse_same_result(tmp_path: Path, workers: int) -> None:
    # Several feeds parsed by worker processes land exactly as a streamed import does,
    # including "newest lastModified wins" across feeds and a bad .meta failing the whole.
    tree = NvdTree()
    tree.put("2022", _real_shaped(), nvd_cve("CVE-2022-0002", "2024-01-01T00:00:00.000"))
    tree.put("modified", nvd_cve("CVE-2022-0002", "2024-05-01T00:00:00.000", status="Modified"))
    tree.put("2023", *(nvd_cve(f"CVE-2023-{n:04d}") for n in range(1, 50)))
    feeds = tree.write_dir(tmp_path / "feeds")
    names = ["2022", "modified", "2023"]
    files = [feed_file(feeds / f"nvdcve-2.0-{name}.json.gz") for name in names]
    db = tmp_path / "osv.db"
    stats = import_nvd(db, files, workers=workers)
    assert (stats.read, stats.added, stats.replaced, stats.unchanged) == (52, 51, 1, 0)
    with VulnDB(db) as held:
        assert held.nvd(["CVE-2022-0002"])["CVE-2022-0002"].status == "Modified"
        assert held.nvd(["CVE-2022-1292"])["CVE-2022-1292"] == parse_cve(_real_shaped())
    (feeds / "nvdcve-2.0-2023.meta").write_text("sha256:" + "1" * 64 + "\n")
    bad = [feed_file(feeds / f"nvdcve-2.0-{name}.json.gz") for name in names]
    with pytest.raises(VulnDBError, match=r"its \.meta says"):
        import_nvd(tmp_path / "other.db", bad, workers=workers)
    with VulnDB(tmp_path / "other.db") as other:
        assert other.nvd_status() is None
        assert other.nvd(["CVE-2022-0002"]) == {}
    # A broken feed in a worker process is reported with its file, one line, nothing applied.
    data = (feeds / "nvdcve-2.0-2023.json.gz").read_bytes()
    (feeds / "nvdcve-2.0-2023.json.gz").write_bytes(data[: len(data) // 2])
    (feeds / "nvdcve-2.0-2023.meta").unlink()
    broken = [feed_file(feeds / f"nvdcve-2.0-{name}.json.gz") for name in names]
    with pytest.raises(VulnDBError, match="cannot read NVD feed") as info:
        import_nvd(tmp_path / "other.db", broken, workers=workers)
    assert info.value.where == str(feeds / "nvdcve-2.0-2023.json.gz")


def test_directory_of_feeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    feeds = NvdTree().put("2024", nvd_cve("CVE-2024-0001")).write_dir(tmp_path / "nvd")
    kinds = classify([feeds])
    assert kinds == type(kinds)((), (feeds / "nvdcve-2.0-2024.json.gz",), ())
    assert not caplog.records
    # An OSV record mixed in is not imported from such a directory, and that is said.
    (feeds / "DSA-1-1.json").write_text("{}")
    assert classify([feeds]).osv == ()
    assert "only those are imported from it (not DSA-1-1.json)" in caplog.text


def test_one_cve_too_large_is_one_error_and_db_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MAX_CVE_CHARS bounds what one value may buffer (a hostile or broken feed); a small
    # limit stands in for it. It applies to a value not complete within the 1 MiB read
    # window, hence a CVE of 3 MiB (gzip makes it small on disk).
    db = _db_with_osv(tmp_path)
    big = nvd_cve("CVE-2024-0002", description="x" * (3 << 20))
    feeds = NvdTree().put("2024", nvd_cve("CVE-2024-0001"), big).write_dir(tmp_path / "feeds")
    before = db.read_bytes()
    monkeypatch.setattr(nvd, "MAX_CVE_CHARS", 1000)
    with pytest.raises(VulnDBError, match="one JSON value is larger than 1000 characters") as info:
        import_nvd(db, [feed_file(feeds / "nvdcve-2.0-2024.json.gz")])
    assert "nvdcve-2.0-2024.json.gz" in info.value.diagnostics()
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("document", "message"),
    [
        # Every package malformed: the package value a list, releases a string, an urgency
        # that is not a string. Importing it would replace the snapshot with nothing.
        (
            {
                "zlib": [],
                "openssl": {"CVE-2021-3711": {"releases": "bookworm"}},
                "curl": {"CVE-2023-38545": {"releases": {"bookworm": {"urgency": 3}}}},
            },
            "holds no usable entry (3 malformed",
        ),
        ({}, "holds no package"),
        ([{"zlib": {}}], "malformed JSON: expected '{', found '['"),
    ],
)
def test_malformed_tracker_is_one_error_and_db_unchanged(
    tmp_path: Path, document: object, message: str
) -> None:
    db = _db_with_osv(tmp_path)
    good = tmp_path / "tracker.json"
    good.write_bytes(tracker_document({"zlib": {"CVE-1": tracker_entry({"bookworm": "low"})}}))
    import_tracker(db, good)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(VulnDBError, match=re.escape(message)) as info:
        import_tracker(db, bad)
    assert info.value.where == str(bad)
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-1", "zlib", "12") == "low"


def test_malformed_tracker_entries_are_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = _db_with_osv(tmp_path)
    path = tmp_path / "tracker.json"
    entries = {"CVE-1": tracker_entry({"bookworm": "low"}), "CVE-2": {"releases": ["bookworm"]}}
    path.write_text(json.dumps({"zlib": entries, "curl": "not an object"}))
    stats = import_tracker(db, path)
    assert (stats.packages, stats.entries, stats.malformed) == (2, 1, 2)
    assert "zlib CVE-2: its releases are not an object" in caplog.text
    assert "package 'curl' is not an object of CVEs" in caplog.text
    with VulnDB(db) as held:
        assert held.debian_urgency("CVE-1", "zlib", "12") == "low"


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (b"sha256:" + b"A" * 64 + b"\n" + b"x" * 5000, "larger than 4096 bytes"),
        (bytes(range(256)) * 4, "no valid sha256 line"),
    ],
)
def test_oversized_or_binary_meta_is_one_error(tmp_path: Path, meta: bytes, message: str) -> None:
    feeds = NvdTree().put("2024", nvd_cve("CVE-2024-0001")).write_dir(tmp_path / "feeds")
    (feeds / "nvdcve-2.0-2024.meta").write_bytes(meta)
    with pytest.raises(VulnDBError, match=message) as info:
        feed_file(feeds / "nvdcve-2.0-2024.json.gz")
    assert info.value.where == str(feeds / "nvdcve-2.0-2024.meta")
