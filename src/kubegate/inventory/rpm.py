"""The rpm extractor: Fedora, RHEL and its rebuilds, Amazon Linux, SUSE.

Listed in :mod:`kubegate.inventory.extractors` and a :class:`~kubegate.inventory.extractor.Sniffer`:
the database (``rpmdb.sqlite``, Berkeley DB ``Packages`` or NDB ``Packages.db``, see
:mod:`kubegate.inventory.rpmdb`) under ``var/lib/rpm``, ``usr/lib/sysimage/rpm`` or
``usr/share/rpm`` is spooled while the walker streams it and reduced at once to one small JSON
record per package, so the cache keeps packages, not a multi-MB database per layer. The paths
are then read through the merged view, symlinks followed (Fedora's ``var/lib/rpm`` points into
``usr/lib/sysimage``).

Versions are ``EPOCH:VERSION-RELEASE`` (epoch only when set) because advisories' fixed versions
carry it; the source package comes from ``SOURCERPM``; a package whose vendor is not the
distro's own is flagged ``third_party`` (its advisories are not the distro's).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from typing import IO, Any, Final

from packageurl import PackageURL

from kubegate.inventory.extractor import Extracted, introducing_layers
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import distro_qualifier
from kubegate.inventory.rpmdb import RpmDBError, bdb_blobs, ndb_blobs, parse_header, sqlite_blobs
from kubegate.inventory.walker import Reducer
from kubegate.models import OSInfo, Package

_logger = logging.getLogger(__name__)

_DIRS: Final = ("var/lib/rpm", "usr/lib/sysimage/rpm", "usr/share/rpm")
#: Newest format first: after a migration the old file may linger beside the new one.
_FILES: Final = ("rpmdb.sqlite", "Packages.db", "Packages")
_CANDIDATES: Final = frozenset(f"{d}/{f}" for d in _DIRS for f in _FILES)
RECORD: Final = b"kubegate-rpm:1\n"
_EMPTY: Final = RECORD + b"[]"
#: Largest database read (a full RHEL 7 ``Packages`` is ~100 MB).
MAX_DATABASE_BYTES: Final = 512 * 1024 * 1024
_SPOOL_IN_MEMORY: Final = 16 * 1024 * 1024
#: The purl namespace of each distro (purl-spec "rpm" and the vendors' own SBOMs).
_NAMESPACES: Final = {
    "rhel": "redhat",
    "centos": "centos",
    "fedora": "fedora",
    "almalinux": "almalinux",
    "rocky": "rocky",
    "amzn": "amzn",
    "ol": "oracle",
    "sles": "suse",
    "sles_sap": "suse",
    "opensuse": "opensuse",
    "opensuse-leap": "opensuse",
    "opensuse-tumbleweed": "opensuse",
    "mariner": "mariner",
    "azurelinux": "azurelinux",
}
#: Words a distro's own packages have in their Vendor tag.
_VENDORS: Final = {
    "rhel": ("red hat",),
    "centos": ("centos",),
    "fedora": ("fedora project",),
    "almalinux": ("almalinux",),
    "rocky": ("rocky",),
    "amzn": ("amazon",),
    "ol": ("oracle",),
    "sles": ("suse",),
    "sles_sap": ("suse",),
    "opensuse": ("suse",),
    "opensuse-leap": ("suse",),
    "opensuse-tumbleweed": ("suse",),
    "mariner": ("microsoft",),
    "azurelinux": ("microsoft",),
}


def _blobs(name: str, source: IO[bytes]) -> Iterator[bytes]:
    if name == "rpmdb.sqlite":
        return sqlite_blobs(source)
    data = source.read(MAX_DATABASE_BYTES + 1)
    if len(data) > MAX_DATABASE_BYTES:
        raise RpmDBError(f"database over {MAX_DATABASE_BYTES} bytes")
    return ndb_blobs(data) if name == "Packages.db" else bdb_blobs(data)


def reduce_database(name: str, source: IO[bytes]) -> bytes:
    """The record kept for one database: a JSON list of package fields."""
    records: list[dict[str, Any]] = []
    skipped = 0
    for blob in _blobs(name, source):
        header = parse_header(blob)
        if header is None:
            skipped += 1
            continue
        if header.name == "gpg-pubkey":
            continue  # imported signing keys, not software
        records.append(
            {
                "name": header.name,
                "version": header.version,
                "release": header.release,
                "epoch": header.epoch,
                "arch": header.arch,
                "sourcerpm": header.source_rpm,
                "vendor": header.vendor,
                "files": header.files,
            }
        )
    if skipped:
        _logger.warning("rpm: %s malformed headers skipped in %s", skipped, name)
    return RECORD + json.dumps(records, separators=(",", ":")).encode()


def _reducer(name: str) -> Reducer:
    def reduce(chunks: Iterator[bytes]) -> bytes | None:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            try:
                return reduce_database(name, spool)
            except RpmDBError as exc:
                _logger.warning("rpm: %s not read: %s", name, exc)
                # An empty record, not None: the merged view must not ask for a second pass.
                return _EMPTY

    return reduce


def _oversized(chunks: Iterator[bytes]) -> bytes | None:
    return _EMPTY


def _records(path: str, data: bytes) -> list[dict[str, Any]]:
    if not data.startswith(RECORD):
        # A database reached only through a link was read whole on a second pass.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            spool.write(data)
            spool.seek(0)
            try:
                data = reduce_database(path.rpartition("/")[2], spool)
            except RpmDBError as exc:
                _logger.warning("rpm: /%s not read: %s", path, exc)
                return []
    try:
        records = json.loads(data[len(RECORD) :])
    except ValueError:
        return []
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def evr(record: dict[str, Any]) -> str:
    """``EPOCH:VERSION-RELEASE``, the epoch only when the header has one."""
    text = f"{record['version']}-{record['release']}"
    epoch = record.get("epoch")
    return f"{epoch}:{text}" if epoch is not None else text


def split_source_rpm(source_rpm: str | None) -> tuple[str, str] | None:
    """``name-version-release.src.rpm`` -> ``(name, version-release)``."""
    if not source_rpm:
        return None
    stem = source_rpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], f"{parts[1]}-{parts[2]}"


def _third_party(vendor: str | None, os_info: OSInfo | None) -> bool:
    if os_info is None:
        return False
    words = _VENDORS.get(os_info.id)
    if words is None:
        return False  # a distro we do not know the vendor of: no judgement
    return not vendor or not any(word in vendor.lower() for word in words)


class RpmExtractor:
    """Packages of an rpm database."""

    name: Final = "rpm"
    version: Final = 1

    def required(self, path: str) -> bool:
        """Nothing whole: the database is reduced while streamed (see :meth:`sniff`)."""
        return False

    def sniff(self, path: str, mode: int, size: int) -> Reducer | None:
        """The database files in the three known directories."""
        if path not in _CANDIDATES:
            return None
        if size > MAX_DATABASE_BYTES:
            _logger.warning(
                "rpm: /%s is %s bytes, over %s: not read", path, size, MAX_DATABASE_BYTES
            )
            return _oversized
        return _reducer(path.rpartition("/")[2])

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """Every package of the first database found (newest format first)."""
        for base in _FILES:
            for directory in _DIRS:
                path = f"{directory}/{base}"
                history = view.history(path)
                if history:
                    return Extracted(packages=self._packages(path, history, os_info))
        return Extracted()

    def _packages(
        self, path: str, history: list[tuple[Any, bytes]], os_info: OSInfo | None
    ) -> tuple[Package, ...]:
        parsed = [(digest, _records(path, data)) for digest, data in history]
        layers = introducing_layers(
            [
                (digest, {(r["name"], r.get("arch")): evr(r) for r in records})
                for digest, records in parsed
            ]
        )
        os_id = os_info.id if os_info is not None else ""
        namespace = _NAMESPACES.get(os_id, os_id or None)
        distro = distro_qualifier(os_info)
        packages: list[Package] = []
        for record in parsed[-1][1]:
            name, arch = record["name"], record.get("arch")
            version = evr(record)
            source = split_source_rpm(record.get("sourcerpm"))
            epoch = record.get("epoch")
            qualifiers = {"arch": arch} if arch else {}
            if epoch is not None:
                qualifiers["epoch"] = str(epoch)
            if distro:
                qualifiers["distro"] = distro
            purl = PackageURL(
                type="rpm",
                namespace=namespace,
                name=name,
                version=f"{record['version']}-{record['release']}",
                qualifiers=qualifiers,
            ).to_string()
            source_version = version
            if source is not None:
                source_version = f"{epoch}:{source[1]}" if epoch is not None else source[1]
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="rpm",
                    purl=purl,
                    extractor=self.name,
                    source_name=source[0] if source else name,
                    source_version=source_version,
                    arch=arch,
                    layer=layers.get((name, arch)),
                    location=f"/{path}",
                    third_party=_third_party(record.get("vendor"), os_info),
                    files=tuple(record.get("files") or ()),
                )
            )
        _logger.debug("rpm: %s installed packages in /%s", len(packages), path)
        return tuple(packages)


__all__ = ["RpmExtractor", "evr", "reduce_database", "split_source_rpm"]
