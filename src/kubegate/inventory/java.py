"""The Java extractor: Maven coordinates of ``.jar``/``.war``/``.ear`` archives, nested included.

Listed in :mod:`kubegate.inventory.extractors` and a :class:`~kubegate.inventory.extractor.Sniffer`:
archives can be big, so each one is spooled (memory, then a private temporary file) while the
walker streams it and reduced at once to the coordinates it holds (the walker keeps that small
record, not the archive). In each archive every ``META-INF/maven/**/pom.properties`` is a
package (shaded jars carry their dependencies' too); an archive without any falls back to its
``META-INF/MANIFEST.MF`` and file name. Archives inside archives (``WEB-INF/lib``,
``BOOT-INF/lib``, ``lib/`` of an ear) are read from memory to a depth limit, each refused (with a
warning, never a crash) when its declared size, compression ratio or member count is too much.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Final

from kubegate.inventory.extractor import Extracted, reduced_records
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import language_purl
from kubegate.inventory.walker import Reducer
from kubegate.models import OSInfo, Package

_logger = logging.getLogger(__name__)

_ARCHIVES: Final = (".jar", ".war", ".ear")
RECORD: Final = b"kubegate-java:1\n"
#: An archive in a layer bigger than this is skipped (spooled to disk up to it).
MAX_ARCHIVE_BYTES: Final = 512 * 1024 * 1024
_SPOOL_IN_MEMORY: Final = 16 * 1024 * 1024
#: A nested archive is inflated in memory: bounded in size, ratio, depth and count.
MAX_NESTED_BYTES: Final = 64 * 1024 * 1024
MAX_RATIO: Final = 100
MAX_DEPTH: Final = 3
MAX_MEMBERS: Final = 100_000
#: Total bytes inflated for one top-level archive (nested archives and metadata files).
MAX_INFLATED: Final = 1024 * 1024 * 1024
_MAX_METADATA: Final = 1024 * 1024
_ARCHIVE_VERSION: Final = re.compile(r"^(.+?)-(\d[\w.+~-]*)$")
_ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
)


class _Refused(Exception):  # an archive the limits refuse; the walk goes on without it
    pass


@dataclass(slots=True)
class _Budget:  # mutable on purpose: what one archive's scan has spent and found so far
    inflated: int = 0
    members: int = 0
    found: list[list[str]] = field(default_factory=list)

    def spend(self, size: int) -> None:
        self.inflated += size
        if self.inflated > MAX_INFLATED:
            raise _Refused(f"more than {MAX_INFLATED} bytes inflated")


def _properties(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        # java.util.Properties: the key ends at the first unescaped '=' or ':'.
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=len(line))
        values[line[:cut].strip()] = line[cut + 1 :].strip()
    return values


def _manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF (72-byte lines continued by a leading space)."""
    values: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line:
            break  # the main section ends at the first empty line
        if line.startswith(" ") and last is not None:
            values[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            values[last] = value.strip()
    return values


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, limit: int
) -> bytes:
    if info.file_size > limit:
        raise _Refused(f"{info.filename} declares {info.file_size} bytes, over {limit}")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise _Refused(f"{info.filename} compression ratio over {MAX_RATIO}")
    budget.spend(info.file_size)
    with archive.open(info) as member:
        # zipfile stops at the declared size: a member lying about it cannot inflate more.
        return member.read(limit)


