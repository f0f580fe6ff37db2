"""Dart Pub version order: semver, except that ``+build`` sorts after the plain release.

Pub (``pub_semver``) orders ``1.0.0-pre < 1.0.0 < 1.0.0+build`` and compares build strings, where
semver ignores them. Listed in :data:`kubegate.match.versions.COMPARATORS`.
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

PubKey = tuple[tuple[int, ...], tuple[int, tuple[Identifier, ...]], str]


@lru_cache(maxsize=65536)
def pub_key(version: str) -> PubKey:
    """Total-order sort key of a Pub version string."""
    parsed = limit_components(parse_semver_like(version.strip()), 3)
    build = parsed.rest.partition("+")[2]
    return pad(parsed.components, 3), prerelease_key(parsed.rest), build


class PubComparator:
    """``MAJOR.MINOR.PATCH[-pre][+build]`` with builds ordered after the release."""

    name = "pub"
    ecosystems = frozenset({"Pub"})

    def sort_key(self, version: str) -> PubKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return pub_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two Pub versions."""
        key_a, key_b = pub_key(a), pub_key(b)
        return (key_a > key_b) - (key_a < key_b)
