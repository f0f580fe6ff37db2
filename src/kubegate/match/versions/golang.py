"""Go module version order (``golang.org/x/mod/semver``) for the OSV ``Go`` ecosystem.

OSV writes Go versions without the ``v`` (``1.20.5``); module queries carry it (``v1.20.5``):
both are accepted. Pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``,
``v1.2.4-0.20191109021931-daa7c04131f5``) are ordinary pre-releases and sort before their base
version; ``+incompatible`` and other build metadata are ignored. As in x/mod, versions that are
not semver sort before all valid ones (among themselves by text, so the order stays total).
Listed in :data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from kubegate.match.versions.semverlike import Identifier, number_value, prerelease_key

_GO_SEMVER = re.compile(
    r"v?(?P<major>0|[1-9][0-9]*)(?:\.(?P<minor>0|[1-9][0-9]*))?(?:\.(?P<patch>0|[1-9][0-9]*))?"
    r"(?P<pre>-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)

GoKey = tuple[int, tuple[int, ...], tuple[int, tuple[Identifier, ...]], str]


@lru_cache(maxsize=65536)
def go_key(version: str) -> GoKey:
    """Total-order sort key: valid versions ``(1, numbers, pre-release, "")``, others first."""
    match = _GO_SEMVER.fullmatch(version.strip())
    if match is None:
        return (0, (), (0, ()), version)
    numbers = (
        number_value(match["major"]),
        number_value(match["minor"] or ""),
        number_value(match["patch"] or ""),
    )
    return (1, numbers, prerelease_key(match["pre"] or ""), "")


class GoComparator:
    """Go module semver with pseudo-versions and ``+incompatible``."""

    name = "go"
    ecosystems = frozenset({"Go"})

    def sort_key(self, version: str) -> GoKey:
        """Key such that ``sort_key(a) < sort_key(b)`` iff ``compare(a, b) < 0``."""
        return go_key(version)

    def compare(self, a: str, b: str) -> int:
        """Compare two Go module versions."""
        key_a, key_b = go_key(a), go_key(b)
        return (key_a > key_b) - (key_a < key_b)
