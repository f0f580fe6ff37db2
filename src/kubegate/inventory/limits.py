"""Bounds that keep a hostile layer from exhausting time, memory or disk.

Read by :mod:`kubegate.inventory.stream` (bytes, ratio) and :mod:`kubegate.inventory.walker`
(entries, file and header sizes); the caller of :func:`kubegate.inventory.inventory_image` may pass
its own :class:`InventoryLimits`.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class InventoryLimits:
    """Refuse a layer (``InventoryError``) as soon as one of these is exceeded."""

    #: Largest single file an extractor may read (checked on the tar header, before reading).
    max_file_bytes: int = 64 * MiB
    #: Uncompressed bytes of one layer (tar stream, headers included). isal inflates zeros at
    #: about 2 GB/s here: 8 GiB keeps even a low-ratio bomb's refusal near the 10 s budget.
    max_layer_bytes: int = 8 * GiB
    #: Tar entries of one layer.
    max_entries: int = 1_000_000
    #: Uncompressed / compressed bytes; real layers stay well under 20, zero-filled bombs are ~1000.
    max_ratio: float = 200.0
    #: The ratio is judged only past this many uncompressed bytes (tiny layers compress wildly).
    ratio_grace_bytes: int = 32 * MiB
    #: A PAX/GNU long-name header is held in memory by tarfile: bound it.
    max_header_bytes: int = 1 * MiB
