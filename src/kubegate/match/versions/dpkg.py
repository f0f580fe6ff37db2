"""Debian package version order (Debian Policy 5.6.12, dpkg's ``verrevcmp``).

``[epoch:]upstream[-revision]``: the epoch compares as a number; upstream and revision are
compared as alternating non-digit and digit runs, where ``~`` sorts before everything (even the
end: ``1.0~rc1 < 1.0``), letters before other characters, and digit runs numerically. Each
version is turned once into a sort key (cached) so the matcher's many comparisons are tuple
comparisons; python-debian's ``version_compare`` re-parses on every call and raises on invalid
versions, so it serves as the oracle in the property tests instead. Malformed input (a non-
numeric epoch) never raises: it is read as part of the upstream version. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from kubegate.match.versions.semverlike import number_value

_RUNS = re.compile(r"[^0-9]+|[0-9]+")

#: One run pair: the non-digit run as character weights (ending in 0), then the digit run.
Pair = tuple[tuple[int, ...], int]
DpkgKey = tuple[int, tuple[Pair, ...], tuple[Pair, ...]]

_END: Pair = ((0,), 0)


def _weight(char: str) -> int:
    # dpkg's order(): "~" < end of run < letters < everything else.
    if char == "~":
        return -1
    if ("a" <= char <= "z") or ("A" <= char <= "Z"):
        return ord(char)
    return ord(char) + 256


def _part_key(text: str) -> tuple[Pair, ...]:
    """Key of an upstream version or revision.

    Every pair after the first starts with a non-empty non-digit run, so it never equals the
    end marker appended here; comparing keys therefore equals dpkg's comparison of the shorter
    string padded with empty runs.
    """
    pairs: list[Pair] = []
    letters = ""
    for run in _RUNS.findall(text):
        if "0" <= run[0] <= "9":
            pairs.append(((*(_weight(char) for char in letters), 0), number_value(run)))
            letters = ""
        else:
            letters = run
    if letters or not pairs:
        pairs.append(((*(_weight(char) for char in letters), 0), 0))
    pairs.append(_END)
    return tuple(pairs)


@lru_cache(maxsize=65536)
def dpkg_key(version: str) -> DpkgKey:
    """Total-order sort key of a dpkg version string."""
    text = version.strip()
    epoch = 0
    head, colon, tail = text.partition(":")
    if colon and head.isascii() and head.isdigit():
        epoch, text = number_value(head), tail
    upstream, dash, revision = text.rpartition("-")
    if not dash or not revision:
        # No revision; a trailing "-" stays in upstream, as python-debian reads it.
        upstream, revision = text, ""
    return epoch, _part_key(upstream), _part_key(revision)


_VALID = re.compile(r"^(?:\d+:)?[A-Za-z0-9.+:~-]+?(?:-[A-Za-z0-9+.~]+)?$")


class DpkgComparator:
    """``[epoch:]upstream[-revision]`` with ``~`` sorting before everything."""

    name = "dpkg"
    ecosystems = frozenset({"Debian", "Ubuntu"})

    def valid(self, version: str) -> bool:
        """Well-formed per Debian Policy 5.6.12 (python-debian's grammar).

        ``compare`` orders anything deterministically; the matcher asks this first so that a
        malformed version in an advisory makes the package undecided rather than guessed.
        """
        return _VALID.match(version) is not None

    def sort_key(self, version: str) -> DpkgKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return dpkg_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two dpkg versions."""
        key_a, key_b = dpkg_key(a), dpkg_key(b)
        return (key_a > key_b) - (key_a < key_b)
