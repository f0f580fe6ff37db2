"""Image report writers: registry completeness, the stable JSON shape (golden) and the table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kubegate.decide.policy import Policy, judge
from kubegate.match import match_packages
from kubegate.models import OSInfo
from kubegate.report import WRITERS, ImageInfo, OutputFormat, PlatformInfo, render_image_report
from kubegate.vulndb import VulnDB
from tests.fixtures.osvdb import deb

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden"
DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageInfo(
    reference="registry.example/app:1.0",
    digest=DIGEST,
    os="debian 10",
    platforms=(PlatformInfo("linux/amd64", "sha256:" + "cd" * 32),),
)


def _judged(db: VulnDB, *, ignore_unfixed: bool = False) -> tuple:  # type: ignore[type-arg]
    packages = [
        deb("libssl1.1", "1.1.1d-0+deb10u6", "openssl"),
        deb("zlib1g", "1:1.2.11.dfsg-1+deb10u1", "zlib"),
    ]
    result = match_packages(db, packages, OSInfo("debian", "10"), platform="linux/amd64")
    return judge(result.findings, Policy(ignore_unfixed=ignore_unfixed))


def _golden(name: str, text: str) -> str:
    path = GOLDEN / name
    if os.environ.get("KUBEGATE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path.read_text()


def test_every_format_has_exactly_one_writer() -> None:
    assert sorted(w.format for w in WRITERS) == sorted(OutputFormat)


def test_json_document(osv_db: VulnDB) -> None:
    text = render_image_report(IMAGE, _judged(osv_db), "json")
    assert text == _golden("image-report.json", text)
    document = json.loads(text)
    assert document["schemaVersion"] == 1
    assert document["image"]["digest"] == DIGEST
    assert document["summary"] == {"CRITICAL": 2, "HIGH": 2, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 0}
    by_id = {f["id"]: f for f in document["findings"]}
    assert len(by_id) == len(document["findings"]) == 5
    dsa = by_id["CVE-2022-0778"]
    assert dsa["ids"] == ["DSA-5103-1", "CVE-2022-0778"]
    assert dsa["package"] == {
        "name": "libssl1.1",
        "version": "1.1.1d-0+deb10u6",
        "ecosystem": "Debian:10",
        "purl": "pkg:deb/debian/libssl1.1@1.1.1d-0+deb10u6",
        "source": {"name": "openssl", "version": "1.1.1d-0+deb10u6"},
    }
    assert dsa["fixedVersions"] == ["1.1.1d-0+deb10u8"]
    assert dsa["cvss"] == {"vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "score": 7.5}
    # These fixtures rate through osv.dev's own CVE-* record (tests/data/osv/nvd), not NVD feeds.
    assert (dsa["severity"], dsa["severitySource"], dsa["blocking"]) == ("HIGH", "osv-cve", True)
    assert by_id["CVE-2021-4160"]["blocking"] is False
    assert dsa["platform"] == "linux/amd64"


def test_table_never_truncates_off_a_tty(osv_db: VulnDB) -> None:
    judged = _judged(osv_db)
    text = render_image_report(IMAGE, judged, OutputFormat.TABLE)
    assert text == _golden("image-report.txt", text)
    lines = text.splitlines()
    assert lines[0] == f"registry.example/app:1.0@{DIGEST} (debian 10)"
    assert lines[1].split() == [
        "PACKAGE",
        "VULNERABILITY",
        "SEVERITY",
        "SOURCE",
        "STATUS",
        "INSTALLED",
        "FIXED",
        "TITLE",
    ]
    for item in judged:
        assert item.finding.title is not None and item.finding.title in text
    assert "…" not in text
    narrow = render_image_report(IMAGE, judged, "table", width=100)
    assert "…" in narrow and "1:1.2.11.dfsg-1+deb10u2" in narrow
    assert lines[-1] == "Total: CRITICAL 2, HIGH 2, MEDIUM 1, LOW 0, UNKNOWN 0; blocking: 4"


def test_table_without_findings() -> None:
    text = render_image_report(IMAGE, (), "table")
    assert "no vulnerabilities found" in text and text.endswith("blocking: 0\n")


def test_json_document_follows_its_published_schema(osv_db: VulnDB) -> None:
    import jsonschema

    schema_path = Path(__file__).resolve().parents[3] / "docs"
    schema = json.loads((schema_path / "image-v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(render_image_report(IMAGE, _judged(osv_db), "json"))
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    document["findings"][0]["severity"] = "SEVERE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
