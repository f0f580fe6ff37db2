"""Match inventoried packages against OSV advisories (DESIGN.md "Matching rules").

``kubegate.match.versions`` holds one version comparator per ecosystem scheme; ``ecosystems``
maps a package to the ecosystem/name/version advisories use, ``evaluate`` applies OSV
``affected[]`` entries and ``matcher`` groups matched records into findings with severities.
Callers use :func:`match_packages` or a long-lived :class:`Matcher`.
"""

from kubegate.match.ecosystems import MatchTarget, Skip, target_for
from kubegate.match.matcher import Matcher, MatchResult, flaw_ids, match_packages

__all__ = [
    "MatchResult",
    "MatchTarget",
    "Matcher",
    "Skip",
    "flaw_ids",
    "match_packages",
    "target_for",
]
