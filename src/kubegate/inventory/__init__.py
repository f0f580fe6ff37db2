"""Package inventory of container images (DESIGN.md section 1, ``inventory/``).

Public API, used by the scan pipeline and ``kubegate sbom``:

* :func:`inventory_image` -> :class:`ImageInventory` (os + packages of the final filesystem),
  :func:`cached_inventory` (the per-image cache alone, for warm scans);
* :func:`inventory_gap`: why an inventory proves nothing about its image (no layers, no OS and
  no package, an OS without its package database);
* :class:`InventoryCache` (per-layer and per-image SQLite cache) and :class:`InventoryLimits`.

Inside: ``stream`` (decompression with limits) -> ``walker`` (one streaming pass per layer) ->
``filesystem`` (merged view, whiteouts, links) -> the extractors listed in ``extractors``.
"""

from __future__ import annotations

from kubegate.inventory.cache import InventoryCache
from kubegate.inventory.coverage import inventory_gap
from kubegate.inventory.image import (
    BlobOpener,
    ImageInventory,
    cached_inventory,
    inventory_image,
)
from kubegate.inventory.limits import InventoryLimits

__all__ = [
    "BlobOpener",
    "ImageInventory",
    "InventoryCache",
    "InventoryLimits",
    "cached_inventory",
    "inventory_gap",
    "inventory_image",
]
