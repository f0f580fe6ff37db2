"""The Python extractor: installed distributions' core metadata, wherever they are installed.

Listed in :mod:`kubegate.inventory.extractors`. Reads ``*.dist-info/METADATA`` (wheels, pip),
``*.egg-info/PKG-INFO`` and ``*.egg-info`` files (setuptools, Debian's python3-* packages) and
bare ``PKG-INFO`` files (unpacked sdists). Core metadata is an RFC 822 header block (PyPA "Core
metadata specifications"); only ``Name`` and ``Version`` matter here. Names are normalised as
PEP 503 says, which is also how OSV's PyPI ecosystem and purl-spec write them.
"""

from __future__ import annotations

import re
from typing import Final

from kubegate.inventory.extractor import Extracted, metadata_packages
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import language_purl
from kubegate.models import OSInfo

_NORMALIZE: Final = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``, lower case."""
    return _NORMALIZE.sub("-", name).lower()


def core_metadata(data: bytes) -> tuple[str, str] | None:
    """``(Name, Version)`` from the header block of a METADATA/PKG-INFO file."""
    name = version = None
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # the header block ends at the first empty line; the body is the description
        key, sep, value = line.partition(":")
        if not sep or line[0] in " \t":
            continue
        key = key.strip().lower()
        if key == "name" and name is None:
            name = value.strip()
        elif key == "version" and version is None:
            version = value.strip()
    if not name or not version:
        return None
    return name, version


class PythonExtractor:
    """Python distributions (pip, setuptools, distro-packaged)."""

    name: Final = "python"
    version: Final = 1

    def required(self, path: str) -> bool:
        """Metadata files of installed distributions."""
        parent, _, base = path.rpartition("/")
        if base == "METADATA":
            return parent.endswith(".dist-info")
        if base == "PKG-INFO":
            return True
        return base.endswith(".egg-info")

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Every distribution whose metadata names both a name and a version."""
        return metadata_packages(
            view,
            self.name,
            self.required,
            lambda _path, data: _identity(data),
            lambda name, version: ("pypi", language_purl("pypi", None, name, version)),
        )


__all__ = ["PythonExtractor", "core_metadata", "normalize_name"]


def _identity(data: bytes) -> tuple[str, str] | None:
    found = core_metadata(data)
    return None if found is None else (normalize_name(found[0]), found[1])
