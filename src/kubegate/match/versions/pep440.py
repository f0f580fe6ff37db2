"""Python package version order (PEP 440) for PyPI, via ``packaging``.

Versions that are not PEP 440 (``0.9-doduo``, ``-class.-jw.util...``) still appear on PyPI and in
OSV records. They never raise: they sort before every valid version and among themselves by the
key of setuptools' historical ``LegacyVersion`` (removed from ``packaging`` 22), as pip did.
Listed in :data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from packaging.version import Version

# The split pattern and replacements of packaging 21's LegacyVersion (``_legacy_cmpkey``).
_LEGACY_PART = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_REPLACE = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}

Pep440Key = tuple[int, Version | None, tuple[str, ...]]


def _legacy_parts(version: str) -> tuple[str, ...]:
    parts: list[str] = []
    for raw in [*_LEGACY_PART.split(version.lower()), "final"]:
        part = _LEGACY_REPLACE.get(raw, raw)
        if not part or part == ".":
            continue
        part = part.zfill(8) if part[:1].isdigit() else "*" + part
        if part.startswith("*"):
            # "1.0-final" equals "1.0": a pre-release word drops the preceding "-" marker...
            if part < "*final":
                while parts and parts[-1] == "*final-":
                    parts.pop()
            # ...and trailing zero components are insignificant before a word.
            while parts and parts[-1] == "00000000":
                parts.pop()
        parts.append(part)
    return tuple(parts)


@lru_cache(maxsize=65536)
def pep440_key(version: str) -> Pep440Key:
    """Total-order sort key: ``(1, Version, ())`` if valid, else ``(0, None, legacy parts)``."""
    try:
        return (1, Version(version), ())
    # InvalidVersion, or the plain ValueError int() raises on a number of over 4300 digits.
    except ValueError:
        return (0, None, _legacy_parts(version.strip()))


class Pep440Comparator:
    """PEP 440 (epochs, pre/post/dev releases, local labels); legacy versions first."""

    name = "pep440"
    ecosystems = frozenset({"PyPI"})

    def sort_key(self, version: str) -> Pep440Key:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return pep440_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two Python package versions."""
        key_a, key_b = pep440_key(a), pep440_key(b)
        if key_a[0] != key_b[0]:
            return key_a[0] - key_b[0]
        if key_a[1] is not None and key_b[1] is not None:
            return (key_a[1] > key_b[1]) - (key_a[1] < key_b[1])
        return (key_a[2] > key_b[2]) - (key_a[2] < key_b[2])
