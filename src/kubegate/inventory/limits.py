"""Bounds that keep a hostile image or layer from exhausting time, memory or disk.

Read by :mod:`kubegate.inventory.stream` (bytes, ratio), :mod:`kubegate.inventory.walker`
(entries, file and header sizes, the image's :class:`ImageBudget`) and
:mod:`kubegate.inventory.image` (layers per image, repeated layers); the caller of
:func:`kubegate.inventory.inventory_image` may pass its own :class:`InventoryLimits`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kubegate.errors import InventoryError

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
    #: Layers of one image. Docker's engine refuses images of more than 127 layers (its
    #: overlay2 lower-directory limit); containerd has no fixed limit, hence the margin.
    max_layers: int = 500
    #: How often one layer digest may be listed in one image's manifest. A layer is walked
    #: once however often it is listed, but applied each time (a repeat may restore files an
    #: intermediate layer removed); measured before this bound: one 1.2 MB layer listed 5,000
    #: times took 4 minutes and 6.3 GB.
    max_layer_repeats: int = 8
    #: File content (and reduced records) kept in memory for the extractors, over every layer
    #: of one image: package databases, dpkg file lists, language metadata. Real images keep a
    #: few MB to a few tens of MB; 30 x 60 MB dpkg ``*.list`` files in a 28 MB layer cost 9.3 GB
    #: before this bound.
    max_captured_bytes: int = 256 * MiB
    #: Tar entries over every layer of one image (each is kept, ~200 bytes, to merge the
    #: layers); the largest real images hold a few hundred thousand.
    max_image_entries: int = 2_000_000


class ImageBudget:
    """What the walks of one image's layers have kept so far, refused past the limits.

    Shared by the threads walking the layers of one image (hence the lock); a layer taken
    from the cache is charged whole.
    """

    def __init__(self, limits: InventoryLimits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self.captured = 0
        self.entries = 0

    def charge(self, *, captured: int = 0, entries: int = 0) -> None:
        """Add to the totals; ``InventoryError`` once one exceeds its limit."""
        limits = self._limits
        with self._lock:
            self.captured += captured
            self.entries += entries
            captured_total, entries_total = self.captured, self.entries
        if captured_total > limits.max_captured_bytes:
            raise InventoryError(
                f"the image's package data (files kept for the extractors) exceeds "
                f"{limits.max_captured_bytes} bytes"
            )
        if entries_total > limits.max_image_entries:
            raise InventoryError(
                f"the image's layers have more than {limits.max_image_entries} entries in all"
            )
