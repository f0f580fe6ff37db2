"""Inventory of one image: layers walked (or taken from the cache), merged, extracted.

Called by the scan pipeline and ``kubegate sbom`` with the manifest's layer descriptors and a
blob opener from :mod:`kubegate.registry` (this package never imports it). Flow: image cache hit
-> done; else per-layer cache, walking the missing layers in parallel; merge into an
:class:`~kubegate.inventory.filesystem.ImageView`; run every extractor of
:data:`~kubegate.inventory.extractors.EXTRACTORS`; store the result.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from kubegate.errors import InventoryError, KubegateError
from kubegate.inventory.cache import InventoryCache, decode_packages, encode_packages
from kubegate.inventory.extractors import EXTRACTORS, SNIFFERS
from kubegate.inventory.filesystem import ImageView, Uncaptured
from kubegate.inventory.limits import ImageBudget, InventoryLimits
from kubegate.inventory.ownership import mark_os_owned
from kubegate.inventory.walker import LayerContent, Reducer, walk_layer
from kubegate.models import Descriptor, Digest, OSInfo, Package

_logger = logging.getLogger(__name__)

BlobOpener = Callable[[Descriptor], AbstractContextManager[BinaryIO]]

#: Threads, not processes: the blob opener (an HTTP stream) cannot be pickled into a worker
#: process, and piping the raw stream to one would add a copy of every byte. Decompression (isal,
#: zstandard) releases the GIL; header parsing (kubegate.inventory.tar) is a few microseconds per
#: entry. Measured by bench/inventory.py on the shared 2-core test machine (load ~4): two 75 MB
#: layers took 0.57 s with 1 thread and 0.57 s with 2 (best of 3; single runs ranged 0.79 vs
#: 0.98 s), and plain isal decompression of both overlapped no better. No gain measurable there,
#: no loss either, so the pool stays (cores that are idle will overlap the GIL-free inflate) but
#: is capped small, and callers that already run images in parallel (scan) can pass workers=1.
_MAX_WORKERS: Final = 4
#: A link may lead to a file the walker did not keep; each such file costs one more pass over
#: its layer. Hostile images cannot make this unbounded.
_MAX_EXTRA_PASSES: Final = 8
DEFAULT_LIMITS: Final = InventoryLimits()

#: Layers being walked right now in this process (scan inspects several images at once, and
#: images share base layers): a second image waits for the walk and takes the cached result
#: instead of downloading and walking the same layer again.
_walking: dict[Digest, threading.Event] = {}
_walking_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ImageInventory:
    """The packages of an image's final filesystem."""

    manifest_digest: Digest
    #: Layer digests, bottom first.
    layers: tuple[Digest, ...]
    os: OSInfo | None
    packages: tuple[Package, ...]
    #: ``"image"`` (whole inventory cached), ``"layers"`` (every layer cached) or ``"none"``.
    cache_hit: str = field(default="none", compare=False)


def _wanted(path: str) -> bool:
    return any(extractor.required(path) for extractor in EXTRACTORS)


def _sniff(path: str, mode: int, size: int) -> Reducer | None:
    for sniffer in SNIFFERS:
        reducer = sniffer.sniff(path, mode, size)
        if reducer is not None:
            return reducer
    return None


def _walk(
    descriptor: Descriptor,
    open_blob: BlobOpener,
    limits: InventoryLimits,
    extra: frozenset[str] = frozenset(),
    cancel: threading.Event | None = None,
    budget: ImageBudget | None = None,
) -> LayerContent:
    try:
        with open_blob(descriptor) as raw:
            return walk_layer(
                descriptor,
                raw,
                _wanted,
                limits,
                extra=extra,
                cancel=cancel,
                sniff=_sniff,
                budget=budget,
            )
    except KubegateError:
        raise
    except OSError as exc:
        raise InventoryError(f"layer cannot be read: {exc}", where=descriptor.digest) from exc


