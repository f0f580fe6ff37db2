"""The one pipeline shared by the CLI commands and (later) the in-cluster controller.

Data flows one way (DESIGN.md section 1). :class:`ImageInspector` takes an image reference to
its digest, selected platforms and their package inventories (registry -> inventory, with the
per-layer / per-image caches); :func:`match_image` turns inventories into findings against the
advisory database. ``kubegate image`` runs them for one reference; ``kubegate scan`` for every
image a rendered revision would run.

Warm path: a tag is always resolved anew (one ``HEAD``; tag -> digest is never cached across
runs), but the platform manifests an image digest selects and their inventories are cached, so a
warm run makes no other request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO

from kubegate.errors import KubegateError
from kubegate.images import ImagePath, ImageScan, find_images
from kubegate.inventory import ImageInventory, InventoryCache, inventory_image
from kubegate.match.matcher import Matcher
from kubegate.models import (
    Descriptor,
    Digest,
    Finding,
    ImageRef,
    NotSeen,
    Problem,
    SourceInfo,
)
from kubegate.reference import parse_reference
from kubegate.registry import RegistryClient, is_local_reference, open_image
from kubegate.render import render
from kubegate.source import SourceSpec, open_source

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlatformInventory:
    """One platform of an image: its own manifest digest and what is installed."""

    platform: str
    manifest_digest: Digest
    inventory: ImageInventory


@dataclass(frozen=True, slots=True)
class InspectedImage:
    """An image reference resolved to a digest and inventoried on every selected platform."""

    #: The reference as reported: canonical (``docker.io/library/nginx:1.21.0``) or local.
    reference: str
    #: The top-level manifest or index digest: what was scanned and what gets pinned.
    digest: Digest
    platforms: tuple[PlatformInventory, ...]
    #: The local image (``imageSources``) that stood in for a registry reference, if any.
    substituted: str | None = None
    #: Whether everything came from the caches (only the tag was resolved).
    warm: bool = False

    @property
    def os(self) -> str | None:
        """``"debian 10"`` from the first platform that knows its OS."""
        for platform in self.platforms:
            os_info = platform.inventory.os
            if os_info is not None:
                return f"{os_info.id} {os_info.version_id or ''}".strip()
        return None


@dataclass(frozen=True, slots=True)
class ImageMatch:
    """Findings of every platform of one image, and what could not be matched."""

    findings: tuple[Finding, ...]
    #: Base ecosystems the verdict relied on (checked against ``--db-max-age``).
    ecosystems: tuple[str, ...]
    #: One line per package that could not be matched (the image is then unproven).
    problems: tuple[str, ...] = ()


@dataclass
class ImageInspector:
    """Resolve and inventory images; safe to call from several threads at once."""

    client: RegistryClient
    cache: InventoryCache | None
    #: Canonical reference -> local image (config ``imageSources``), used instead of a pull.
    image_sources: Mapping[str, str] = field(default_factory=dict)
    #: Layers walked at once per image (None: the inventory's default).
    workers: int | None = None

    def inspect(self, reference: str) -> InspectedImage:
        """Resolve ``reference`` to a digest and inventory each selected platform."""
        if is_local_reference(reference):
            return self._inventory_all(reference, reference, substituted=None)
        ref = parse_reference(reference)
        canonical = str(ref)
        local = self.image_sources.get(canonical)
        if local is not None:
            _logger.info("%s: using the local image %s (imageSources)", canonical, local)
            return self._inventory_all(local, canonical, substituted=local)
        digest = self.client.resolve_digest(ref)
        warm = self._from_cache(canonical, digest)
        if warm is not None:
            return warm
        # Pull by the digest just resolved, so a tag moved meanwhile cannot swap the image.
        pinned = ImageRef(ref.registry, ref.repository, ref.tag, digest)
        return self._inventory_all(str(pinned), canonical, substituted=None)

    def _selection(self) -> str:
        return ",".join(sorted(str(p) for p in self.client.options.platforms)) or "linux/*"

    def _from_cache(self, canonical: str, digest: Digest) -> InspectedImage | None:
        if self.cache is None:
            return None
        selected = self.cache.get_platforms(digest, self._selection())
        if not selected:
            return None
        platforms: list[PlatformInventory] = []
        for platform, manifest_digest in selected:
            if self.cache.get_image(Digest(manifest_digest)) is None:
                return None
            inventory = inventory_image(
                Digest(manifest_digest), (), _no_blob, cache=self.cache, workers=self.workers
            )
            platforms.append(PlatformInventory(platform, Digest(manifest_digest), inventory))
        _logger.debug("%s@%s: inventory from the cache", canonical, digest)
        return InspectedImage(canonical, digest, tuple(platforms), warm=True)

    def _inventory_all(
        self, pull: str, reported: str, *, substituted: str | None
    ) -> InspectedImage:
        image = open_image(pull, self.client)
        platforms = tuple(
            PlatformInventory(
                str(platform.platform),
                platform.manifest_digest,
                inventory_image(
                    platform.manifest_digest,
                    platform.layers,
                    image.open_blob,
                    cache=self.cache,
                    workers=self.workers,
                ),
            )
            for platform in image.platforms
        )
        if self.cache is not None and substituted is None and not is_local_reference(pull):
            self.cache.put_platforms(
                image.digest,
                self._selection(),
                [[p.platform, p.manifest_digest] for p in platforms],
            )
        return InspectedImage(reported, image.digest, platforms, substituted=substituted)


def _no_blob(_: Descriptor) -> AbstractContextManager[BinaryIO]:
    # The per-image cache entry was just seen; inventory_image returns it without any blob.
    raise KubegateError("internal: a cached inventory asked for a blob")


def match_image(matcher: Matcher, image: InspectedImage) -> ImageMatch:
    """Match every platform's inventory; one finding per (package, flaw, platform)."""
    findings: list[Finding] = []
    ecosystems: dict[str, None] = {}
    problems: list[str] = []
    for platform in image.platforms:
        result = matcher.match(
            platform.inventory.packages, platform.inventory.os, platform=platform.platform
        )
        findings.extend(result.findings)
        ecosystems.update(dict.fromkeys(result.ecosystems))
        problems.extend(
            f"{platform.platform}: {skip.package.name} {skip.package.version}: {skip.reason}"
            for skip in result.problems
        )
    return ImageMatch(tuple(findings), tuple(ecosystems), tuple(problems))


