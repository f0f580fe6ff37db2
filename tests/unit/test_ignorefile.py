"""The ``.kubegateignore.yaml`` exceptions file: scope, expiry, malformed entries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kubegate.decide.ignorefile import load_ignore_file
from kubegate.errors import ConfigError
from kubegate.models import Finding, ImageRef, ImageUse, NotSeen, Origin, Package, Severity

TODAY = dt.date(2026, 11, 26)

LIBSSL = Package(
    name="libssl1.1",
    version="1.1.1d-0+deb10u6",
    type="deb",
    purl="pkg:deb/debian/libssl1.1@1.1.1d-0%2Bdeb10u6?arch=amd64&distro=debian-10",
    extractor="dpkg",
    source_name="openssl",
    source_version="1.1.1d-0+deb10u6",
)
FINDING = Finding(
    id="CVE-2021-3711",
    record_ids=("DSA-4963-1", "CVE-2021-3711"),
    aliases=(),
    severity=Severity.CRITICAL,
    severity_source="nvd",
    package=LIBSSL,
    ecosystem="Debian:10",
    fixed_versions=("1.1.1d-0+deb10u7",),
)
IMAGE = ImageRef("ghcr.io", "acme/web", "1.0")
USE = ImageUse(
    ref=IMAGE,
    origin=Origin("apps/web.yaml", 17),
    kind="Deployment",
    namespace="apps",
    name="web",
    container="web",
)


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / ".kubegateignore.yaml"
    path.write_text(text)
    return load_ignore_file(path)


def test_scoped_entry_covers_only_its_scope(tmp_path: Path) -> None:
    ignore = _load(
        tmp_path,
        """
vulnerabilities:
  - id: CVE-2021-3711
    images: ["ghcr.io/acme/*"]
    packages: ["openssl"]
    workloads: ["apps/Deployment/web"]
    expires: 2026-12-31
    reason: no SM2 in this service
""",
    )
    assert ignore.problems == ()
    entry = ignore.vulnerability_exception(FINDING, USE, IMAGE, TODAY)
    assert entry is not None and entry.reason == "no SM2 in this service"
    other_image = ImageRef("docker.io", "library/nginx", "1.21.0")
    assert ignore.vulnerability_exception(FINDING, USE, other_image, TODAY) is None
    other_use = ImageUse(
        ref=IMAGE,
        origin=Origin("x.yaml", 1),
        kind="Deployment",
        namespace="other",
        name="web",
        container="web",
    )
    assert ignore.vulnerability_exception(FINDING, other_use, IMAGE, TODAY) is None


def test_advisory_id_covers_the_flaws_it_names(tmp_path: Path) -> None:
    ignore = _load(
        tmp_path,
        "vulnerabilities:\n  - {id: DSA-4963-1, expires: '2027-01-01', reason: accepted}\n",
    )
    assert ignore.vulnerability_exception(FINDING, USE, IMAGE, TODAY) is not None


def test_purl_without_version_covers_every_version(tmp_path: Path) -> None:
    ignore = _load(
        tmp_path,
        "vulnerabilities:\n  - {id: CVE-2021-3711, packages: ['pkg:deb/debian/libssl1.1'],"
        " expires: 2027-01-01, reason: r}\n",
    )
    assert ignore.vulnerability_exception(FINDING, USE, IMAGE, TODAY) is not None


def test_expired_entry_suppresses_nothing_and_is_reported(tmp_path: Path) -> None:
    ignore = _load(
        tmp_path,
        "vulnerabilities:\n  - {id: CVE-2021-3711, expires: 2026-11-25, reason: old}\n",
    )
    assert ignore.vulnerability_exception(FINDING, USE, IMAGE, TODAY) is None
    assert [e.id for e in ignore.expired(TODAY)] == ["CVE-2021-3711"]  # type: ignore[union-attr]
    # Valid through the expiry date itself.
    assert ignore.vulnerability_exception(FINDING, USE, IMAGE, dt.date(2026, 11, 25)) is not None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{id: CVE-1, reason: r}", "expires is required"),
        ("{id: CVE-1, expires: 2027-01-01}", "reason is required"),
        ("{id: CVE-1, expires: soon, reason: r}", "expires is required"),
        ("{id: CVE-1, expires: 2027-01-01, reason: r, image: x}", "unknown field"),
        ("{id: CVE-1, expires: 2027-01-01, reason: r, images: web}", "images must be a list"),
        ("just-a-string", "entry must be a mapping"),
    ],
)
def test_malformed_entries_are_reported_and_suppress_nothing(
    tmp_path: Path, entry: str, message: str
) -> None:
    ignore = _load(tmp_path, f"vulnerabilities:\n  - {entry}\n")
    assert ignore.vulnerabilities == ()
    assert len(ignore.problems) == 1 and message in ignore.problems[0]
    assert "vulnerabilities[1]" in ignore.problems[0]


def test_not_seen_entries(tmp_path: Path) -> None:
    ignore = _load(
        tmp_path,
        """
notSeen:
  - kind: HelmRelease
    namespace: infra
    name: cert-manager
    expires: 2026-12-31
    reason: chart images scanned in the chart's own pipeline
""",
    )
    item = NotSeen("HelmRelease", "infra", "cert-manager", Origin("infra/r.yaml", 1), "charts")
    assert ignore.not_seen_exception(item, TODAY) is not None
    other = NotSeen("HelmRelease", "apps", "cert-manager", Origin("apps/r.yaml", 1), "charts")
    assert ignore.not_seen_exception(other, TODAY) is None
    assert ignore.not_seen_exception(item, dt.date(2027, 1, 1)) is None


@pytest.mark.parametrize("text", ["- a\n- b\n", "vulnerabilities: [\n"])
def test_unusable_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert ".kubegateignore.yaml" in info.value.diagnostics()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_ignore_file(tmp_path / "absent.yaml")
