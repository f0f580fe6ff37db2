"""Readers of the three rpm database formats and of the RPM header blobs they store.

Used by :mod:`kubegate.inventory.rpm` (during the walk, on a spooled copy of the database):

* ``rpmdb.sqlite`` (rpm >= 4.16: Fedora 33+, RHEL 9, Amazon Linux 2023): table
  ``Packages(hnum, blob)``, read from a private temporary copy (SQLite needs a file), opened
  read-only and immutable;
* Berkeley DB hash ``Packages`` (RHEL/CentOS 7-8, Amazon Linux 2): pages walked directly, as
  osv-scalibr and Trivy (go-rpmdb) do: every hash page's values, inline or on overflow chains;
* NDB ``Packages.db`` (SUSE; rpm ``lib/backend/ndb/rpmpkg.c``): slot pages index blobs.

Each value is an RPM header without lead or magic (rpm ``lib/header.c`` "header blob"): two
big-endian int32 (index count, data length), 16-byte index entries (tag, type, offset, count)
and the data. Everything is bounds-checked: a hostile database raises :class:`RpmDBError`
(the caller skips it with a warning), a hostile header is skipped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

_logger = logging.getLogger(__name__)

# Tags (rpm include/rpm/rpmtag.h) and types (rpmTagType).
NAME: Final = 1000
VERSION: Final = 1001
RELEASE: Final = 1002
EPOCH: Final = 1003
VENDOR: Final = 1011
ARCH: Final = 1022
SOURCERPM: Final = 1044
DIRINDEXES: Final = 1116
BASENAMES: Final = 1117
DIRNAMES: Final = 1118
_INT32: Final = 4
_STRING: Final = 6
_STRING_ARRAY: Final = 8
_I18NSTRING: Final = 9
#: rpm's own sanity bounds (lib/header.c hdrchkTags / hdrchkData).
_MAX_TAGS: Final = 0xFFFF
_MAX_DATA: Final = 256 * 1024 * 1024
_MAX_FILES: Final = 1_000_000


class RpmDBError(Exception):  # wrapped into a warning by the rpm extractor
    """A database file that is not one of the formats, or is corrupt."""


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """The fields kubegate reads from one installed package's header."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    source_rpm: str | None
    vendor: str | None
    files: tuple[str, ...]


def _cstring(data: bytes, offset: int) -> tuple[str, int]:
    end = data.find(b"\0", offset)
    if end < 0:
        raise ValueError("unterminated string")
    return data[offset:end].decode("utf-8", "replace"), end + 1


def parse_header(blob: bytes) -> RpmHeader | None:
    """The header's package fields; ``None`` for a malformed header or one without a name."""
    if len(blob) < 8:
        return None
    count, size = struct.unpack_from(">II", blob, 0)
    start = 8 + 16 * count
    if count > _MAX_TAGS or size > _MAX_DATA or start + size > len(blob):
        return None
    data = blob[start : start + size]
    strings: dict[int, str] = {}
    arrays: dict[int, list[str]] = {}
    ints: dict[int, list[int]] = {}
    wanted = {
        NAME,
        VERSION,
        RELEASE,
        EPOCH,
        VENDOR,
        ARCH,
        SOURCERPM,
        DIRINDEXES,
        BASENAMES,
        DIRNAMES,
    }
    try:
        for index in range(count):
            tag, kind, offset, items = struct.unpack_from(">iIiI", blob, 8 + 16 * index)
            if tag not in wanted:
                continue
            if offset < 0 or offset >= size or items > _MAX_FILES:
                return None
            if kind in (_STRING, _I18NSTRING):
                strings[tag] = _cstring(data, offset)[0]
            elif kind == _STRING_ARRAY:
                values, pos = [], offset
                for _ in range(items):
                    value, pos = _cstring(data, pos)
                    values.append(value)
                arrays[tag] = values
            elif kind == _INT32:
                if offset + 4 * items > size:
                    return None
                ints[tag] = list(struct.unpack_from(f">{items}i", data, offset))
    except (ValueError, struct.error):
        return None
    name = strings.get(NAME)
    if not name:
        return None
    epochs = ints.get(EPOCH)
    return RpmHeader(
        name=name,
        version=strings.get(VERSION, ""),
        release=strings.get(RELEASE, ""),
        epoch=epochs[0] if epochs else None,
        arch=strings.get(ARCH),
        source_rpm=strings.get(SOURCERPM),
        vendor=strings.get(VENDOR),
        files=_files(arrays.get(BASENAMES, []), arrays.get(DIRNAMES, []), ints.get(DIRINDEXES, [])),
    )


def _files(basenames: list[str], dirnames: list[str], indexes: list[int]) -> tuple[str, ...]:
    if len(basenames) != len(indexes):
        return ()
    return tuple(
        dirnames[i] + base
        for base, i in zip(basenames, indexes, strict=True)
        if 0 <= i < len(dirnames)
    )


# -- SQLite -----------------------------------------------------------------------------------


