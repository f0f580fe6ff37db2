"""The matcher against the fixture advisories: each of OSV.md's classic mistakes has a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubegate.match import Matcher, match_packages, target_for
from kubegate.match.versions import comparator_for
from kubegate.models import OSInfo, Severity
from kubegate.vulndb import VulnDB, import_paths
from tests.fixtures.osvdb import deb, pkg

BUSTER = OSInfo("debian", "10", "Debian GNU/Linux 10 (buster)")
BOOKWORM = OSInfo("debian", "12.5")


def _by_id(result: object) -> dict[tuple[str, str], object]:
    return {(f.package.name, f.id): f for f in result.findings}  # type: ignore[attr-defined]


def _needs(ecosystem: str) -> None:
    if comparator_for(ecosystem) is None:
        pytest.skip(f"no version comparator for {ecosystem} in kubegate.match.versions yet")


def test_buster_openssl_and_zlib_findings(osv_db: VulnDB) -> None:
    packages = [
        deb("libssl1.1", "1.1.1d-0+deb10u6", "openssl"),
        deb("openssl", "1.1.1d-0+deb10u6"),
        deb("zlib1g", "1:1.2.11.dfsg-1+deb10u1", "zlib"),
    ]
    result = match_packages(osv_db, packages, BUSTER, platform="linux/amd64")
    found = {(f.package.name, f.id) for f in result.findings}
    cves = {"CVE-2021-3711", "CVE-2021-3712", "CVE-2021-4160", "CVE-2022-0778"}
    # Findings never span packages: both binaries of openssl get every openssl CVE.
    assert found == {(p, c) for p in ("libssl1.1", "openssl") for c in cves} | {
        ("zlib1g", "CVE-2022-37434")
    }
    findings = _by_id(result)
    zlib = findings[("zlib1g", "CVE-2022-37434")]
    assert zlib.fixed_versions == ("1:1.2.11.dfsg-1+deb10u2",)  # type: ignore[attr-defined]
    assert zlib.ecosystem == "Debian:10"  # type: ignore[attr-defined]
    assert zlib.platform == "linux/amd64"  # type: ignore[attr-defined]
    assert zlib.severity is Severity.CRITICAL  # type: ignore[attr-defined]
    assert zlib.cvss.score == 9.8  # type: ignore[attr-defined]
    assert result.ecosystems == ("Debian:10",)  # release-qualified: freshness per release
    assert result.problems == ()


def test_fixed_source_versions_are_not_findings(osv_db: VulnDB) -> None:
    packages = [
        deb("libssl1.1", "1.1.1d-0+deb10u7", "openssl"),  # fixes DSA-4963-1 only
        deb("zlib1g", "1:1.2.11.dfsg-1+deb10u2", "zlib"),
    ]
    result = match_packages(osv_db, packages, BUSTER)
    assert {f.id for f in result.findings} == {"CVE-2021-4160", "CVE-2022-0778"}


def test_binary_name_is_not_matched_only_source_name(osv_db: VulnDB) -> None:
    # Mistake 1: libssl1.1 has no advisories under its own name; without Source it matches none.
    assert match_packages(osv_db, [deb("libssl1.1", "1.1.1d-0+deb10u6")], BUSTER).findings == ()


def test_binnmu_binary_version_is_not_compared(osv_db: VulnDB) -> None:
    # OSV.md mistake 1: binary 5.2.15-2+b2 of source 5.2.15-2; the fix is 5.2.15-2+b1.
    binnmu = deb("binnmu-bin", "5.2.15-2+b2", "binnmu-src", "5.2.15-2")
    result = match_packages(osv_db, [binnmu], BOOKWORM)
    assert [f.id for f in result.findings] == ["CVE-2099-3001"]
    assert result.findings[0].package.version == "5.2.15-2+b2"


def test_epoch_is_kept(osv_db: VulnDB) -> None:
    # Without the epoch 1:1.2.11... would sort below the fix and look vulnerable forever.
    fixed = deb("zlib1g", "1:1.2.11.dfsg-1+deb10u2", "zlib")
    newer = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")
    assert match_packages(osv_db, [fixed, newer], BUSTER).findings == ()


def test_unqualified_debian_is_never_queried(osv_db: VulnDB) -> None:
    # DEBIAN-CVE-2099-5001 names plain "Debian": it must not match Debian 12's examplelib.
    result = match_packages(osv_db, [deb("examplelib", "2.0-1+deb12u1")], BOOKWORM)
    assert "CVE-2099-5001" not in {f.id for f in result.findings}
    target = target_for(deb("examplelib", "1"), OSInfo("debian", None))
    assert not hasattr(target, "ecosystem") and target.problem  # type: ignore[union-attr]


def test_unqualified_debian_with_testing_is_a_problem_not_a_query(osv_db: VulnDB) -> None:
    result = match_packages(osv_db, [deb("examplelib", "1.0-1")], OSInfo("debian", None))
    assert result.findings == ()
    assert [s.package.name for s in result.problems] == ["examplelib"]
    assert result.ecosystems == ()


def test_withdrawn_record_is_dropped(osv_db: VulnDB) -> None:
    result = match_packages(osv_db, [deb("examplelib", "1.0-1")], BOOKWORM)
    ids = {f.id for f in result.findings}
    assert "CVE-2099-4001" not in ids
    assert osv_db.records(["DEBIAN-CVE-2099-4001"]) == {}


def test_dsa_with_five_cves_joins_five_findings(osv_db: VulnDB) -> None:
    result = match_packages(osv_db, [deb("libexample2", "2.0-1", "examplelib")], BOOKWORM)
    assert sorted(f.id for f in result.findings) == [f"CVE-2099-100{i}" for i in range(1, 6)]
    for finding in result.findings:
        assert finding.record_ids == ("DSA-9999-1", finding.id)
        assert finding.fixed_versions == ("2.0-1+deb12u1",)
        # Never merge two CVEs: no finding lists another CVE as its alias.
        assert not any(a.startswith("CVE-") for a in finding.aliases)


def test_dsa_debian_cve_and_cve_are_one_finding(osv_db: VulnDB) -> None:
    result = match_packages(osv_db, [deb("libssl1.1", "1.1.1d-0+deb10u6", "openssl")], BUSTER)
    finding = _by_id(result)[("libssl1.1", "CVE-2021-3711")]
    assert finding.record_ids == ("DEBIAN-CVE-2021-3711", "DSA-4963-1", "CVE-2021-3711")  # type: ignore[attr-defined]
    assert [f.id for f in result.findings].count("CVE-2021-3711") == 1
    # No Debian urgency in either record, no NVD feed in this database: the OSV CVE record
    # decides, and says so.
    assert finding.severity is Severity.CRITICAL  # type: ignore[attr-defined]
    assert finding.severity_source == "osv-cve"  # type: ignore[attr-defined]


def test_vendor_low_beats_nvd_critical_and_names_the_source(osv_db: VulnDB) -> None:
    result = match_packages(osv_db, [deb("lowpkg", "1.0-1")], BOOKWORM)
    (finding,) = result.findings
    assert finding.id == "CVE-2099-2001"
    assert finding.severity is Severity.LOW
    assert finding.severity_source == "debian"
    # A word rating decided: no vector is reported as if it had.
    assert finding.cvss is None
    assert finding.fixed_versions == () and not finding.fixable


def test_ubuntu_lts_variant_matches_release(osv_db: VulnDB) -> None:
    focal = OSInfo("ubuntu", "20.04")
    result = match_packages(
        osv_db, [deb("libssl1.1", "1.1.1f-1ubuntu2.11", "openssl", distro="ubuntu")], focal
    )
    assert [(f.id, f.ecosystem, f.record_ids) for f in result.findings] == [
        ("CVE-2022-0778", "Ubuntu:20.04", ("USN-5328-1", "CVE-2022-0778"))
    ]
    fixed = deb("libssl1.1", "1.1.1f-1ubuntu2.12", "openssl", distro="ubuntu")
    assert match_packages(osv_db, [fixed], focal).findings == ()


def test_ubuntu_pro_variant_matches_release_with_ubuntu_priority(osv_db: VulnDB) -> None:
    result = match_packages(
        osv_db, [deb("examplelib", "1.0", distro="ubuntu")], OSInfo("ubuntu", "16.04")
    )
    (finding,) = result.findings
    assert (finding.id, finding.severity, finding.severity_source) == (
        "CVE-2099-6001",
        Severity.MEDIUM,
        "ubuntu",
    )


def test_os_owned_language_package_skips_language_feeds(osv_db: VulnDB) -> None:
    _needs("PyPI")
    owned = pkg("urllib3", "1.26.4", "pypi", os_owned=True)
    result = match_packages(osv_db, [owned], BOOKWORM)
    assert result.findings == ()
    assert [(s.package.name, s.problem) for s in result.skipped] == [("urllib3", False)]


def test_os_owned_skip_needs_no_comparator(osv_db: VulnDB) -> None:
    owned = pkg("urllib3", "1.26.4", "pypi", os_owned=True)
    skip = target_for(owned, BOOKWORM)
    assert skip.reason.startswith("owned by an OS package")  # type: ignore[union-attr]


def test_third_party_deb_skips_distro_advisories(osv_db: VulnDB) -> None:
    vendor = deb("libssl1.1", "1.1.1d-0+deb10u6", "openssl", third_party=True)
    result = match_packages(osv_db, [vendor], BUSTER)
    assert result.findings == ()
    assert result.skipped[0].reason.startswith("third-party")
    assert not result.skipped[0].problem


def test_pypi_pysec_and_ghsa_are_one_finding(osv_db: VulnDB) -> None:
    _needs("PyPI")
    result = match_packages(osv_db, [pkg("urllib3", "1.26.4", "pypi")], BOOKWORM)
    (finding,) = result.findings
    assert finding.id == "CVE-2021-33503"
    assert finding.record_ids == ("GHSA-q2q7-5pp4-w6pg", "PYSEC-2021-108", "CVE-2021-33503")
    assert (finding.severity, finding.severity_source) == (Severity.HIGH, "ghsa")
    assert finding.fixed_versions == ("1.26.5",)


def test_pypi_names_are_pep503_normalised(osv_db: VulnDB) -> None:
    _needs("PyPI")
    result = match_packages(osv_db, [pkg("example.lib", "1.0", "pypi")], BOOKWORM)
    assert [(f.id, f.severity_source) for f in result.findings] == [("GHSA-xxxx-9999-0001", "ghsa")]


def test_alpine_origin_and_release(osv_db: VulnDB) -> None:
    _needs("Alpine:v3.15")
    alpine = OSInfo("alpine", "3.15.4")
    libcrypto = pkg("libcrypto1.1", "1.1.1l-r7", "apk", source_name="openssl")
    result = match_packages(osv_db, [libcrypto], alpine)
    assert [(f.id, f.ecosystem, f.fixed_versions) for f in result.findings] == [
        ("CVE-2022-0778", "Alpine:v3.15", ("1.1.1n-r0",))
    ]
    fixed = pkg("libcrypto1.1", "1.1.1n-r0", "apk", source_name="openssl")
    assert match_packages(osv_db, [fixed], alpine).findings == ()


def test_alpine_ecosystem_is_major_minor() -> None:
    target = target_for(pkg("musl", "1.2", "apk", source_name="musl"), OSInfo("alpine", "3.19.1"))
    assert target.ecosystem == "Alpine:v3.19"  # type: ignore[union-attr]


def test_red_hat_epoch(osv_db: VulnDB) -> None:
    _needs("Red Hat:enterprise_linux:8")
    rhel = OSInfo("rhel", "8.5")
    vulnerable = pkg("openssl-libs", "1:1.1.1k-5.el8_5", "rpm", source_name="openssl")
    fixed = pkg("openssl-libs", "1:1.1.1k-6.el8_5", "rpm", source_name="openssl")
    result = match_packages(osv_db, [vulnerable, fixed], rhel)
    assert [(f.package.version, f.id, f.severity_source) for f in result.findings] == [
        ("1:1.1.1k-5.el8_5", "CVE-2022-0778", "redhat")
    ]


def test_red_hat_ecosystem_target() -> None:
    target = target_for(pkg("openssl-libs", "1:1.1.1k-5.el8_5", "rpm"), OSInfo("rhel", "8.5"))
    assert (target.ecosystem, target.index_ecosystem, target.name) == (  # type: ignore[union-attr]
        "Red Hat:enterprise_linux:8",
        "Red Hat:enterprise_linux:8",
        "openssl-libs",
    )


def test_unknown_os_is_a_problem() -> None:
    skip = target_for(deb("bash", "5.1"), OSInfo("arch"))
    assert skip.problem  # type: ignore[union-attr]


def test_matcher_is_warm_on_second_call(osv_db: VulnDB) -> None:
    matcher = Matcher(osv_db)
    packages = [deb("libssl1.1", "1.1.1d-0+deb10u6", "openssl")]
    first = matcher.match(packages, BUSTER)
    second = matcher.match(packages, BUSTER)
    assert first == second and len(first.findings) == 4


def test_precedence_step_2_distro_record_of_the_same_flaw(osv_db: VulnDB) -> None:
    # DSA-9999-2 matches but rates nothing; DEBIAN-CVE-2099-7001 (fixed earlier, so not matched)
    # rates Debian 12's steppkg low (Debian 11's high): Debian 12's rating decides, not NVD's 9.8.
    result = match_packages(osv_db, [deb("steppkg", "1.0-2")], BOOKWORM)
    (finding,) = result.findings
    assert finding.record_ids == ("DSA-9999-2", "CVE-2099-7001")
    assert (finding.severity, finding.severity_source) == (Severity.LOW, "debian")
    assert "DEBIAN-CVE-2099-7001" in finding.aliases


def test_precedence_step_3_ghsa_before_nvd(osv_db: VulnDB) -> None:
    result = match_packages(osv_db, [deb("ghsapkg", "1.0-1")], BOOKWORM)
    (finding,) = result.findings
    assert (finding.id, finding.severity, finding.severity_source) == (
        "CVE-2099-8001",
        Severity.MEDIUM,
        "ghsa",
    )
    assert finding.cvss is None  # the GHSA's word rating decided


def test_unorderable_record_makes_the_package_undecided_not_the_scan(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    for record_id, fixed in (("DEBIAN-CVE-2099-9001", "1.0-2"), ("DEBIAN-CVE-2099-9002", "a b c")):
        record = {
            "id": record_id,
            "modified": "2099-01-01T00:00:00Z",
            "upstream": [record_id.removeprefix("DEBIAN-")],
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "oddpkg"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                    ],
                }
            ],
        }
        (feed / f"{record_id}.json").write_text(json.dumps(record))
    import_paths(tmp_path / "db", [feed])
    with VulnDB(tmp_path / "db") as db:
        result = match_packages(db, [deb("oddpkg", "1.0-1")], BOOKWORM)
    assert [f.id for f in result.findings] == ["CVE-2099-9001"]
    (problem,) = result.problems
    assert "DEBIAN-CVE-2099-9002" in problem.reason
