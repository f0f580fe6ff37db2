"""A lean streaming tar reader (POSIX ustar, PAX and GNU long names) for layer walking.

Used by :mod:`kubegate.inventory.walker` instead of ``tarfile``: measured on a 150 MB layer of 20k
files, ``tarfile`` spent 0.8 s parsing headers on top of 0.6 s of decompression; this reader
parses a header in a few microseconds, skips file data with one reusable buffer, and bounds
every extended header before reading it (``tarfile`` reads PAX/GNU headers wholly into memory).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from kubegate.errors import InventoryError

BLOCK: Final = 512
REGULAR: Final = frozenset(b"07\0")
HARDLINK: Final = ord("1")
SYMLINK: Final = ord("2")
DIRECTORY: Final = ord("5")
_PAX: Final = ord("x")
_PAX_GLOBAL: Final = ord("g")
_GNU_LONGNAME: Final = ord("L")
_GNU_LONGLINK: Final = ord("K")
_EXTENDED: Final = frozenset({_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK, ord("X")})
_SKIP_CHUNK: Final = 1 << 20
#: Types whose header size is not followed by data (as tarfile treats them).
_NO_DATA: Final = frozenset(b"123456")


@dataclass(frozen=True, slots=True)
class Header:
    """One archive member: name and link target as stored (not yet normalised)."""

    name: str
    type: int
    size: int
    linkname: str
    #: Permission bits (``0o755``); extractors that sniff executables look at them.
    mode: int = 0o644


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256 for sizes over 8 GiB
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise InventoryError("negative number in tar header")
        return value | ((field[0] & 0x3F) << (8 * (len(field) - 1)))
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise InventoryError(f"invalid number {text!r} in tar header") from None


def _mode(field: bytes) -> int:
    """Permission bits; a garbled mode field only matters to sniffers, so it is not fatal."""
    try:
        return _number(field) & 0o7777
    except InventoryError:
        return 0o644


def _pax_records(data: bytes) -> dict[str, str]:
    """``LENGTH KEY=VALUE\\n`` records (POSIX pax "extended header")."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise InventoryError("invalid PAX extended header") from None
        if space < 0 or length <= 0 or pos + length > len(data):
            raise InventoryError("invalid PAX extended header")
        record = data[space + 1 : pos + length - 1]
        key, sep, value = record.partition(b"=")
        if not sep:
            raise InventoryError("invalid PAX extended header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarReader:
    """Iterates the headers of a tar stream; the caller reads or skips each member's data."""

    def __init__(self, stream: io.RawIOBase, *, max_header_bytes: int) -> None:
        self._stream = io.BufferedReader(stream, buffer_size=256 * 1024)
        self._max_header = max_header_bytes
        self._pending = 0  # unread data + padding of the current member
        self._scratch = memoryview(bytearray(_SKIP_CHUNK))
        #: Whether an end-of-archive block was seen (else the stream was cut short).
        self.ended = False

    def _exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise InventoryError("layer is truncated")
        return data

    def _skip(self, size: int) -> None:
        while size > 0:
            n = self._stream.readinto(self._scratch[: min(size, _SKIP_CHUNK)])
            if not n:
                raise InventoryError("layer is truncated")
            size -= n

    def read_data(self, size: int) -> bytes:
        """The current member's data (``size`` is its header size, checked by the caller)."""
        data = self._exact(size)
        self._pending -= size
        return data

    def iter_data(self, size: int, chunk: int = _SKIP_CHUNK) -> Iterator[bytes]:
        """The current member's data in chunks; what the caller does not consume is skipped."""
        while size > 0:
            data = self._stream.read(min(size, chunk))
            if not data:
                raise InventoryError("layer is truncated")
            size -= len(data)
            self._pending -= len(data)
            yield data

    def __iter__(self) -> Iterator[Header]:
        overrides: dict[str, str] = {}
        while True:
            self._skip(self._pending)
            self._pending = 0
            block = self._stream.read(BLOCK)
            if not block:
                return  # EOF without end-of-archive block: ``ended`` stays False
            if len(block) != BLOCK:
                raise InventoryError("layer is truncated")
            if not any(block):
                self.ended = True
                return
            checksum = _number(block[148:156])
            unsigned = sum(block) - sum(block[148:156]) + 8 * 32
            # Some old writers summed signed bytes; tarfile accepts both, so do we.
            if checksum != unsigned and checksum != unsigned - 256 * sum(
                1 for b in block if b & 0x80
            ) + 256 * sum(1 for b in block[148:156] if b & 0x80):
                raise InventoryError("invalid tar header checksum")
            kind = block[156]
            size = _number(block[124:136])
            padded = size + (-size % BLOCK)
            if kind in _EXTENDED:
                if size > self._max_header:
                    raise InventoryError(
                        f"tar extended header of {size} bytes exceeds {self._max_header}"
                    )
                data = self._exact(padded)[:size]
                if kind in (_PAX, ord("X")):
                    overrides.update(_pax_records(data))
                elif kind == _GNU_LONGNAME:
                    overrides["path"] = _text(data)
                elif kind == _GNU_LONGLINK:
                    overrides["linkpath"] = _text(data)
                continue  # global headers: nothing an image's inventory depends on
            name = _text(block[0:100])
            if block[257:263] == b"ustar\x00" and block[345] != 0:
                name = f"{_text(block[345:500])}/{name}"
            linkname = _text(block[157:257])
            if "path" in overrides:
                name = overrides["path"]
            if "linkpath" in overrides:
                linkname = overrides["linkpath"]
            if "size" in overrides:
                try:
                    size = int(overrides["size"])
                except ValueError:
                    raise InventoryError("invalid PAX size") from None
                padded = size + (-size % BLOCK)
            overrides = {}
            if kind in _NO_DATA:
                size = 0  # links, devices and directories carry no data (as in tarfile)
                padded = 0
            self._pending = padded
            mode = _mode(block[100:108])
            yield Header(name, kind, size, linkname, mode)
            # The caller may have read ``size`` bytes; the padding (and any rest) is skipped.
