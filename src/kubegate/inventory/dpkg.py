"""The dpkg extractor: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``.

Listed in :mod:`kubegate.inventory.extractors`. Only installed packages are reported (``Status:
... installed``; distroless ``status.d`` files carry no ``Status:`` and are all installed). The
``Source:`` field is kept because Debian and Ubuntu advisories name source packages (DESIGN.md
"Matching rules"); the files each package owns come from ``var/lib/dpkg/info/*.list``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Final

from kubegate.inventory.extractor import Extracted, introducing_layers
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import os_purl
from kubegate.models import OSInfo, Package

_logger = logging.getLogger(__name__)

_STATUS: Final = "var/lib/dpkg/status"
_STATUS_D: Final = "var/lib/dpkg/status.d"
_INFO: Final = "var/lib/dpkg/info"
#: Distros whose dpkg packages are published under their own purl namespace.
_NAMESPACES: Final = frozenset({"debian", "ubuntu"})

_Key = tuple[str, str]  # (package name, architecture)


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    """RFC822-style stanzas (deb822(5)); continuation lines are joined with newlines."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


def _installed(fields: dict[str, str], *, distroless: bool) -> bool:
    status = fields.get("Status")
    if status is None:
        return distroless
    words = status.split()
    # "want ok status": hold is as installed as install; "deinstall ok config-files" is not.
    return len(words) == 3 and words[0] in ("install", "hold") and words[2] == "installed"


def _source(fields: dict[str, str], name: str, version: str) -> tuple[str, str]:
    """``Source: name (version)``; a bare ``Source: name`` means the binary's version."""
    source = fields.get("Source", "").strip()
    if not source:
        return name, version
    source_name, _, rest = source.partition(" ")
    rest = rest.strip()
    if rest.startswith("(") and rest.endswith(")"):
        return source_name, rest[1:-1].strip() or version
    return source_name, version


# The images of one scan mostly share their base layer's status file (the same bytes object,
# from the per-process layer memory): parse it once. The result is only read, never changed.
@functools.lru_cache(maxsize=16)
def _parse(data: bytes, *, distroless: bool) -> dict[_Key, dict[str, str]]:
    found: dict[_Key, dict[str, str]] = {}
    for fields in paragraphs(data.decode("utf-8", "replace")):
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version or not _installed(fields, distroless=distroless):
            continue
        found[(name, fields.get("Architecture", ""))] = fields
    return found


class DpkgExtractor:
    """Debian and Ubuntu packages (and any other dpkg-based image)."""

    name: Final = "dpkg"
    version: Final = 1

    def required(self, path: str) -> bool:
        """The status database, distroless status.d files and the file lists."""
        if path == _STATUS:
            return True
        directory, _, base = path.rpartition("/")
        if directory == _STATUS_D:
            return not base.endswith(".md5sums")
        return directory == _INFO and base.endswith(".list")

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Every installed package of the final filesystem."""
        packages: list[Package] = []
        packages += self._database(view, _STATUS, os_info, distroless=False)
        for base in view.listdir(_STATUS_D):
            if not base.endswith(".md5sums"):
                packages += self._database(view, f"{_STATUS_D}/{base}", os_info, distroless=True)
        return Extracted(packages=tuple(packages))

    def _database(
        self, view: ImageView, path: str, os_info: OSInfo | None, *, distroless: bool
    ) -> list[Package]:
        history = view.history(path)
        if not history:
            return []
        parsed = [(digest, _parse(data, distroless=distroless)) for digest, data in history]
        layers = introducing_layers(
            [
                (digest, {key: fields["Version"] for key, fields in found.items()})
                for digest, found in parsed
            ]
        )
        namespace = os_info.id if os_info is not None and os_info.id in _NAMESPACES else "debian"
        packages: list[Package] = []
        for key, fields in parsed[-1][1].items():
            name, arch = key
            version = fields["Version"]
            source_name, source_version = _source(fields, name, version)
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="deb",
                    purl=os_purl("deb", namespace, name, version, arch or None, os_info),
                    extractor=self.name,
                    source_name=source_name,
                    source_version=source_version,
                    arch=arch or None,
                    layer=layers.get(key),
                    location=f"/{path}",
                    files=_files(view, name, arch),
                )
            )
        _logger.debug("dpkg: %s installed packages in /%s", len(packages), path)
        return packages


def _files(view: ImageView, name: str, arch: str) -> tuple[str, ...]:
    candidates = [f"{_INFO}/{name}:{arch}.list"] if arch else []
    candidates.append(f"{_INFO}/{name}.list")
    for candidate in candidates:
        data = view.read(candidate)
        if data is not None:
            lines = data.decode("utf-8", "replace").splitlines()
            return tuple(line for line in lines if line and line != "/.")
    return ()


__all__ = ["DpkgExtractor", "paragraphs"]
