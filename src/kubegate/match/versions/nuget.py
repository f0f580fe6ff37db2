"""NuGet version order: SemVer 2.0 with up to four numeric parts and case-blind labels.

``1.0`` equals ``1.0.0.0``, pre-release labels compare case-insensitively (``1.0.0-BETA`` equals
``1.0.0-beta``) and ``+metadata`` is ignored, as NuGet's ``VersionComparer.Default``. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
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

NugetKey = tuple[tuple[int, ...], tuple[int, tuple[Identifier, ...]]]


@lru_cache(maxsize=65536)
def nuget_key(version: str) -> NugetKey:
    """Total-order sort key of a NuGet version string."""
    parsed = limit_components(parse_semver_like(version.strip()), 4)
    return pad(parsed.components, 4), prerelease_key(parsed.rest.lower())


class NugetComparator:
    """``A.B.C[.D][-label][+metadata]``, labels case-insensitive."""

    name = "nuget"
    ecosystems = frozenset({"NuGet"})

    def sort_key(self, version: str) -> NugetKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return nuget_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two NuGet versions."""
        key_a, key_b = nuget_key(a), nuget_key(b)
        return (key_a > key_b) - (key_a < key_b)
