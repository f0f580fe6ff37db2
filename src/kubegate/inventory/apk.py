"""The apk extractor: Alpine's (and Wolfi's) ``lib/apk/db/installed``.

Listed in :mod:`kubegate.inventory.extractors`. The database format is apk's "installed" file
(apk-tools ``database.c``): one stanza per package, ``X:value`` lines; ``P`` name, ``V``
version, ``A`` arch, ``o`` origin (the source package Alpine advisories name), ``F`` a
directory and ``R`` a file in the last ``F``.
"""

from __future__ import annotations

import logging
from typing import Final

from kubegate.inventory.extractor import Extracted, introducing_layers
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import os_purl
from kubegate.models import OSInfo, Package

_logger = logging.getLogger(__name__)

_INSTALLED: Final = "lib/apk/db/installed"


def _stanzas(data: bytes) -> list[tuple[dict[str, str], tuple[str, ...]]]:
    """``(fields, files)`` per package; repeated keys other than F/R keep the first value."""
    stanzas: list[tuple[dict[str, str], tuple[str, ...]]] = []
    fields: dict[str, str] = {}
    files: list[str] = []
    directory = ""

    def flush() -> None:
        if fields.get("P") and fields.get("V"):
            stanzas.append((dict(fields), tuple(files)))

    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            flush()
            fields, files, directory = {}, [], ""
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key == "F":
            directory = value
            files.append(f"/{value}")
        elif key == "R":
            files.append(f"/{directory}/{value}" if directory else f"/{value}")
        else:
            fields.setdefault(key, value)
    flush()
    return stanzas


class ApkExtractor:
    """Alpine packages."""

    name: Final = "apk"
    version: Final = 1

    def required(self, path: str) -> bool:
        """Only the installed database."""
        return path == _INSTALLED

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Every package in the final installed database."""
        history = view.history(_INSTALLED)
        if not history:
            return Extracted()
        parsed = [(digest, _stanzas(data)) for digest, data in history]
        layers = introducing_layers(
            [(digest, {s[0]["P"]: s[0]["V"] for s in stanzas}) for digest, stanzas in parsed]
        )
        namespace = os_info.id if os_info is not None else "alpine"
        packages: list[Package] = []
        for fields, files in parsed[-1][1]:
            name, version = fields["P"], fields["V"]
            arch = fields.get("A") or None
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="apk",
                    purl=os_purl("apk", namespace, name, version, arch, os_info),
                    extractor=self.name,
                    source_name=fields.get("o") or name,
                    source_version=version,
                    arch=arch,
                    layer=layers.get(name),
                    location=f"/{_INSTALLED}",
                    files=files,
                )
            )
        _logger.debug("apk: %s installed packages", len(packages))
        return Extracted(packages=tuple(packages))
