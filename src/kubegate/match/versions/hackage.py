"""Hackage (Haskell PVP) version order: any number of numeric components.

``1.0`` sorts after ``1`` and before ``1.0.0`` (Data.Version compares the lists, so a longer list
with an equal prefix is later). Text after the numbers is not valid PVP; it is ordered like a
semver pre-release, case-blind, so the order stays total. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

from functools import lru_cache

from kubegate.match.versions.semverlike import (
    Identifier,
    parse_semver_like,
    prerelease_key,
    strip_zeros,
)

HackageKey = tuple[tuple[int, ...], tuple[int, tuple[Identifier, ...]], int]


@lru_cache(maxsize=65536)
def hackage_key(version: str) -> HackageKey:
    """Total-order sort key of a Hackage version string."""
    parsed = parse_semver_like(version.strip())
    components = parsed.components
    return strip_zeros(components), prerelease_key(parsed.rest.lower()), len(components)


class HackageComparator:
    """``A.B.C...`` compared as integer lists."""

    name = "hackage"
    ecosystems = frozenset({"Hackage", "GHC"})

    def sort_key(self, version: str) -> HackageKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return hackage_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two Hackage versions."""
        key_a, key_b = hackage_key(a), hackage_key(b)
        return (key_a > key_b) - (key_a < key_b)
