"""The OS extractor: ``/etc/os-release``, ``/usr/lib/os-release``, then distro marker files.

Listed in :mod:`kubegate.inventory.extractors`; its :class:`~kubegate.models.OSInfo` names the
release that package purls (``distro=debian-12``) and advisory ecosystems (``Debian:12``) need.
"""

from __future__ import annotations

import shlex
from typing import Final

from kubegate.errors import InventoryError
from kubegate.inventory.extractor import Extracted
from kubegate.inventory.filesystem import ImageView
from kubegate.models import OSInfo

_OS_RELEASE: Final = ("etc/os-release", "usr/lib/os-release")
_DEBIAN_VERSION: Final = "etc/debian_version"
_ALPINE_RELEASE: Final = "etc/alpine-release"
_PATHS: Final = frozenset((*_OS_RELEASE, _DEBIAN_VERSION, _ALPINE_RELEASE))


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines with shell quoting (os-release(5)); malformed lines are skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        fields[key.strip()] = words[0] if words else ""
    return fields


class OSReleaseExtractor:
    """Finds the image's operating system."""

    name: Final = "os-release"
    version: Final = 1

    def required(self, path: str) -> bool:
        """The os-release files and the Debian/Alpine version markers."""
        return path in _PATHS

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """os-release first (as systemd reads it), then the marker files."""
        for path in _OS_RELEASE:
            data = view.read(path)
            if data is None:
                continue
            fields = parse_os_release(data.decode("utf-8", "replace"))
            os_id = fields.get("ID", "").lower()
            if not os_id:
                continue
            version_id = fields.get("VERSION_ID") or None
            if version_id is None and os_id == "debian":
                version_id = _debian_version(view)
            return Extracted(
                os=OSInfo(
                    id=os_id,
                    version_id=version_id,
                    pretty_name=fields.get("PRETTY_NAME") or None,
                    id_like=tuple(fields.get("ID_LIKE", "").split()),
                )
            )
        if (version := _debian_version(view)) is not None:
            return Extracted(os=OSInfo(id="debian", version_id=version))
        alpine = view.read(_ALPINE_RELEASE)
        if alpine is not None:
            return Extracted(os=OSInfo(id="alpine", version_id=_alpine_version(alpine)))
        return Extracted()


def _alpine_version(data: bytes) -> str | None:
    """``3.19.1``; bytes that are not text say nothing about the release: not proven (exit 2)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"/{_ALPINE_RELEASE} is not UTF-8 text") from exc
    return text.strip() or None


def _debian_version(view: ImageView) -> str | None:
    """The major release in ``etc/debian_version`` (``12.5`` -> ``12``, ``trixie/sid`` -> None)."""
    data = view.read(_DEBIAN_VERSION)
    if data is None:
        return None
    text = data.decode("utf-8", "replace").strip()
    major = text.split(".", 1)[0]
    return major if major.isdigit() else None
