"""Readable spot checks of each scheme's defining rules (the vectors hold the bulk).

Go has no shared vectors, so its rules (pseudo-versions, ``+incompatible``, optional ``v``,
invalid versions first) are pinned here in full.
"""

from __future__ import annotations

import itertools

import pytest

from kubegate.match.versions import VersionComparator, comparator_for


def _comparator(ecosystem: str) -> VersionComparator:
    comparator = comparator_for(ecosystem)
    assert comparator is not None
    return comparator


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _assert_ascending(ecosystem: str, versions: list[str]) -> None:
    comparator = _comparator(ecosystem)
    for lower, higher in itertools.pairwise(versions):
        assert comparator.compare(lower, higher) < 0, f"{ecosystem}: {lower} !< {higher}"
        assert comparator.compare(higher, lower) > 0, f"{ecosystem}: {higher} !> {lower}"


@pytest.mark.parametrize(
    ("ecosystem", "ascending"),
    [
        (
            "Go",
            [
                "v0.0.0-20191109021931-daa7c04131f5",
                "v0.0.0-20200101000000-000000000000",
                "v0.0.0",
                "v1.2.3",
                "v1.2.4-0.20191109021931-daa7c04131f5",
                "v1.2.4-rc.1",
                "v1.2.4",
                "1.20.5",
                "v1.21",
                "v2.0.0+incompatible",
                "v2.0.1",
            ],
        ),
        ("Debian:12", ["1:1.0~rc1-1", "1:1.0-1", "1:1.0-1+deb12u1", "1:1.0+dfsg-1", "2:0.1-1"]),
        ("Alpine:v3.19", ["1.2_alpha", "1.2_rc1", "1.2", "1.2-r1", "1.2_p1", "1.2a", "1.10"]),
        ("Red Hat:enterprise_linux:9::baseos", ["1.0~rc1", "1.0", "1.0^git1", "1.0.1", "1:0.1"]),
        ("PyPI", ["0.9-doduo", "1.0.dev1", "1.0a1", "1.0rc1", "1.0", "1.0+local", "1.0.post1"]),
        ("npm", ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.11", "1.0.0", "v1.0.1", "1.10"]),
        ("Maven", ["1.0-alpha-1", "1.0-beta", "1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.0-sp", "1.0.1"]),
        ("RubyGems", ["1.0.a", "1.0.b1", "1.0.rc", "1.0", "1.0.1", "1.10"]),
        ("NuGet", ["1.0.0-alpha", "1.0.0-BETA", "1.0.0-beta2", "1.0.0", "1.0.0.1", "1.0.1"]),
        ("Packagist", ["1.0-dev", "1.0a1", "1.0b1", "1.0RC1", "1.0", "1.0pl1", "1.1"]),
    ],
)
def test_versions_ascend(ecosystem: str, ascending: list[str]) -> None:
    _assert_ascending(ecosystem, ascending)


@pytest.mark.parametrize(
    ("ecosystem", "a", "b"),
    [
        ("Go", "v1.2.3", "1.2.3"),
        ("Go", "v2.0.0+incompatible", "v2.0.0"),
        ("Go", "v1", "v1.0.0"),
        ("Debian:12", "0:1.0", "1.0"),
        ("Debian:12", "1.0", "1.0-0"),
        ("Alpine:v3.19", "1-r1", "1-r01"),
        ("Red Hat:enterprise_linux:9::baseos", "0:1.0-1.el9", "1.0-1.el9"),
        ("PyPI", "1.0", "1.0.0"),
        ("npm", "1.2.3+build", "v1.2.3+other"),
        ("Maven", "1.0", "1-ga"),
        ("Maven", "1-cr", "1rc"),
        ("RubyGems", "1.0", "1"),
        ("NuGet", "1.0", "1.0.0.0"),
        ("NuGet", "1.0.0-BETA+AA", "1.0.0-beta+aa"),
    ],
)
def test_equivalent_spellings(ecosystem: str, a: str, b: str) -> None:
    assert _comparator(ecosystem).compare(a, b) == 0


def test_go_invalid_versions_sort_first_and_deterministically() -> None:
    go = _comparator("Go")
    assert go.compare("not-a-version", "v0.0.0-20191109021931-daa7c04131f5") < 0
    assert _sign(go.compare("abc", "abd")) == -1
    assert go.compare("abc", "abc") == 0


def test_rpm_epoch_decides_before_version() -> None:
    # OSV.md mistake 4: a dropped epoch makes fixed packages look vulnerable.
    rpm = _comparator("AlmaLinux:9")
    assert rpm.compare("1:1.0-1.el9", "9.9-9.el9") > 0
    assert rpm.compare("2.0-1", "1:1.0-1") < 0


@pytest.mark.parametrize(
    "ecosystem",
    [
        "Debian:12",
        "Alpine:v3.19",
        "Red Hat",
        "PyPI",
        "npm",
        "Go",
        "Maven",
        "RubyGems",
        "NuGet",
        "Packagist",
        "Pub",
        "CRAN",
        "Hackage",
    ],
)
def test_absurdly_long_numbers_do_not_raise(ecosystem: str) -> None:
    # CPython's int() refuses over 4300 digits; such numbers must saturate, not crash the scan.
    comparator = _comparator(ecosystem)
    huge = "1" + "0" * 5000
    # packaging rejects such a number, so for PyPI it is a legacy version, sorted first.
    expected = -1 if ecosystem == "PyPI" else 1
    assert _sign(comparator.compare(huge, "2")) == expected
    assert _sign(comparator.compare("2", huge)) == -expected
    longer = f"1.{huge}9"
    assert _sign(comparator.compare(f"1.{huge}", longer)) == -_sign(
        comparator.compare(longer, f"1.{huge}")
    )
    assert comparator.compare(huge, huge) == 0


@pytest.mark.parametrize(("a", "b", "expected"), [(".x", "1", -1), ("1", ".x", 1)])
def test_packagist_empty_leading_part_terminates(a: str, b: str, expected: int) -> None:
    # Found by the property test: an empty first part made the comparison loop forever.
    from kubegate.match.versions.packagist import php_version_compare

    assert php_version_compare(a, b) == expected