def _walk_all(
    missing: list[Descriptor],
    open_blob: BlobOpener,
    limits: InventoryLimits,
    workers: int | None,
    budget: ImageBudget,
) -> dict[Digest, LayerContent]:
    if workers is None:
        workers = min(os.cpu_count() or 1, _MAX_WORKERS)
    workers = max(1, min(len(missing), workers))
    if workers == 1:
        return {d.digest: _walk(d, open_blob, limits, budget=budget) for d in missing}
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubegate-layer") as pool:
        futures: dict[Future[LayerContent], Descriptor] = {
            pool.submit(
                _walk, descriptor, open_blob, limits, frozenset(), cancel, budget
            ): descriptor
            for descriptor in missing
        }
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [future for future in futures if future in done and future.exception()]
        if failed:
            # A refusal must come quickly: stop the other walks instead of finishing them.
            cancel.set()
            for future in futures:
                future.cancel()
            # The lowest failing layer, so the message does not depend on thread timing.
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
            failed = [f for f in failed if "another layer" not in str(f.exception())] or failed
            first = min(failed, key=lambda f: missing.index(futures[f]))
            error = first.exception()
            if error is not None:
                raise error
        return {futures[future].digest: future.result() for future in futures}


def cached_inventory(
    manifest_digest: Digest, cache: InventoryCache, layers: tuple[Digest, ...] = ()
) -> ImageInventory | None:
    """The image's inventory from the per-image cache alone, or ``None`` (missing, unreadable).

    A warm scan calls this directly: no layer list, no blob, one cache read per image.
    """
    cached = cache.get_image(manifest_digest)
    if cached is None:
        return None
    try:
        os_info, packages = decode_packages(cached)
    except (TypeError, KeyError, ValueError) as exc:
        _logger.warning("cached inventory of %s unreadable: %s", manifest_digest, exc)
        return None
    _logger.debug("inventory of %s from the image cache", manifest_digest)
    return ImageInventory(manifest_digest, layers, os_info, packages, "image")


def inventory_image(
    manifest_digest: Digest,
    layers: Sequence[Descriptor],
    open_blob: BlobOpener,
    *,
    cache: InventoryCache | None,
    limits: InventoryLimits = DEFAULT_LIMITS,
    workers: int | None = None,
) -> ImageInventory:
    """Inventory the final filesystem of the image whose layers are ``layers`` (bottom first).

    ``open_blob`` streams a layer's compressed blob; each opened blob is read to EOF (the
    registry verifies its digest then). Up to ``workers`` layers (default: one per core, at
    most 4) are walked at once. Raises :class:`InventoryError` on hostile, truncated or
    over-limit layers.
    """
    digests = tuple(layer.digest for layer in layers)
    _check_layer_list(digests, limits, manifest_digest)
    if cache is not None:
        whole = cached_inventory(manifest_digest, cache, digests)
        if whole is not None:
            return whole

    budget = ImageBudget(limits)
    contents: dict[Digest, LayerContent] = {}
    missing: list[Descriptor] = []
    listed: set[Digest] = set()
    for layer in layers:
        if layer.digest in listed:
            continue  # walked once, applied as often as listed
        listed.add(layer.digest)
        hit = cache.get_layer(layer.digest) if cache is not None else None
        if hit is not None:
            _charge(budget, hit, manifest_digest)
            contents[layer.digest] = hit
        else:
            missing.append(layer)
    all_cached = not missing
    if missing and cache is not None:
        missing = _share_walks(missing, contents, open_blob, cache, limits, workers, budget)
    if missing:
        _logger.debug("walking %s of %s layers of %s", len(missing), len(layers), manifest_digest)
        walked = _walk_all(missing, open_blob, limits, workers, budget)
        contents.update(walked)
        if cache is not None:
            for content in walked.values():
                cache.put_layer(content)

    os_info, packages = _extract(layers, contents, open_blob, cache, limits, manifest_digest)
    if cache is not None:
        cache.put_image(manifest_digest, encode_packages(os_info, packages))
    return ImageInventory(
        manifest_digest, digests, os_info, packages, "layers" if all_cached else "none"
    )


