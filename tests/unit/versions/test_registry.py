"""The comparator registry: every implementation listed once, OSV ecosystems mapped right."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import kubegate.match.versions as versions
from kubegate.match.versions import COMPARATORS, SEMVER, comparator_for, comparator_for_range


def _implementation_classes() -> set[type]:
    classes: set[type] = set()
    for module_info in pkgutil.iter_modules(versions.__path__):
        module = importlib.import_module(f"{versions.__name__}.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            defined_here = cls.__module__ == module.__name__
            if defined_here and all(hasattr(cls, attr) for attr in ("name", "ecosystems")):
                if callable(getattr(cls, "compare", None)):
                    classes.add(cls)
    return classes


def test_every_implementation_is_listed_exactly_once() -> None:
    listed = [type(comparator) for comparator in COMPARATORS]
    implementations = _implementation_classes()
    assert len(implementations) >= 13
    for cls in implementations:
        assert listed.count(cls) == 1, f"{cls.__name__} listed {listed.count(cls)} times"
    assert set(listed) == implementations


def test_names_unique_and_ecosystems_disjoint() -> None:
    names = [comparator.name for comparator in COMPARATORS]
    assert len(names) == len(set(names))
    seen: dict[str, str] = {}
    for comparator in COMPARATORS:
        assert comparator.ecosystems, f"{comparator.name} claims no ecosystem"
        for ecosystem in comparator.ecosystems:
            assert ":" not in ecosystem
            assert ecosystem not in seen, f"{ecosystem} claimed by {seen.get(ecosystem)} too"
            seen[ecosystem] = comparator.name


# The ecosystem strings of OSV.md's table, as they appear in OSV records.
@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:11", "dpkg"),
        ("Debian:12", "dpkg"),
        ("Ubuntu:22.04:LTS", "dpkg"),
        ("Ubuntu:24.10", "dpkg"),
        ("Ubuntu:Pro:18.04:LTS", "dpkg"),
        ("Alpine:v3.19", "apk"),
        ("Wolfi", "apk"),
        ("Chainguard", "apk"),
        ("Red Hat:enterprise_linux:9::baseos", "rpm"),
        ("AlmaLinux:9", "rpm"),
        ("Rocky Linux:9", "rpm"),
        ("SUSE:SUSE Linux Enterprise Server 15 SP5", "rpm"),
        ("openSUSE:Leap 15.5", "rpm"),
        ("PyPI", "pep440"),
        ("npm", "semver"),
        ("crates.io", "semver"),
        ("Go", "go"),
        ("Maven", "maven"),
        ("RubyGems", "rubygems"),
        ("NuGet", "nuget"),
        ("Packagist", "packagist"),
        ("Pub", "pub"),
        ("CRAN", "cran"),
        ("Hackage", "hackage"),
    ],
)
def test_comparator_for_maps_osv_ecosystems(ecosystem: str, scheme: str) -> None:
    comparator = comparator_for(ecosystem)
    assert comparator is not None, f"no comparator for {ecosystem}"
    assert comparator.name == scheme


@pytest.mark.parametrize("ecosystem", ["", "Debian12", "debian:12", "pypi", "Linux", "GIT"])
def test_unknown_ecosystems_have_no_comparator(ecosystem: str) -> None:
    assert comparator_for(ecosystem) is None


def test_semver_ranges_use_semver_whatever_the_ecosystem() -> None:
    assert comparator_for_range("SEMVER", "Go") is SEMVER
    assert comparator_for_range("SEMVER", "NoSuchEcosystem") is SEMVER
    ecosystem_range = comparator_for_range("ECOSYSTEM", "Debian:12")
    assert ecosystem_range is not None
    assert ecosystem_range.name == "dpkg"
    assert comparator_for_range("ECOSYSTEM", "NoSuchEcosystem") is None
