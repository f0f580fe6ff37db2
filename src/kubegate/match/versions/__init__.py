"""Version comparators, one per versioning scheme, behind one interface.

``comparator_for(ecosystem)`` maps an OSV ecosystem string (``Debian:12``, ``PyPI``, ...) to the
comparator of its scheme. :data:`COMPARATORS` is the explicit list of implementations; a test
checks every implementation is listed once. Called by the OSV event evaluator.
"""

from __future__ import annotations

from typing import Protocol

from kubegate.match.versions.dpkg import DpkgComparator


class VersionComparator(Protocol):
    """Total order over one ecosystem's version strings."""

    #: Scheme name used in messages and tests (``dpkg``, ``pep440``, ...).
    name: str
    #: OSV ecosystem names (before any ``:`` qualifier) that use this scheme.
    ecosystems: frozenset[str]

    def compare(self, a: str, b: str) -> int:
        """Negative, zero or positive as ``a`` sorts before, equal to or after ``b``."""
        ...


#: Every comparator implementation, once each.
COMPARATORS: tuple[VersionComparator, ...] = (DpkgComparator(),)


def comparator_for(ecosystem: str) -> VersionComparator | None:
    """The comparator for an OSV ecosystem (qualifiers after ``:`` ignored), or None."""
    base = ecosystem.split(":", 1)[0]
    for comparator in COMPARATORS:
        if base in comparator.ecosystems:
            return comparator
    return None