def _share_walks(
    missing: list[Descriptor],
    contents: dict[Digest, LayerContent],
    open_blob: BlobOpener,
    cache: InventoryCache,
    limits: InventoryLimits,
    workers: int | None,
    budget: ImageBudget,
) -> list[Descriptor]:
    """Walk the layers no other thread is walking, wait for the others and read them from the
    cache. Returns the layers still missing (another thread's walk failed: walk them here, so
    the error is this image's own)."""
    mine: dict[Digest, threading.Event] = {}
    theirs: list[tuple[Descriptor, threading.Event]] = []
    with _walking_lock:
        for layer in missing:
            event = _walking.get(layer.digest)
            if event is None:
                mine[layer.digest] = _walking[layer.digest] = threading.Event()
            else:
                theirs.append((layer, event))
    try:
        # Own walks first, waits after: a thread never waits while holding a claim (no cycle).
        if mine:
            walked = _walk_all(
                [m for m in missing if m.digest in mine], open_blob, limits, workers, budget
            )
            for content in walked.values():
                cache.put_layer(content)
            contents.update(walked)
    finally:
        with _walking_lock:
            for digest, event in mine.items():
                del _walking[digest]
                event.set()
    still: list[Descriptor] = []
    for layer, event in theirs:
        event.wait()
        hit = cache.get_layer(layer.digest)
        if hit is not None:
            _charge(budget, hit, layer.digest)
            contents[layer.digest] = hit
        else:
            still.append(layer)
    return still


def _check_layer_list(digests: tuple[Digest, ...], limits: InventoryLimits, where: str) -> None:
    """Refuse an image listing too many layers, or one layer too often, before any pull."""
    if len(digests) > limits.max_layers:
        raise InventoryError(
            f"the image has {len(digests)} layers, more than the {limits.max_layers} allowed",
            where=where,
        )
    counts = Counter(digests)
    if counts:
        digest, repeats = counts.most_common(1)[0]
        if repeats > limits.max_layer_repeats:
            raise InventoryError(
                f"layer {digest} is listed {repeats} times, more than the "
                f"{limits.max_layer_repeats} allowed",
                where=where,
            )


def _captured(content: LayerContent) -> int:
    return sum(len(entry.data) for entry in content.entries if entry.data is not None)


def _charge(budget: ImageBudget, content: LayerContent, where: str) -> None:
    """Charge a layer read from the cache whole (a walk charges as it goes)."""
    try:
        budget.charge(captured=_captured(content), entries=len(content.entries))
    except InventoryError as exc:
        exc.where = where
        raise


def _extract(
    layers: Sequence[Descriptor],
    contents: dict[Digest, LayerContent],
    open_blob: BlobOpener,
    cache: InventoryCache | None,
    limits: InventoryLimits,
    manifest_digest: Digest,
) -> tuple[OSInfo | None, tuple[Package, ...]]:
    extra: dict[int, set[str]] = {}
    for _ in range(_MAX_EXTRA_PASSES + 1):
        view = ImageView([contents[layer.digest] for layer in layers])
        try:
            return _run_extractors(view, manifest_digest)
        except Uncaptured as need:
            # A link led to a file the walker skipped: read that layer again, keeping it too.
            descriptor = layers[need.layer]
            paths = extra.setdefault(need.layer, set())
            if need.path in paths:
                raise InventoryError(
                    f"/{need.path} could not be read", where=descriptor.digest
                ) from None
            paths.add(need.path)
            kept = {e.path for e in contents[descriptor.digest].entries if e.data is not None}
            _logger.debug("second pass over %s for /%s", descriptor.digest, need.path)
            # The other layers stay in memory: the new walk gets what they leave of the budget.
            budget = ImageBudget(limits)
            for digest, other in contents.items():
                if digest != descriptor.digest:
                    _charge(budget, other, manifest_digest)
            content = _walk(descriptor, open_blob, limits, frozenset(paths | kept), budget=budget)
            contents[descriptor.digest] = content
            if cache is not None:
                cache.put_layer(content)
    raise InventoryError(
        f"more than {_MAX_EXTRA_PASSES} files reached only through links", where=manifest_digest
    )


def _run_extractors(
    view: ImageView, manifest_digest: Digest
) -> tuple[OSInfo | None, tuple[Package, ...]]:
    os_info: OSInfo | None = None
    packages: list[Package] = []
    for extractor in EXTRACTORS:
        try:
            found = extractor.extract(view, os_info)
        except InventoryError as exc:
            if exc.where is None:
                exc.where = manifest_digest
            raise
        if found.os is not None and os_info is None:
            os_info = found.os
        packages.extend(found.packages)
    packages = mark_os_owned(packages)
    packages.sort(key=lambda p: (p.type, p.name, p.arch or "", p.version, p.location or ""))
    return os_info, tuple(packages)
