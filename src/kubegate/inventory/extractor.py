"""The extractor interface (osv-scalibr/Trivy style) shared by every package and OS extractor.

An extractor declares its ``name`` and ``version`` (both part of the per-layer cache key), which
files it needs (``required(path)``, asked by :mod:`kubegate.inventory.walker` for every tar
entry) and ``extract(view, os_info)``, run by :mod:`kubegate.inventory.image` on the merged
filesystem. Implementations are listed in :mod:`kubegate.inventory.extractors`.

Some files are too big or too many to keep whole (Go executables anywhere, jars, the rpm
database): an extractor that is also a :class:`Sniffer` is handed their content as a stream
during the walk and keeps only a small *reduced record* of it (its own format, which the
walker stores, and the cache keeps, in place of the file's content).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.walker import Reducer
from kubegate.models import Digest, OSInfo, Package

_logger = logging.getLogger(__name__)

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Extracted:
    """What one extractor found: the OS (only the OS extractor sets it) and packages."""

    os: OSInfo | None = None
    packages: tuple[Package, ...] = ()


class Extractor(Protocol):
    """One kind of inventory: ``os-release``, ``dpkg``, ``apk``, ..."""

    @property
    def name(self) -> str:
        """Stable identifier, recorded on every package it finds (``Package.extractor``)."""
        ...

    @property
    def version(self) -> int:
        """Bumped whenever what it reads or returns changes (invalidates cached layers)."""
        ...

    def required(self, path: str) -> bool:
        """Whether the walker must keep the content of ``path`` (relative, normalised)."""
        ...

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Read the merged filesystem; ``os_info`` is what the OS extractor found, if anything."""
        ...


class Sniffer(Protocol):
    """An extractor that reduces files while the walker streams them."""

    def sniff(self, path: str, mode: int, size: int) -> Reducer | None:
        """A reducer for this regular file (``mode``: permission bits), or ``None``.

        Asked only for files no extractor ``required``; must be cheap (called for every file).
        """
        ...


def introducing_layers(
    versions: list[tuple[Digest, dict[K, str]]],
) -> dict[K, Digest]:
    """For each package of the newest database version, the layer its current version came from.

    ``versions`` are a database's successive contents (bottom layer first), each parsed to
    ``key -> version``. A package's layer is the lowest one from which it has had its current
    version without interruption: an upgrade or a reinstall after removal moves it up.
    """
    if not versions:
        return {}
    top_digest, top = versions[-1]
    result: dict[K, Digest] = dict.fromkeys(top, top_digest)
    alive = set(top)
    for digest, packages in reversed(versions[:-1]):
        alive = {key for key in alive if packages.get(key) == top[key]}
        if not alive:
            break
        for key in alive:
            result[key] = digest
    return result


def metadata_packages(
    view: ImageView,
    extractor: str,
    wanted: Callable[[str], bool],
    identity: Callable[[str, bytes], tuple[str, str] | None],
    package: Callable[[str, str], tuple[str, str]],
) -> Extracted:
    """Packages of language ecosystems that keep one metadata file per installed package.

    For every captured file ``wanted`` accepts, ``identity(path, data)`` gives its name and
    version (None: skipped with a debug note) and ``package(name, version)`` its purl type and
    purl. Used by the Python, Node and Ruby extractors.
    """
    packages: list[Package] = []
    for path in view.captured():
        if not wanted(path):
            continue
        data = view.read(path)
        found = identity(path, data) if data is not None else None
        if found is None:
            _logger.debug("%s: no name/version in /%s", extractor, path)
            continue
        name, version = found
        purl_type, purl = package(name, version)
        packages.append(
            Package(
                name=name,
                version=version,
                type=purl_type,
                purl=purl,
                extractor=extractor,
                layer=view.layer_of(path),
                location=f"/{path}",
            )
        )
    return Extracted(packages=tuple(packages))


def reduced_records(view: ImageView, marker: bytes, extractor: str) -> Iterator[tuple[str, Any]]:
    """``(path, decoded JSON)`` of every captured file a :class:`Sniffer` reduced to
    ``marker`` + JSON; an unreadable record is skipped with a warning (its file stays unknown).
    """
    for path in view.captured():
        data = view.read(path)
        if data is None or not data.startswith(marker):
            continue
        try:
            yield path, json.loads(data[len(marker) :])
        except ValueError:
            _logger.warning("%s: unreadable record for /%s", extractor, path)
