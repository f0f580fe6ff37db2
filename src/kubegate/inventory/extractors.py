"""The explicit list of extractors, in the order they run (no registration by import side effect).

Read by :mod:`kubegate.inventory.image` (which runs them and builds the walker's ``wanted``
predicate) and :mod:`kubegate.inventory.cache` (their names and versions key every cached layer).
The OS extractor comes first: package extractors need its release for purls.
"""

from __future__ import annotations

from typing import Final

from kubegate.inventory.apk import ApkExtractor
from kubegate.inventory.dpkg import DpkgExtractor
from kubegate.inventory.extractor import Extractor
from kubegate.inventory.osrelease import OSReleaseExtractor

EXTRACTORS: Final[tuple[Extractor, ...]] = (
    OSReleaseExtractor(),
    DpkgExtractor(),
    ApkExtractor(),
)


def fingerprint(extractors: tuple[Extractor, ...] = EXTRACTORS) -> str:
    """``name:version`` of every extractor, the part of cache keys that tracks extractor code."""
    return ",".join(f"{extractor.name}:{extractor.version}" for extractor in extractors)
