"""The content layer of a Flux OCI artifact: a deterministic tar.gz of the judged tree.

Laid out as ``flux push artifact`` lays it out (fluxcd/pkg ``tar.Tar`` called by ``oci.Build``):
a pre-order walk with the entries of each directory in byte order of their names, the root
itself first as ``.``, directories as entries of their own (names without a trailing slash),
then regular files; symlinks and special files are never written. Headers are USTAR, as Go's
``archive/tar`` writes them when a name fits: uid/gid 0, no user or group names, mtime 0; a name
that does not fit USTAR (longer than its fields, or not ASCII) gets a PAX header instead. The
gzip member carries no name and mtime 0 (the header Go's ``compress/gzip`` writes).

Where kubegate departs from Flux, and why: modes are normalised to 0644 (files) and 0755
(directories), because the judged tree is a private copy whose own modes say nothing about the
revision; empty directories do not exist in that copy, so none is archived. The same tree
therefore always gives the same bytes (the digest is the artifact's identity).

Called by :mod:`kubegate.publish.artifact`; the extraction side is
:func:`kubegate.source.artifact.extract`.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubegate.errors import SourceError

FILE_MODE = 0o644
DIR_MODE = 0o755
#: Go's ``compress/gzip`` default level (``flate.DefaultCompression`` is level 6).
_GZIP_LEVEL = 6
#: ID1 ID2, deflate, no flags, mtime 0, no extra flags (level 6), OS "unknown" (255): the
#: header Go's ``gzip.NewWriter`` writes for a zero ``Header``.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: Offsets in a USTAR header block (POSIX ustar: chksum at 148, devmajor/devminor at 329).
_CHKSUM = 148
_DEVMAJOR = 329


class _Entry(tarfile.TarInfo):
    """A tar header written like Go's ``archive/tar`` (no trailing slash on directories)."""

    def get_info(self) -> dict[str, Any]:
        info: dict[str, Any] = dict(super().get_info())
        info["name"] = self.name
        return info


def _header(name: str, *, directory: bool, size: int) -> bytes:
    entry = _Entry(name)
    entry.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    entry.mode = DIR_MODE if directory else FILE_MODE
    entry.size = size
    entry.mtime = 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    data = None
    if name.isascii():
        try:
            data = entry.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:
            pass  # the name does not fit USTAR's name and prefix fields
    if data is None:
        data = entry.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    blocks = bytearray(data)
    # The first and the last block are headers (a PAX record block sits between them).
    for start in {0, len(blocks) - tarfile.BLOCKSIZE}:
        _go_device_fields(blocks, start)
    return bytes(blocks)


def _go_device_fields(blocks: bytearray, start: int) -> None:
    """Write devmajor/devminor as Go does for every entry ("0000000\0"; Python leaves them
    empty for non-devices), then the checksum again."""
    block = start + _DEVMAJOR
    blocks[block : block + 16] = b"0000000\x000000000\x00"
    blocks[start + _CHKSUM : start + _CHKSUM + 8] = b" " * 8
    checksum = sum(blocks[start : start + tarfile.BLOCKSIZE])
    blocks[start + _CHKSUM : start + _CHKSUM + 8] = b"%06o\x00 " % checksum


def walk(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """``(name, path, is_dir)`` in archive order: ``.`` first, then a pre-order walk."""
    yield ".", root, True
    yield from _walk(root, "")


def _walk(directory: Path, prefix: str) -> Iterator[tuple[str, Path, bool]]:
    with os.scandir(directory) as it:
        # Byte order of the UTF-8 names, as Go's os.ReadDir sorts them.
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for entry in entries:
        name = f"{prefix}{entry.name}"
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            yield name, Path(entry.path), True
            yield from _walk(Path(entry.path), f"{name}/")
        elif stat.S_ISREG(mode):
            yield name, Path(entry.path), False
        # Symlinks, sockets, fifos, devices: never archived (Flux's tar.Tar skips them too).


def tar_stream(root: Path) -> bytes:
    """The uncompressed tar of ``root`` (what the layer's diff ID is computed over)."""
    out = io.BytesIO()
    try:
        for name, path, directory in walk(root):
            if directory:
                out.write(_header(name, directory=True, size=0))
                continue
            data = path.read_bytes()
            out.write(_header(name, directory=False, size=len(data)))
            out.write(data)
            out.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    except OSError as exc:
        raise SourceError(f"cannot archive the judged tree: {exc.strerror or exc}") from exc
    # End of archive: exactly two zero blocks, as Go's tar.Writer.Close writes (Python's
    # TarFile would pad to a 10 KiB record).
    out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """``data`` as one gzip member with a fixed header (no name, mtime 0)."""
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return _GZIP_HEADER + body + trailer


def build_tarball(root: Path) -> tuple[bytes, bytes]:
    """``(tar.gz bytes, uncompressed tar bytes)`` of ``root``; the same tree, the same bytes."""
    raw = tar_stream(root)
    return gzip_bytes(raw), raw