def _scan(archive: zipfile.ZipFile, name: str, suffix: str, depth: int, budget: _Budget) -> None:
    infos = archive.infolist()
    budget.members += len(infos)
    if budget.members > MAX_MEMBERS:
        raise _Refused(f"more than {MAX_MEMBERS} archive members")
    found_pom = False
    manifest: dict[str, str] = {}
    for info in infos:
        member = info.filename
        if member.startswith("META-INF/maven/") and member.endswith("/pom.properties"):
            props = _properties(
                _read_member(archive, info, budget, _MAX_METADATA).decode("utf-8", "replace")
            )
            group, artifact, version = (
                props.get(k, "") for k in ("groupId", "artifactId", "version")
            )
            if group and artifact and version:
                budget.found.append([suffix, group, artifact, version])
                found_pom = True
        elif member.upper() == "META-INF/MANIFEST.MF":
            manifest = _manifest(
                _read_member(archive, info, budget, _MAX_METADATA).decode("utf-8", "replace")
            )
    if not found_pom:
        _from_manifest(manifest, name, suffix, budget)
    for info in infos:
        if not info.filename.lower().endswith(_ARCHIVES) or info.is_dir():
            continue
        inner = f"{suffix}!/{info.filename}"
        if depth >= MAX_DEPTH:
            _logger.warning("java: %s nested deeper than %s archives, not read", inner, MAX_DEPTH)
            continue
        try:
            data = _read_member(archive, info, budget, MAX_NESTED_BYTES)
            with zipfile.ZipFile(io.BytesIO(data)) as nested:
                _scan(nested, info.filename.rpartition("/")[2], inner, depth + 1, budget)
        except _Refused as exc:
            _logger.warning("java: nested archive %s refused: %s", inner, exc)
        except _ZIP_ERRORS as exc:
            _logger.warning("java: nested archive %s unreadable: %s", inner, exc)


def _from_manifest(manifest: dict[str, str], name: str, suffix: str, budget: _Budget) -> None:
    stem = name.rsplit(".", 1)[0]
    match = _ARCHIVE_VERSION.match(stem)
    artifact = match.group(1) if match else stem
    version = (
        manifest.get("Implementation-Version")
        or manifest.get("Bundle-Version")
        or (match.group(2) if match else "")
    )
    group = manifest.get("Implementation-Vendor-Id", "")
    if artifact and version:
        budget.found.append([suffix, group, artifact, version])


def reduce_archive(name: str, source: IO[bytes]) -> bytes | None:
    """The record of one archive: ``[suffix, group, artifact, version]`` per package found."""
    budget = _Budget()
    try:
        with zipfile.ZipFile(source) as archive:
            _scan(archive, name, "", 1, budget)
    except _Refused as exc:
        _logger.warning("java: %s refused: %s", name, exc)
    except _ZIP_ERRORS as exc:
        _logger.warning("java: %s unreadable: %s", name, exc)
    if not budget.found:
        return None
    return RECORD + json.dumps(budget.found, separators=(",", ":")).encode()


def _reducer(name: str) -> Reducer:
    def reduce(chunks: Iterator[bytes]) -> bytes | None:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            return reduce_archive(name, spool)

    return reduce


class JavaExtractor:
    """Maven artifacts in Java archives."""

    name: Final = "java"
    version: Final = 1

    def required(self, path: str) -> bool:
        """Nothing whole: archives are reduced while streamed (see :meth:`sniff`)."""
        return False

    def sniff(self, path: str, mode: int, size: int) -> Reducer | None:
        """``*.jar``, ``*.war``, ``*.ear`` up to :data:`MAX_ARCHIVE_BYTES`."""
        if not path.lower().endswith(_ARCHIVES):
            return None
        if size > MAX_ARCHIVE_BYTES:
            _logger.warning(
                "java: /%s is %s bytes, over %s: not read", path, size, MAX_ARCHIVE_BYTES
            )
            return None
        return _reducer(path.rpartition("/")[2])

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """One package per coordinate found in each archive."""
        packages: list[Package] = []
        for path, found in reduced_records(view, RECORD, self.name):
            layer = view.layer_of(path)
            for suffix, group, artifact, version in found:
                packages.append(
                    Package(
                        name=f"{group}:{artifact}" if group else artifact,
                        version=version,
                        type="maven",
                        purl=language_purl("maven", group or None, artifact, version),
                        extractor=self.name,
                        layer=layer,
                        location=f"/{path}{suffix}",
                    )
                )
        return Extracted(packages=tuple(packages))


__all__ = ["JavaExtractor", "reduce_archive"]
