"""The streaming layer walker: one pass over one layer's tar, keeping only what extractors need.

Called by :mod:`kubegate.inventory.image` for each layer not in the cache. A layer is read once,
as a stream (never held in memory, never unpacked to disk); the walker records every entry's path
and kind (cheap, and needed to merge layers and follow links), and reads the content only of the
files an extractor's ``required(path)`` asks for. Hostile names (absolute, ``..``) and every
:class:`~kubegate.inventory.limits.InventoryLimits` bound are refused with ``InventoryError``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

from kubegate.errors import InventoryError
from kubegate.inventory import tar
from kubegate.inventory.limits import ImageBudget, InventoryLimits
from kubegate.inventory.stream import LayerStream
from kubegate.inventory.tar import Header, TarReader
from kubegate.models import Descriptor, Digest

_logger = logging.getLogger(__name__)

#: Bumped whenever what a walk records changes: it is part of every layer cache key.
WALKER_VERSION: Final = 3

FILE: Final = "file"
DIR: Final = "dir"
SYMLINK: Final = "symlink"
HARDLINK: Final = "hardlink"
WHITEOUT: Final = "whiteout"
OPAQUE: Final = "opaque"
OTHER: Final = "other"

#: Consumes a file's content as chunks (it may stop early) and returns the record to keep
#: (see :class:`kubegate.inventory.extractor.Sniffer`).
Reducer = Callable[[Iterator[bytes]], bytes | None]

#: Entries counted locally before the image's shared budget is charged (it takes a lock).
_CHARGE_EVERY: Final = 4096
_WHITEOUT_PREFIX: Final = ".wh."
_OPAQUE_NAME: Final = ".wh..wh..opq"


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
    """A tar member name as a relative path; absolute names and ``..`` are refused.

    The layer root itself becomes ``""`` however it is spelt: ``./`` (Docker) or ``/`` (umoci
    writes its first entry so; measured on bench/sbom.py's image), which is no escape.
    """
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") and parts:
        raise InventoryError(f"tar entry with absolute path {name!r}", where=where)
    if ".." in parts:
        raise InventoryError(f"tar entry with '..' in its path {name!r}", where=where)
    return "/".join(parts)


def walk_layer(
    descriptor: Descriptor,
    raw: BinaryIO,
    wanted: Callable[[str], bool],
    limits: InventoryLimits,
    *,
    extra: Collection[str] = (),
    cancel: threading.Event | None = None,
    sniff: Callable[[str, int, int], Reducer | None] | None = None,
    budget: ImageBudget | None = None,
) -> LayerContent:
    """Stream ``raw`` (the compressed blob) once and record the layer's entries.

    ``wanted(path)`` selects the files whose content is read; ``extra`` adds exact paths (a
    second pass for a file reached only through a link); ``cancel`` stops the walk early (another
    layer of the image was refused); ``budget`` is charged with the entries and the bytes kept,
    so that the image's layers together stay bounded. The blob is always read to EOF.
    """
    where = descriptor.digest
    entries: list[LayerEntry] = []
    try:
        stream = LayerStream(descriptor, raw, limits, cancel)
        reader = TarReader(stream, max_header_bytes=limits.max_header_bytes)
        count = 0
        for header in reader:
            count += 1
            if count > limits.max_entries:
                raise InventoryError(f"layer has more than {limits.max_entries} entries")
            if budget is not None and count % _CHARGE_EVERY == 0:
                budget.charge(entries=_CHARGE_EVERY)
            entry = _entry(reader, header, wanted, extra, limits, where, sniff, budget)
            if entry is not None:
                entries.append(entry)
        if budget is not None:
            budget.charge(entries=count % _CHARGE_EVERY)
        if count == 0 and not reader.ended:
            raise InventoryError("layer is truncated (no tar data)")
        if not reader.ended and not stream.proves_end:
            # zstd's reader, for one, reports a cut frame as a clean EOF: the missing
            # end-of-archive block is what shows it. A complete gzip stream may lack it: umoci's
            # `insert` (Debian bookworm's 0.4.7) never closed its tar writer
            # (opencontainers/umoci#436); Go's archive/tar, hence Trivy, accepts such layers.
            raise InventoryError("layer is truncated (no end-of-archive marker)")
        stream.finish()
    except InventoryError as exc:
        if exc.where is None:
            exc.where = where
        raise
    _logger.debug(
        "walked layer %s: %s entries, %s bytes uncompressed", where, len(entries), stream.produced
    )
    return LayerContent(digest=descriptor.digest, entries=tuple(entries))


def _entry(
    reader: TarReader,
    header: Header,
    wanted: Callable[[str], bool],
    extra: Collection[str],
    limits: InventoryLimits,
    where: str,
    sniff: Callable[[str, int, int], Reducer | None] | None = None,
    budget: ImageBudget | None = None,
) -> LayerEntry | None:
    path = normalize(header.name, where=where)
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
            raise InventoryError(f"invalid whiteout {header.name!r}", where=where)
        return LayerEntry(f"{parent}/{name}" if parent else name, WHITEOUT)
    kind = header.type
    if kind == tar.SYMLINK:
        return LayerEntry(path, SYMLINK, target=header.linkname)
    if kind == tar.HARDLINK:
        return LayerEntry(path, HARDLINK, target=normalize(header.linkname, where=where))
    if kind == tar.DIRECTORY:
        return LayerEntry(path, DIR)
    if kind not in tar.REGULAR:
        return LayerEntry(path, OTHER)
    if not (wanted(path) or path in extra):
        reducer = sniff(path, header.mode, header.size) if sniff is not None else None
        if reducer is None:
            return LayerEntry(path, FILE)
        # What the reducer leaves unread is skipped by the reader with the member's padding.
        reduced = reducer(reader.iter_data(header.size))
        if budget is not None and reduced is not None:
            budget.charge(captured=len(reduced))
        return LayerEntry(path, FILE, data=reduced)
    if header.size > limits.max_file_bytes:
        raise InventoryError(
            f"{path} is {header.size} bytes, over the {limits.max_file_bytes}-byte limit",
            where=where,
        )
    if budget is not None:
        # Charged from the header, before reading: the refusal comes before the memory is used.
        budget.charge(captured=header.size)
    return LayerEntry(path, FILE, data=reader.read_data(header.size))
