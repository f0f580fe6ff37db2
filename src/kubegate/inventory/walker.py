"""The streaming layer walker: one pass over one layer's tar, keeping only what extractors need.

Called by :mod:`kubegate.inventory.image` for each layer not in the cache. A layer is read once,
as a stream (never held in memory, never unpacked to disk); the walker records every entry's path
and kind (cheap, and needed to merge layers and follow links), and reads the content only of the
files an extractor's ``required(path)`` asks for. Hostile names (absolute, ``..``) and every
:class:`~kubegate.inventory.limits.InventoryLimits` bound are refused with ``InventoryError``.
"""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from kubegate.errors import InventoryError, KubegateError
from kubegate.inventory.limits import InventoryLimits
from kubegate.inventory.stream import LayerStream
from kubegate.models import Descriptor, Digest

_logger = logging.getLogger(__name__)

#: Bumped whenever what a walk records changes: it is part of every layer cache key.
WALKER_VERSION: Final = 1

FILE: Final = "file"
DIR: Final = "dir"
SYMLINK: Final = "symlink"
HARDLINK: Final = "hardlink"
WHITEOUT: Final = "whiteout"
OPAQUE: Final = "opaque"
OTHER: Final = "other"

_WHITEOUT_PREFIX: Final = ".wh."
_OPAQUE_NAME: Final = ".wh..wh..opq"
_TAR_BUFSIZE: Final = 256 * 1024
_HEADER_TYPES: Final = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One tar entry, path normalised (``etc/os-release``: no leading ``/`` or ``./``).

    ``target`` is a symlink's target as written or a hardlink's normalised path; ``data`` is the
    content of a file an extractor asked for (``None`` for every other file).
    """

    path: str
    kind: str
    target: str | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class LayerContent:
    """What one layer contributes to the final filesystem, in tar order."""

    digest: Digest
    entries: tuple[LayerEntry, ...]


def normalize(name: str, *, where: str) -> str:
    """A tar member name as a relative path; absolute names and ``..`` are refused."""
    if name.startswith("/"):
        raise InventoryError(f"tar entry with absolute path {name!r}", where=where)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InventoryError(f"tar entry with '..' in its path {name!r}", where=where)
    return "/".join(parts)


def _bounded_tarinfo(max_header_bytes: int) -> type[tarfile.TarInfo]:
    class _BoundedTarInfo(tarfile.TarInfo):
        # tarfile reads PAX and GNU long-name headers wholly into memory: bound them first.
        def _proc_member(self, tar: tarfile.TarFile) -> Any:
            if self.type in _HEADER_TYPES and self.size > max_header_bytes:
                raise InventoryError(
                    f"tar extended header of {self.size} bytes exceeds {max_header_bytes}"
                )
            return super()._proc_member(tar)  # type: ignore[misc]

    return _BoundedTarInfo


def walk_layer(
    descriptor: Descriptor,
    raw: BinaryIO,
    wanted: Callable[[str], bool],
    limits: InventoryLimits,
    *,
    extra: Collection[str] = (),
) -> LayerContent:
    """Stream ``raw`` (the compressed blob) once and record the layer's entries.

    ``wanted(path)`` selects the files whose content is read; ``extra`` adds exact paths (a
    second pass for a file reached only through a link). The blob is always read to EOF.
    """
    where = descriptor.digest
    stream = LayerStream(descriptor, raw, limits)
    entries: list[LayerEntry] = []
    try:
        with tarfile.open(
            fileobj=stream,
            mode="r|",
            bufsize=_TAR_BUFSIZE,
            tarinfo=_bounded_tarinfo(limits.max_header_bytes),
        ) as tar:
            for member in tar:
                if len(entries) >= limits.max_entries:
                    raise InventoryError(
                        f"layer has more than {limits.max_entries} entries", where=where
                    )
                entry = _entry(tar, member, wanted, extra, limits, where)
                if entry is not None:
                    entries.append(entry)
            end = tar.offset
        stream.finish()
        # A tar ends with zero blocks; without one the stream stopped early (zstd's reader, for
        # one, reports a cut frame as a clean EOF).
        if stream.produced < end + tarfile.BLOCKSIZE:
            raise InventoryError("layer is truncated (no end-of-archive marker)", where=where)
    except InventoryError as exc:
        if exc.where is None:
            exc.where = where
        raise
    except KubegateError:
        raise
    except (tarfile.TarError, EOFError) as exc:
        message = str(exc) or type(exc).__name__
        if "unexpected end" in message or isinstance(exc, EOFError):
            raise InventoryError("layer is truncated", where=where) from exc
        if message == "empty file":
            raise InventoryError("layer is truncated (no tar data)", where=where) from exc
        raise InventoryError(f"invalid tar: {message}", where=where) from exc
    _logger.debug(
        "walked layer %s: %s entries, %s bytes uncompressed", where, len(entries), stream.produced
    )
    return LayerContent(digest=descriptor.digest, entries=tuple(entries))


def _entry(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    wanted: Callable[[str], bool],
    extra: Collection[str],
    limits: InventoryLimits,
    where: str,
) -> LayerEntry | None:
    path = normalize(member.name, where=where)
    if not path:
        return None  # the root directory itself
    parent, _, base = path.rpartition("/")
    if base.startswith(_WHITEOUT_PREFIX):
        if base == _OPAQUE_NAME:
            return LayerEntry(parent, OPAQUE)
        if base.startswith(_WHITEOUT_PREFIX + _WHITEOUT_PREFIX):
            return None  # other AUFS metadata (.wh..wh.plnk, ...), meaningless to the image
        name = base[len(_WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise InventoryError(f"invalid whiteout {member.name!r}", where=where)
        return LayerEntry(f"{parent}/{name}" if parent else name, WHITEOUT)
    if member.issym():
        return LayerEntry(path, SYMLINK, target=member.linkname)
    if member.islnk():
        return LayerEntry(path, HARDLINK, target=normalize(member.linkname, where=where))
    if member.isdir():
        return LayerEntry(path, DIR)
    if not member.isreg():
        return LayerEntry(path, OTHER)
    if not (wanted(path) or path in extra):
        return LayerEntry(path, FILE)
    if member.size > limits.max_file_bytes:
        raise InventoryError(
            f"{path} is {member.size} bytes, over the {limits.max_file_bytes}-byte limit",
            where=where,
        )
    handle = tar.extractfile(member)
    data = handle.read() if handle is not None else b""
    if len(data) != member.size:
        raise InventoryError(f"{path}: layer is truncated", where=where)
    return LayerEntry(path, FILE, data=data)
