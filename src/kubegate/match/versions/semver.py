"""Semantic Versioning 2.0.0 order, as OSV's ``SEMVER`` range type and npm, crates.io, Hex use it.

OSV data is lenient, so this is too (as OSV's own matcher is): a leading ``v`` is accepted,
missing minor/patch count as zero (``3.10`` > ``3.2``), numbers are unbounded, and anything past
the third component joins the pre-release string. ``+build`` metadata never affects the order.
The ``semver`` library was measured against the vectors: it raises on some of these forms
(unbounded numbers, four components), so the
order is implemented here. Listed in :data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

from functools import lru_cache

from kubegate.match.versions.semverlike import (
    Identifier,
    limit_components,
    pad,
    parse_semver_like,
    prerelease_key,
)

SemverKey = tuple[tuple[int, ...], tuple[int, tuple[Identifier, ...]]]


@lru_cache(maxsize=65536)
def semver_key(version: str) -> SemverKey:
    """Total-order sort key of a semver-like version string."""
    parsed = limit_components(parse_semver_like(version.strip()), 3)
    return pad(parsed.components, 3), prerelease_key(parsed.rest)


class SemverComparator:
    """``MAJOR.MINOR.PATCH[-pre][+build]``, tolerant of ``v`` and short forms."""

    name = "semver"
    ecosystems = frozenset({"npm", "crates.io", "Hex", "SwiftURL", "Bitnami"})

    def sort_key(self, version: str) -> SemverKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return semver_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two semver versions."""
        key_a, key_b = semver_key(a), semver_key(b)
        return (key_a > key_b) - (key_a < key_b)
