"""CRAN (R ``package_version``) order: integers separated by ``.`` or ``-``.

``0.01`` equals ``0.1`` (parts are integers), and a longer version with equal leading parts is
later (``0.1.0 < 0.1.0.0``), as R's ``compareVersion``. Parts that are not integers are skipped so
the order stays total. Listed in :data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from kubegate.match.versions.semverlike import is_number, number_value, strip_zeros

CranKey = tuple[tuple[int, ...], int]

_SEPARATORS = re.compile(r"[.-]")


@lru_cache(maxsize=65536)
def cran_key(version: str) -> CranKey:
    """Total-order sort key of a CRAN version string."""
    pieces = _SEPARATORS.split(version.strip())
    parts = tuple(number_value(piece) for piece in pieces if is_number(piece))
    return strip_zeros(parts), len(parts)


class CranComparator:
    """``A.B-C...`` compared as integer lists."""

    name = "cran"
    ecosystems = frozenset({"CRAN", "Bioconductor"})

    def sort_key(self, version: str) -> CranKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return cran_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two CRAN versions."""
        key_a, key_b = cran_key(a), cran_key(b)
        return (key_a > key_b) - (key_a < key_b)
