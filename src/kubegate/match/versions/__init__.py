"""Version comparators, one per versioning scheme, behind one interface.

``comparator_for(ecosystem)`` maps an OSV ecosystem string (``Debian:12``, ``PyPI``, ...) to the
comparator of its scheme; ``comparator_for_range(range_type, ecosystem)`` also honours OSV's
``SEMVER`` range type, which is semver whatever the ecosystem. :data:`COMPARATORS` is the explicit
list of implementations; a test checks every implementation is listed once. Called by the OSV
event evaluator. Every ``compare`` is total and never raises on odd input.
"""

from __future__ import annotations

from typing import Protocol

from kubegate.match.versions.apk import ApkComparator
from kubegate.match.versions.cran import CranComparator
from kubegate.match.versions.dpkg import DpkgComparator
from kubegate.match.versions.golang import GoComparator
from kubegate.match.versions.hackage import HackageComparator
from kubegate.match.versions.maven import MavenComparator
from kubegate.match.versions.nuget import NugetComparator
from kubegate.match.versions.packagist import PackagistComparator
from kubegate.match.versions.pep440 import Pep440Comparator
from kubegate.match.versions.pub import PubComparator
from kubegate.match.versions.rpm import RpmComparator
from kubegate.match.versions.rubygems import RubyGemsComparator
from kubegate.match.versions.semver import SemverComparator


class VersionComparator(Protocol):
    """Total order over one ecosystem's version strings."""

    #: Scheme name used in messages and tests (``dpkg``, ``pep440``, ...).
    name: str
    #: OSV ecosystem names (before any ``:`` qualifier) that use this scheme.
    ecosystems: frozenset[str]

    def compare(self, a: str, b: str) -> int:
        """Negative, zero or positive as ``a`` sorts before, equal to or after ``b``."""
        ...


#: The comparator of OSV ``SEMVER`` ranges, whatever the package's ecosystem.
SEMVER = SemverComparator()

#: Every comparator implementation, once each.
COMPARATORS: tuple[VersionComparator, ...] = (
    DpkgComparator(),
    ApkComparator(),
    RpmComparator(),
    Pep440Comparator(),
    SEMVER,
    GoComparator(),
    MavenComparator(),
    RubyGemsComparator(),
    NugetComparator(),
    PackagistComparator(),
    PubComparator(),
    CranComparator(),
    HackageComparator(),
)

_BY_ECOSYSTEM: dict[str, VersionComparator] = {
    ecosystem: comparator for comparator in COMPARATORS for ecosystem in comparator.ecosystems
}


def comparator_for(ecosystem: str) -> VersionComparator | None:
    """The comparator for an OSV ecosystem (qualifiers after ``:`` ignored), or None."""
    return _BY_ECOSYSTEM.get(ecosystem.split(":", 1)[0])


def comparator_for_range(range_type: str, ecosystem: str) -> VersionComparator | None:
    """The comparator for one OSV range: semver for ``SEMVER``, else the ecosystem's (or None)."""
    if range_type == "SEMVER":
        return SEMVER
    return comparator_for(ecosystem)
