"""The Ruby extractor: installed gems' ``specifications/*.gemspec`` files.

Listed in :mod:`kubegate.inventory.extractors`. RubyGems writes one Ruby file per installed gem
(``Gem::Specification#to_ruby``); it is never evaluated, only searched for the name and version
assignments (``s.name = "rake".freeze``, ``s.version = "13.0.6"``, or the
``Gem::Specification.new "name", "version"`` form). The file name (``NAME-VERSION.gemspec``,
possibly with a platform suffix) is the fallback.
"""

from __future__ import annotations

import re
from typing import Final

from kubegate.inventory.extractor import Extracted, metadata_packages
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import language_purl
from kubegate.models import OSInfo

_QUOTED: Final = r"""["']([^"'\n]+)["']"""
_NAME: Final = re.compile(r"^\s*\w+\.name\s*=\s*" + _QUOTED, re.MULTILINE)
_VERSION: Final = re.compile(
    r"^\s*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?" + _QUOTED, re.MULTILINE
)
_NEW: Final = re.compile(r"Gem::Specification\.new\s*\(?\s*" + _QUOTED + r"\s*,\s*" + _QUOTED)
_FILENAME: Final = re.compile(r"^(.+?)-(\d[^-]*)(?:-[^-]+)*\.gemspec$")


def gemspec_identity(text: str, filename: str) -> tuple[str, str] | None:
    """``(name, version)`` from a gemspec's assignments, else from its file name."""
    name_match, version_match = _NAME.search(text), _VERSION.search(text)
    if name_match and version_match:
        return name_match.group(1), version_match.group(1)
    new = _NEW.search(text)
    if new:
        return new.group(1), new.group(2)
    by_name = _FILENAME.match(filename)
    if by_name:
        return by_name.group(1), by_name.group(2)
    return None


class RubyExtractor:
    """Installed Ruby gems."""

    name: Final = "ruby"
    version: Final = 1

    def required(self, path: str) -> bool:
        """``.../specifications/*.gemspec``."""
        parent, _, base = path.rpartition("/")
        return base.endswith(".gemspec") and parent.rpartition("/")[2] == "specifications"

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Every gem whose specification names a name and a version."""
        return metadata_packages(
            view,
            self.name,
            self.required,
            lambda path, data: gemspec_identity(
                data.decode("utf-8", "replace"), path.rpartition("/")[2]
            ),
            lambda name, version: ("gem", language_purl("gem", None, name, version)),
        )


__all__ = ["RubyExtractor", "gemspec_identity"]
