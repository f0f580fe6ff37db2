"""Property tests: every comparator is a total order on versions of its scheme.

Per scheme, hypothesis draws version strings shaped like that scheme's and checks reflexive
equality, antisymmetry, transitivity (every triple of a drawn list), agreement of ``sorted`` with
``functools.cmp_to_key`` whatever the input order, agreement with ``sort_key`` where a comparator
offers one, and that arbitrary text never raises.
"""

from __future__ import annotations

import functools
import itertools

import pytest
from debian.debian_support import version_compare
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from kubegate.match.versions import COMPARATORS, VersionComparator, comparator_for

_PATTERNS = {
    "dpkg": r"([0-9]{1,2}:)?[0-9][A-Za-z0-9.+~]{0,6}(-[A-Za-z0-9.+~]{1,5})?",
    "apk": (
        r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}[a-z]?"
        r"(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]{0,2}){0,2}(~[0-9a-f]{1,4})?(-r[0-9]{1,2})?"
    ),
    "rpm": r"([0-9]{1,2}:)?[0-9A-Za-z][0-9A-Za-z.~^_+]{0,6}(-[0-9A-Za-z.~^_]{1,5})?",
    "pep440": (
        r"([0-9]!)?[0-9]{1,3}(\.[0-9]{1,3}){0,3}((a|b|rc|alpha|beta|c|pre)[0-9]{0,2})?"
        r"(\.post[0-9]{1,2}|-[0-9]{1,2})?(\.dev[0-9]{0,2})?(\+[a-z0-9]{1,3}(\.[a-z0-9]{1,3})?)?"
        r"|[0-9]\.[0-9]-[a-z]{1,6}"
    ),
    "semver": (
        r"v?[0-9]{1,3}(\.[0-9]{1,3}){0,3}"
        r"(-[0-9A-Za-z-]{1,5}(\.[0-9A-Za-z-]{1,5}){0,2})?(\+[0-9A-Za-z-]{1,5})?"
    ),
    "go": (
        r"v?[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}(-(0\.)?20[0-9]{12}-[0-9a-f]{12}|-rc\.[0-9])?"
        r"(\+incompatible)?|[a-z]{1,4}"
    ),
    "maven": (
        r"[0-9]{1,2}([.-]?([0-9]{1,2}|alpha|beta|milestone|rc|cr|snapshot|ga|final|release"
        r"|sp|foo|a|b|m)){0,4}"
    ),
    "rubygems": r"[0-9]{1,2}(\.([0-9]{1,2}|[a-zA-Z]{1,3})){0,4}(-[a-z0-9]{1,3})?",
    "nuget": (
        r"[0-9]{1,2}(\.[0-9]{1,2}){0,3}(-[0-9A-Za-z]{1,4}(\.[0-9A-Za-z]{1,4}){0,2})?"
        r"(\+[A-Za-z0-9]{1,3})?"
    ),
    "packagist": (
        r"v?[0-9]{1,2}(\.[0-9]{1,2}){0,3}([-.]?(dev|alpha|a|beta|b|RC|rc|pl|p|patch)[0-9]{0,2})?"
    ),
    "pub": (
        r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}(-[0-9a-z]{1,4}(\.[0-9a-z]{1,4})?)?"
        r"(\+[0-9a-z]{1,3})?"
    ),
    "cran": r"[0-9]{1,2}([.-][0-9]{1,3}){1,3}",
    "hackage": r"[0-9]{1,2}(\.[0-9]{1,2}){0,4}",
}

_FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _by_name(name: str) -> VersionComparator:
    return next(comparator for comparator in COMPARATORS if comparator.name == name)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _versions(scheme: str) -> st.SearchStrategy[str]:
    return st.from_regex(_PATTERNS[scheme], fullmatch=True)


def test_every_comparator_has_a_strategy() -> None:
    assert {comparator.name for comparator in COMPARATORS} == set(_PATTERNS)


@pytest.mark.parametrize("scheme", sorted(_PATTERNS))
def test_total_order(scheme: str) -> None:
    comparator = _by_name(scheme)

    @_FAST
    @given(st.lists(_versions(scheme), min_size=2, max_size=7), st.randoms())
    def check(versions: list[str], rng: object) -> None:
        compare = comparator.compare
        for version in versions:
            assert compare(version, version) == 0, f"{version} != itself"
        for a, b in itertools.product(versions, repeat=2):
            assert _sign(compare(a, b)) == -_sign(compare(b, a)), f"{a} vs {b} not antisymmetric"
        for a, b, c in itertools.permutations(versions, 3):
            if compare(a, b) <= 0 and compare(b, c) <= 0:
                assert compare(a, c) <= 0, f"{a} <= {b} <= {c} but {a} > {c}"
            if compare(a, b) == 0 and compare(b, c) == 0:
                assert compare(a, c) == 0, f"{a} = {b} = {c} but {a} != {c}"
        key = functools.cmp_to_key(compare)
        ordered = sorted(versions, key=key)
        for earlier, later in itertools.combinations(ordered, 2):
            assert compare(earlier, later) <= 0
        shuffled = list(versions)
        rng.shuffle(shuffled)  # type: ignore[attr-defined]
        for x, y in zip(ordered, sorted(shuffled, key=key), strict=True):
            assert compare(x, y) == 0, "sort result depends on the input order"
        sort_key = getattr(comparator, "sort_key", None)
        if sort_key is not None:
            for a, b in itertools.product(versions, repeat=2):
                key_a, key_b = sort_key(a), sort_key(b)
                assert _sign(compare(a, b)) == (key_a > key_b) - (key_a < key_b)

    check()


@pytest.mark.parametrize("scheme", sorted(_PATTERNS))
def test_arbitrary_text_never_raises(scheme: str) -> None:
    comparator = _by_name(scheme)

    @_FAST
    @given(st.text(max_size=20), st.text(max_size=20))
    def check(a: str, b: str) -> None:
        result = comparator.compare(a, b)
        assert isinstance(result, int)
        assert _sign(result) == -_sign(comparator.compare(b, a))
        assert comparator.compare(a, a) == 0

    check()


@_FAST
@given(_versions("dpkg"), _versions("dpkg"))
def test_dpkg_agrees_with_python_debian(a: str, b: str) -> None:
    comparator = comparator_for("Debian:12")
    assert comparator is not None
    assert _sign(comparator.compare(a, b)) == _sign(version_compare(a, b))


@_FAST
@given(_versions("pep440"), _versions("pep440"))
def test_pep440_agrees_with_packaging_on_valid_versions(a: str, b: str) -> None:
    comparator = comparator_for("PyPI")
    assert comparator is not None
    result = _sign(comparator.compare(a, b))
    try:
        version_a, version_b = Version(a), Version(b)
    except ValueError:
        # A legacy version sorts before every valid one.
        valid = [_is_valid(a), _is_valid(b)]
        if valid == [False, True]:
            assert result == -1
        elif valid == [True, False]:
            assert result == 1
        return
    assert result == (version_a > version_b) - (version_a < version_b)


def _is_valid(version: str) -> bool:
    try:
        Version(version)
    except ValueError:
        return False
    return True
