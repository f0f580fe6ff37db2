"""OS ownership of language packages: files a distro package installed are the distro's.

Called by :mod:`kubegate.inventory.image` once every extractor has run. A language package
(PyPI, npm, Go, Maven, RubyGems) whose metadata file belongs to an OS package (dpkg ``.list``
files, rpm file lists, apk ``F``/``R`` lines: ``Package.files``) is marked ``os_owned``: it stays
in the SBOM but is not matched against language advisories, because distros backport fixes
without changing the upstream version (OSV.md, "Known ways scanners get it wrong" 5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from kubegate.models import Package

LANGUAGE_TYPES: Final = frozenset({"pypi", "npm", "golang", "maven", "gem"})
_OS_TYPES: Final = frozenset({"deb", "rpm", "apk"})
#: Merged-/usr: a distro package may list /lib/x while the image stores /usr/lib/x and the
#: other way round; both spellings name the same file.
_MERGED: Final = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")


def _spellings(path: str) -> Iterable[str]:
    yield path
    if path.startswith(_MERGED):
        yield "/usr" + path
    elif path.startswith("/usr/") and path[4:].startswith(_MERGED):
        yield path[4:]


def mark_os_owned(packages: list[Package]) -> list[Package]:
    """``packages`` with ``os_owned`` set on language packages an OS package owns."""
    owned: set[str] = set()
    for package in packages:
        if package.type in _OS_TYPES:
            for path in package.files:
                owned.update(_spellings(path.rstrip("/")))
    if not owned:
        return packages
    result: list[Package] = []
    for package in packages:
        if package.type in LANGUAGE_TYPES and package.location and not package.os_owned:
            # A nested jar is owned when the archive that holds it is.
            location = package.location.split("!", 1)[0]
            parent = location.rpartition("/")[0]
            if location in owned or (
                parent.endswith((".dist-info", ".egg-info")) and parent in owned
            ):
                package = dataclasses.replace(package, os_owned=True)
        result.append(package)
    return result


__all__ = ["LANGUAGE_TYPES", "mark_os_owned"]