def sqlite_blobs(source: IO[bytes]) -> Iterator[bytes]:
    """Header blobs of an ``rpmdb.sqlite`` (copied to a private temporary file first)."""
    with tempfile.TemporaryDirectory(prefix="kubegate-rpmdb-") as directory:
        path = os.path.join(directory, "rpmdb.sqlite")
        with open(path, "wb") as copy:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        try:
            # immutable: no locking, no journal or WAL files created next to the copy.
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
            try:
                rows = conn.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise RpmDBError(f"rpmdb.sqlite unreadable: {exc}") from exc
    for (blob,) in rows:
        if isinstance(blob, bytes):
            yield blob


# -- Berkeley DB hash ---------------------------------------------------------------------------

_HASH_MAGIC: Final = 0x061561
_PAGE_HEADER: Final = 26
_P_HASH_UNSORTED: Final = 2
_P_OVERFLOW: Final = 7
_P_HASH: Final = 13
_H_KEYDATA: Final = 1
_H_OFFPAGE: Final = 3


def bdb_blobs(data: bytes) -> Iterator[bytes]:
    """Values of a Berkeley DB hash database (``db_dump``-free, format db_page.h)."""
    if len(data) < 512:
        raise RpmDBError("Berkeley DB file too short")
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data, 12)[0] == _HASH_MAGIC:
            break
    else:
        raise RpmDBError("not a Berkeley DB hash database")
    (page_size,) = struct.unpack_from(order + "I", data, 20)
    if data[24] != 0:
        raise RpmDBError("encrypted Berkeley DB database")
    (last_page,) = struct.unpack_from(order + "I", data, 32)
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise RpmDBError(f"Berkeley DB page size {page_size} is invalid")
    pages = min(last_page + 1, len(data) // page_size)
    for number in range(1, pages):
        page = data[number * page_size : (number + 1) * page_size]
        kind = page[25]
        if kind not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        (entries,) = struct.unpack_from(order + "H", page, 20)
        if _PAGE_HEADER + 2 * entries > page_size:
            raise RpmDBError(f"Berkeley DB page {number} has too many entries")
        offsets = struct.unpack_from(f"{order}{entries}H", page, _PAGE_HEADER)
        # Entries are key/value pairs; items are stored from the page's end downwards.
        for index in range(1, entries, 2):
            offset = offsets[index]
            end = offsets[index - 1]
            if not offset < end <= page_size:
                raise RpmDBError(f"Berkeley DB page {number} has a bad item offset")
            item = page[offset]
            if item == _H_KEYDATA:
                yield page[offset + 1 : end]
            elif item == _H_OFFPAGE and offset + 12 <= page_size:
                first, length = struct.unpack_from(order + "II", page, offset + 4)
                yield _overflow(data, page_size, pages, first, length, order)


def _overflow(
    data: bytes, page_size: int, pages: int, first: int, length: int, order: str
) -> bytes:
    value = bytearray()
    number, seen = first, set()
    while number and len(value) < length:
        if number >= pages or number in seen:
            raise RpmDBError(f"Berkeley DB overflow chain broken at page {number}")
        seen.add(number)
        page = data[number * page_size : (number + 1) * page_size]
        if page[25] != _P_OVERFLOW:
            raise RpmDBError(f"Berkeley DB page {number} is not an overflow page")
        (next_page,) = struct.unpack_from(order + "I", page, 16)
        (used,) = struct.unpack_from(order + "H", page, 22)  # hf_offset: bytes used on this page
        value += page[_PAGE_HEADER : _PAGE_HEADER + used]
        number = next_page
    return bytes(value[:length])


# -- NDB ----------------------------------------------------------------------------------------

_NDB_MAGIC: Final = b"RpmP"
_SLOT_MAGIC: Final = b"Slot"
_BLOB_MAGIC: Final = b"BlbS"
_NDB_PAGE: Final = 4096
_NDB_BLOCK: Final = 16
_NDB_SLOT: Final = 16


def ndb_blobs(data: bytes) -> Iterator[bytes]:
    """Header blobs of an NDB ``Packages.db`` (little-endian, rpmpkg.c)."""
    if len(data) < _NDB_PAGE or data[:4] != _NDB_MAGIC:
        raise RpmDBError("not an NDB Packages.db")
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise RpmDBError(f"NDB version {version} not supported")
    if slot_pages == 0 or slot_pages * _NDB_PAGE > len(data):
        raise RpmDBError("NDB slot pages beyond the end of the file")
    # The first two slots of the first page hold the file header.
    for offset in range(2 * _NDB_SLOT, slot_pages * _NDB_PAGE, _NDB_SLOT):
        magic = data[offset : offset + 4]
        if magic != _SLOT_MAGIC:
            raise RpmDBError(f"NDB slot at {offset} is corrupt")
        index, block, blocks = struct.unpack_from("<III", data, offset + 4)
        if index == 0:
            continue  # a free slot
        start = block * _NDB_BLOCK
        if start + 16 > len(data) or data[start : start + 4] != _BLOB_MAGIC:
            raise RpmDBError(f"NDB blob of package {index} is corrupt")
        blob_index, _adler32, length = struct.unpack_from("<III", data, start + 4)
        if blob_index != index or start + 16 + length > min(len(data), start + blocks * _NDB_BLOCK):
            raise RpmDBError(f"NDB blob of package {index} is corrupt")
        yield data[start + 16 : start + 16 + length]


__all__ = ["RpmDBError", "RpmHeader", "bdb_blobs", "ndb_blobs", "parse_header", "sqlite_blobs"]