@dataclass(frozen=True, slots=True)
class RevisionRequest:
    """Which revision to read and how to render it (the source and render options)."""

    source: SourceSpec
    path: str = ""
    kustomization: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    image_paths: tuple[ImagePath, ...] = ()


@dataclass(frozen=True, slots=True)
class Revision:
    """What a revision would run: image uses with provenance, what was not seen, problems."""

    info: SourceInfo
    images: ImageScan
    not_seen: tuple[NotSeen, ...]
    problems: tuple[Problem, ...]


def read_revision(request: RevisionRequest) -> Revision:
    """source -> render -> images, collecting every problem instead of stopping at the first."""
    with open_source(request.source) as checkout:
        checkout.resolve_path(request.path)
        result = render(
            checkout.root,
            request.path,
            kustomization=request.kustomization,
            variables=dict(request.variables),
        )
        images = find_images(result.objects, request.image_paths)
        info = checkout.info
    problems = sorted(
        (*result.problems, *images.problems),
        key=lambda p: (p.origin.file or "", p.origin.line or 0, p.message),
    )
    not_seen = sorted(
        result.not_seen,
        key=lambda n: (n.origin.file or "", n.origin.line or 0, n.kind, n.namespace or "", n.name),
    )
    return Revision(info, images, tuple(not_seen), tuple(problems))
