"""The explicit list of extractors, in the order they run (no registration by import side effect).

Read by :mod:`kubegate.inventory.image` (which runs them and builds the walker's ``wanted``
predicate) and :mod:`kubegate.inventory.cache` (their names and versions key every cached layer).
The OS extractor comes first: package extractors need its release for purls.
"""

from __future__ import annotations

from typing import Final

from kubegate.inventory.apk import ApkExtractor
from kubegate.inventory.dpkg import DpkgExtractor
from kubegate.inventory.extractor import Extractor, Sniffer
from kubegate.inventory.gobinary import GoBinaryExtractor
from kubegate.inventory.java import JavaExtractor
from kubegate.inventory.node import NodeExtractor
from kubegate.inventory.osrelease import OSReleaseExtractor
from kubegate.inventory.python import PythonExtractor
from kubegate.inventory.rpm import RpmExtractor
from kubegate.inventory.ruby import RubyExtractor

_RPM: Final = RpmExtractor()
_GO: Final = GoBinaryExtractor()
_JAVA: Final = JavaExtractor()

EXTRACTORS: Final[tuple[Extractor, ...]] = (
    OSReleaseExtractor(),
    DpkgExtractor(),
    ApkExtractor(),
    _RPM,
    PythonExtractor(),
    NodeExtractor(),
    RubyExtractor(),
    _GO,
    _JAVA,
)

#: The extractors above that reduce files during the walk (asked in this order, first wins).
SNIFFERS: Final[tuple[Sniffer, ...]] = (_RPM, _JAVA, _GO)


def fingerprint(extractors: tuple[Extractor, ...] = EXTRACTORS) -> str:
    """``name:version`` of every extractor, the part of cache keys that tracks extractor code."""
    return ",".join(f"{extractor.name}:{extractor.version}" for extractor in extractors)
