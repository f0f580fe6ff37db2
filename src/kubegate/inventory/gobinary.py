"""The Go binary extractor: module build information embedded in Go executables.

Listed in :mod:`kubegate.inventory.extractors` and a :class:`~kubegate.inventory.extractor.Sniffer`:
Go binaries live anywhere and can be hundreds of MB, so every executable regular file is streamed
through :func:`reduce_executable` during the walk, which keeps only the build information (a few
KB) and lets the walker skip the rest. Formats (Go's ``debug/buildinfo``):

* the ``.go.buildinfo`` blob starts with the 14-byte magic ``\\xff Go buildinf:``, pointer size
  and flags, 16 bytes in all then padding to 32; with ``flags & 2`` (Go 1.18+) the Go version
  and the module information follow inline as two uvarint-length-prefixed strings;
* older binaries (Go 1.13-1.17) hold pointers there instead; their module information string is
  still stored literally, between two 16-byte sentinels, so it is found by those. Their Go
  version is reachable only through pointers and is not reported (no ``stdlib`` package).

Cost, measured on the shared test machine: 100 ELF executables of 1.5 MB (150 MB, no Go
magic) are scanned in 0.15-0.27 s against 0.16-0.17 s to skip them unread.

Module information lines are tab-separated: ``path``, ``mod`` (main module), ``dep`` and
``=>`` (the replacement of the line before).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Final

from kubegate.inventory.extractor import Extracted, reduced_records
from kubegate.inventory.filesystem import ImageView
from kubegate.inventory.purl import language_purl
from kubegate.inventory.walker import Reducer
from kubegate.models import OSInfo, Package

_logger = logging.getLogger(__name__)

_ELF: Final = b"\x7fELF"
_MAGIC: Final = b"\xff Go buildinf:"
_SENTINEL_START: Final = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
_SENTINEL_END: Final = bytes.fromhex("f932433186182072008242104116d8f2")
_HEADER: Final = 32
_FLAG_INLINE: Final = 2
#: Bytes kept after a marker: the module list of a large program (kubelet) is ~30 KB.
_MAX_CAPTURE: Final = 1 << 20
#: Marks the walker-kept record, so that a raw file read on a second pass is told apart.
RECORD: Final = b"kubegate-go-buildinfo:1\n"
_DEVEL: Final = "(devel)"


def _uvarint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _inline_strings(buf: bytes | bytearray) -> tuple[str, str] | None:
    """Version and module information after a Go 1.18+ header, if ``buf`` holds them whole."""
    pos = _HEADER
    strings: list[str] = []
    for _ in range(2):
        found = _uvarint(buf, pos)
        if found is None:
            return None
        length, pos = found
        if pos + length > len(buf):
            return None
        strings.append(bytes(buf[pos : pos + length]).decode("utf-8", "replace"))
        pos += length
    return strings[0], strings[1]


def _strip_sentinels(modinfo: str) -> str:
    # debug/buildinfo: the string is wrapped in 16-byte sentinels when long enough.
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        return modinfo[16:-16]
    return modinfo


class _Finder:
    """Finds ``marker`` across chunk boundaries, then keeps what follows until ``complete``."""

    def __init__(self, marker: bytes, complete: Callable[[bytearray], bool]) -> None:
        self.marker = marker
        self.complete = complete
        self.tail = b""
        self.buf: bytearray | None = None
        self.done = False

    def feed(self, chunk: bytes) -> None:
        if self.done:
            return
        if self.buf is None:
            window = self.tail + chunk
            index = window.find(self.marker)
            if index < 0:
                self.tail = window[-(len(self.marker) - 1) :]
                return
            self.buf = bytearray(window[index:])
        else:
            self.buf += chunk
        if self.complete(self.buf) or len(self.buf) >= _MAX_CAPTURE:
            self.done = True


def _header_complete(buf: bytearray) -> bool:
    if len(buf) < _HEADER:
        return False
    return not buf[15] & _FLAG_INLINE or _inline_strings(buf) is not None


def reduce_executable(chunks: Iterator[bytes]) -> bytes | None:
    """The walker-kept record of an executable: Go version and module info, or ``None``."""
    first = next(chunks, b"")
    if not first.startswith(_ELF):
        return None
    header = _Finder(_MAGIC, _header_complete)
    legacy = _Finder(_SENTINEL_START, lambda buf: buf.find(_SENTINEL_END, 16) >= 0)
    chunk = first
    while True:
        header.feed(chunk)
        legacy.feed(chunk)
        if header.done and header.buf is not None:
            if header.buf[15] & _FLAG_INLINE or legacy.done:
                break  # everything needed is in hand: the walker skips the rest
        next_chunk = next(chunks, None)
        if next_chunk is None:
            break
        chunk = next_chunk
    if header.buf is None or len(header.buf) < _HEADER:
        return None
    go_version: str | None = None
    modinfo: str | None = None
    if header.buf[15] & _FLAG_INLINE:
        strings = _inline_strings(header.buf)
        if strings is None:
            _logger.debug("go build info truncated or over %s bytes", _MAX_CAPTURE)
            return None
        go_version, modinfo = strings[0], _strip_sentinels(strings[1])
    elif legacy.buf is not None:
        end = legacy.buf.find(_SENTINEL_END, 16)
        if end > 0:
            modinfo = bytes(legacy.buf[16:end]).decode("utf-8", "replace")
    record = {"go": go_version, "mod": modinfo}
    return RECORD + json.dumps(record, separators=(",", ":")).encode()


def parse_modinfo(modinfo: str) -> list[tuple[str, str, bool]]:
    """``(module path, version, is_main)``; a replaced module is reported as its replacement.

    A replacement by a local directory has no version: the original path is kept with the
    version ``(devel)``, the code being whatever that directory held.
    """
    modules: list[tuple[str, str, bool]] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind in ("mod", "dep") and len(fields) >= 2:
            version = fields[2] if len(fields) >= 3 and fields[2] else _DEVEL
            modules.append((fields[1], version, kind == "mod"))
        elif kind == "=>" and len(fields) >= 2 and modules:
            path, _version, main = modules[-1]
            target = fields[1]
            local = target.startswith((".", "/")) or len(fields) < 3 or fields[2] in ("", _DEVEL)
            modules[-1] = (path, _DEVEL, main) if local else (target, fields[2], main)
    return modules


def _package(name: str, version: str, path: str, view: ImageView, extractor: str) -> Package:
    namespace, _, bare = name.rpartition("/")
    devel = version == _DEVEL
    return Package(
        name=name,
        # OSV's Go ecosystem writes versions without the module system's "v".
        version=version if devel else version.removeprefix("v"),
        type="golang",
        purl=language_purl("golang", namespace or None, bare, None if devel else version),
        extractor=extractor,
        layer=view.layer_of(path),
        location=f"/{path}",
    )


class GoBinaryExtractor:
    """Modules compiled into Go executables, and the Go standard library's version."""

    name: Final = "go-binary"
    version: Final = 1

    def required(self, path: str) -> bool:
        """Nothing whole: executables are reduced while streamed (see :meth:`sniff`)."""
        return False

    def sniff(self, path: str, mode: int, size: int) -> Reducer | None:
        """Every executable regular file big enough to be an ELF program."""
        if mode & 0o111 and size >= 64:
            return reduce_executable
        return None

    def extract(self, view: ImageView, os_info: OSInfo | None) -> Extracted:
        """The main module, its dependencies and ``stdlib`` of every Go executable."""
        packages: list[Package] = []
        for path, record in reduced_records(view, RECORD, self.name):
            go_version, modinfo = record.get("go"), record.get("mod")
            if isinstance(go_version, str) and go_version.startswith("go"):
                version = go_version.split()[0].removeprefix("go")
                packages.append(
                    Package(
                        name="stdlib",
                        version=version,
                        type="golang",
                        purl=language_purl("golang", None, "stdlib", f"v{version}"),
                        extractor=self.name,
                        layer=view.layer_of(path),
                        location=f"/{path}",
                    )
                )
            if isinstance(modinfo, str):
                for module, version, _main in parse_modinfo(modinfo):
                    packages.append(_package(module, version, path, view, self.name))
        return Extracted(packages=tuple(packages))


__all__ = ["RECORD", "GoBinaryExtractor", "parse_modinfo", "reduce_executable"]
