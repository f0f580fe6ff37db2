"""OpenVEX statements: parsing, malformed statements, product and flaw matching, time order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubegate.decide.vex import ImageSubject, load_vex
from kubegate.errors import ConfigError
from kubegate.models import Digest, ImageRef
from tests.unit.test_ignorefile import FINDING

DIGEST = Digest("sha256:" + "ab" * 32)
PLATFORM = Digest("sha256:" + "cd" * 32)
SUBJECT = ImageSubject(ImageRef("ghcr.io", "acme/web", "1.0"), (DIGEST, PLATFORM))


def _load(tmp_path: Path, *statements: dict[str, Any], timestamp: str | None = None):  # type: ignore[no-untyped-def]
    document: dict[str, Any] = {"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}
    if timestamp:
        document["timestamp"] = timestamp
    document["statements"] = list(statements)
    path = tmp_path / f"vex{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(document))
    return load_vex([path])


def _statement(product: str, **extra: Any) -> dict[str, Any]:
    return {
        "vulnerability": {"name": "CVE-2021-3711"},
        "products": [{"@id": product}],
        "status": "not_affected",
        "justification": "component_not_present",
        **extra,
    }


@pytest.mark.parametrize(
    ("product", "covered"),
    [
        (f"pkg:oci/web@{DIGEST}?repository_url=ghcr.io/acme/web", True),
        (f"pkg:oci/web@{PLATFORM}", True),
        ("pkg:oci/web?repository_url=ghcr.io/acme/other", False),
        (f"pkg:oci/web@sha256:{'00' * 32}", False),
        (f"ghcr.io/acme/web@{DIGEST}", True),
        ("ghcr.io/acme/web:1.0", True),
        ("ghcr.io/acme/web:2.0", False),
        ("ghcr.io/acme/web", True),
        ("docker.io/acme/web", False),
        ("pkg:deb/debian/libssl1.1", True),
        ("pkg:deb/debian/libssl1.1@1.1.1d-0%2Bdeb10u6", True),
        ("pkg:deb/debian/libssl1.1@9.9", False),
        ("pkg:deb/debian/openssl", False),
    ],
)
def test_products(tmp_path: Path, product: str, covered: bool) -> None:
    vex = _load(tmp_path, _statement(product))
    assert vex.problems == ()
    assert (vex.suppression(FINDING, SUBJECT) is not None) is covered


def test_subcomponents_narrow_an_image_product(tmp_path: Path) -> None:
    image = "ghcr.io/acme/web:1.0"
    wanted = _statement(image)
    wanted["products"][0]["subcomponents"] = [{"@id": "pkg:deb/debian/zlib1g"}]
    assert _load(tmp_path, wanted).suppression(FINDING, SUBJECT) is None
    wanted["products"][0]["subcomponents"].append({"@id": "pkg:deb/debian/libssl1.1"})
    assert _load(tmp_path, wanted).suppression(FINDING, SUBJECT) is not None


def test_vulnerability_by_alias_at_id_and_advisory(tmp_path: Path) -> None:
    image = "ghcr.io/acme/web"
    by_alias = _statement(image, vulnerability={"name": "X-1", "aliases": ["CVE-2021-3711"]})
    by_iri = _statement(image, vulnerability={"@id": "https://osv.dev/vulnerability/DSA-4963-1"})
    other = _statement(image, vulnerability={"name": "CVE-2021-3712"})
    assert _load(tmp_path, by_alias).suppression(FINDING, SUBJECT) is not None
    statement = _load(tmp_path, by_iri).suppression(FINDING, SUBJECT)
    assert statement is not None and statement.vulnerability == "DSA-4963-1"
    assert _load(tmp_path, other).suppression(FINDING, SUBJECT) is None


def test_latest_statement_wins(tmp_path: Path) -> None:
    image = "ghcr.io/acme/web"
    old = _statement(image, timestamp="2026-01-01T00:00:00Z")
    new = _statement(image, status="under_investigation", timestamp="2026-02-01T00:00:00Z")
    new.pop("justification")
    assert _load(tmp_path, new, old).suppression(FINDING, SUBJECT) is None
    fixed = _statement(image, status="fixed", timestamp="2026-03-01T00:00:00Z")
    statement = _load(tmp_path, new, old, fixed).suppression(FINDING, SUBJECT)
    assert statement is not None and statement.reason.startswith("VEX fixed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "unknown"}, "status must be one of"),
        ({"justification": "because"}, "unknown justification"),
        ({"justification": None}, "needs a justification or an impact_statement"),
        ({"products": [{"@id": "not a ref!"}]}, "neither a purl nor an image reference"),
        ({"products": [{"id": "x"}]}, "each product needs an @id"),
        ({"vulnerability": "CVE-2021-3711"}, "vulnerability must be an object"),
        ({"vulnerability": {"aliases": ["CVE-1"]}}, "needs a name or an @id"),
        ({"timestamp": "yesterday"}, "RFC 3339"),
    ],
)
def test_malformed_statements_are_reported(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    statement = _statement("ghcr.io/acme/web")
    statement.update(change)
    statement = {k: v for k, v in statement.items() if v is not None}
    vex = _load(tmp_path, statement)
    assert vex.statements == ()
    (problem,) = vex.problems
    assert "statements[1]" in problem and message in problem
    assert vex.suppression(FINDING, SUBJECT) is None


def test_bad_document_timestamp_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timestamp"):
        _load(tmp_path, timestamp="soon")
