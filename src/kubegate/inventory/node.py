"""The Node.js extractor: ``package.json`` of every package under a ``node_modules`` directory.

Listed in :mod:`kubegate.inventory.extractors`. Installed packages live at
``.../node_modules/NAME/package.json`` or ``.../node_modules/@SCOPE/NAME/package.json``, nested
``node_modules`` included (npm's layout when versions conflict); other ``package.json`` files
(the application's own, sub-path exports inside a package) are not dependencies.
"""

from __future__ import annotations

import json
from typing import Final

from kubegate.inventory.extractor import Extracted, metadata_packages
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import language_purl
from kubegate.models import OSInfo

_MANIFEST: Final = "package.json"


def _installed_manifest(path: str) -> bool:
    parts = path.split("/")
    if len(parts) < 3 or parts[-1] != _MANIFEST:
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith("@")
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def manifest_identity(data: bytes) -> tuple[str, str] | None:
    """``(name, version)`` of a package.json, ``None`` if malformed or incomplete."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    name, version = document.get("name"), document.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return name, version


class NodeExtractor:
    """npm packages installed in ``node_modules``."""

    name: Final = "node"
    version: Final = 1

    def required(self, path: str) -> bool:
        """``node_modules/[@scope/]name/package.json`` at any depth."""
        return path.endswith(_MANIFEST) and _installed_manifest(path)

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Every installed package with a name and a version."""
        return metadata_packages(
            view,
            self.name,
            self.required,
            lambda _path, data: manifest_identity(data),
            _npm_purl,
        )


def _npm_purl(name: str, version: str) -> tuple[str, str]:
    scope, _, bare = name.rpartition("/")
    return "npm", language_purl("npm", scope or None, bare, version)


__all__ = ["NodeExtractor", "manifest_identity"]
