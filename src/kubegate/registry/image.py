"""The :class:`Image` the inventory reads, however it was obtained, and its assembly.

An image is its top-level document (manifest or index, whose digest is what gets pinned), the
platforms selected from it and a :class:`BlobSource` that streams blobs: the remote client
(:mod:`kubegate.registry.client`) and the local readers (:mod:`kubegate.registry.local`) each
implement ``BlobSource``; :func:`assemble_image` turns the top-level bytes into an ``Image`` the
same way for both, so platform selection, limits and digest checks cannot diverge.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from kubegate.errors import RegistryError
from kubegate.models import Descriptor, Digest, Platform
from kubegate.registry.manifest import (
    INDEX_TYPES,
    IndexEntry,
    config_platform,
    load_json,
    media_type_of,
    parse_index,
    parse_manifest,
)
from kubegate.registry.options import (
    RegistryOptions,
    compatible_platforms,
    normalize_platform,
    platform_matches,
)
from kubegate.registry.verify import VerifyingReader, check_digest, read_limited

_logger = logging.getLogger(__name__)

#: Platform of attestation manifests (BuildKit provenance/SBOM) inside indexes.
_ATTESTATION = Platform(os="unknown", architecture="unknown")


class BlobSource(Protocol):
    """Where the documents and blobs of one image come from (a registry or a local file)."""

    def fetch_manifest(self, digest: Digest) -> tuple[bytes, str | None]:
        """The bytes (digest-verified, size-limited) and content type of a manifest."""
        ...

    def open_chunks(
        self, descriptor: Descriptor
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """Stream the raw bytes of a blob (verification is the caller's)."""
        ...


@dataclass(frozen=True, slots=True)
class PlatformImage:
    """One platform of an image: its manifest, parsed config and layers (in order)."""

    platform: Platform
    manifest_digest: Digest
    config: Descriptor
    config_json: Mapping[str, Any]
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class Image:
    """An image as the inventory sees it: identity, selected platforms and blob access.

    ``reference`` is the canonical reference as reported (``str(ImageRef)`` for a registry,
    ``oci:PATH:TAG`` etc. for local images); ``digest`` the top-level manifest or index digest.
    """

    reference: str
    digest: Digest
    media_type: str
    platforms: tuple[PlatformImage, ...]
    _source: BlobSource = field(repr=False, compare=False)

    @contextlib.contextmanager
    def open_blob(self, desc: Descriptor, *, drain: bool = True) -> Iterator[BinaryIO]:
        """Stream a blob; ``read()`` raises RegistryError on a size or digest mismatch.

        With ``drain`` (the default), leaving the ``with`` block normally reads whatever the
        consumer left unread (a tar reader stops before the archive's padding) and verifies it,
        raising RegistryError there: no blob passes unverified. ``drain=False`` is for consumers
        that deliberately read only a prefix and trust nothing they read.
        """
        with self._source.open_chunks(desc) as chunks:
            raw = VerifyingReader(chunks, desc, where=self.reference)
            with io.BufferedReader(raw, buffer_size=1 << 16) as reader:
                yield reader
                if drain:
                    raw.drain()


def read_small_blob(
    source: BlobSource, desc: Descriptor, limit: int, *, where: str, what: str
) -> bytes:
    """Read a small blob (an image config) whole, size-limited and digest-verified."""
    if desc.size > limit:
        raise RegistryError(
            f"{what} of {desc.size} bytes exceeds the {limit}-byte limit", where=where
        )
    with source.open_chunks(desc) as chunks:
        data = read_limited(chunks, desc.size, where=where, what=what)
    if len(data) != desc.size:
        raise RegistryError(f"{what} is {len(data)} bytes, expected {desc.size}", where=where)
    check_digest(data, desc.digest, where=where, what=what)
    return data


def assemble_image(
    reference: str,
    digest: Digest,
    data: bytes,
    content_type: str | None,
    source: BlobSource,
    options: RegistryOptions,
) -> Image:
    """Build an :class:`Image` from its verified top-level document."""
    media_type = media_type_of(data, content_type, where=reference)
    if media_type in INDEX_TYPES:
        platforms = _index_platforms(reference, parse_index(data, where=reference), source, options)
    else:
        platforms = (_from_manifest(reference, digest, data, None, source, options),)
    return Image(
        reference=reference,
        digest=digest,
        media_type=media_type,
        platforms=platforms,
        _source=source,
    )


def _index_platforms(
    reference: str, entries: tuple[IndexEntry, ...], source: BlobSource, options: RegistryOptions
) -> tuple[PlatformImage, ...]:
    """The images of the selected entries; every requested platform must get one.

    The entries are those the nodes of ``options.platforms`` pull, in that order, else every
    linux one. An entry without a platform is a candidate too (containerd's images.Manifest
    keeps such entries, after the ones whose platform matches, and judges them by their
    config): its config decides, in :func:`_platform_image`.
    """
    pulled = _pulled(entries, options.platforms, where=reference)
    chosen = dict.fromkeys(pulled.values()) if pulled else _linux_entries(entries, reference)
    images = {entry: _platform_image(reference, entry, source, options) for entry in chosen}
    for wanted, entry in pulled.items():
        # The entry a node of that platform pulls may lack a platform and name another in its
        # config: then that node pulls nothing, and the request is not met.
        image = images[entry]
        if image is None or (entry.platform is None and not _runs_on(image.config_json, (wanted,))):
            raise RegistryError(_no_platform(entries, wanted), where=reference)
    found = tuple(image for image in images.values() if image is not None)
    if not found:
        raise RegistryError(_no_platform(entries), where=reference)
    return found


def _linux_entries(entries: tuple[IndexEntry, ...], where: str) -> tuple[IndexEntry, ...]:
    """Every entry a linux node may pull (no platform was requested)."""
    # Normalised as containerd does before it matches (``os: "Linux"`` is pulled by a linux
    # node, so it is scanned); attestation manifests say unknown/unknown.
    chosen = tuple(
        entry
        for entry in entries
        if entry.platform is None
        or (normalize_platform(entry.platform).os == "linux" and entry.platform != _ATTESTATION)
    )
    if not chosen:
        raise RegistryError(_no_platform(entries), where=where)
    return chosen


def _pulled(
    entries: tuple[IndexEntry, ...], platforms: Sequence[Platform], *, where: str
) -> dict[Platform, IndexEntry]:
    """Each requested platform -> the entry its nodes pull; an error when one pulls none."""
    pulled: dict[Platform, IndexEntry] = {}
    for wanted in platforms:
        match = _pulled_by(wanted, entries)
        if match is None:
            raise RegistryError(_no_platform(entries, wanted), where=where)
        pulled[wanted] = match
    return pulled


def _no_platform(entries: tuple[IndexEntry, ...], wanted: Platform | None = None) -> str:
    offered = ", ".join(sorted({str(e.platform) for e in entries if e.platform})) or "none"
    if wanted is not None:
        return f"platform {wanted} not in index (offers: {offered})"
    return f"index has no linux platform (offers: {offered})"


def _pulled_by(wanted: Platform, entries: tuple[IndexEntry, ...]) -> IndexEntry | None:
    """The entry a node of platform ``wanted`` pulls: containerd keeps the entries its
    ``platforms.Only`` matcher accepts and takes the first of the most preferred platform
    (images.Manifest sorts them stably by preference)."""
    offered = [(entry, normalize_platform(entry.platform)) for entry in entries if entry.platform]
    for candidate in compatible_platforms(wanted):
        for entry, platform in offered:
            if platform == candidate and entry.platform != _ATTESTATION:
                return entry
    # Entries without a platform sort last, and only the first is tried (its config decides).
    return next((entry for entry in entries if entry.platform is None), None)


def _platform_image(
    reference: str, entry: IndexEntry, source: BlobSource, options: RegistryOptions
) -> PlatformImage | None:
    """The image of one index entry; ``None`` for an entry without a platform whose config
    says a node of the selected platforms would not run it."""
    digest = entry.descriptor.digest
    if entry.descriptor.size > options.max_manifest_bytes:
        raise RegistryError(
            f"manifest {digest} of {entry.descriptor.size} bytes exceeds the "
            f"{options.max_manifest_bytes}-byte limit",
            where=reference,
        )
    data, content_type = source.fetch_manifest(digest)
    media_type = media_type_of(data, content_type or entry.descriptor.media_type, where=reference)
    if media_type in INDEX_TYPES:
        raise RegistryError(
            f"nested index {digest} inside an index is not supported", where=reference
        )
    image = _from_manifest(reference, digest, data, entry.platform, source, options)
    if entry.platform is None and not _runs_on(image.config_json, options.platforms):
        _logger.debug(
            "%s: entry %s without platform is %s: skipped", reference, digest, image.platform
        )
        return None
    return image


def _runs_on(config: Mapping[str, Any], platforms: tuple[Platform, ...]) -> bool:
    """Whether nodes of one of ``platforms`` (none: any linux node) run an image of this
    config (containerd normalises the config's os/architecture, an empty os being the
    node's own: ``linux``)."""
    os_name, arch = config.get("os"), config.get("architecture")
    declared = normalize_platform(
        Platform(
            os=os_name if isinstance(os_name, str) else "",
            architecture=arch if isinstance(arch, str) else "",
        )
    )
    if not platforms:
        return declared.os == "linux" and bool(declared.architecture)
    return any(platform_matches(wanted, declared) for wanted in platforms)


def _from_manifest(
    reference: str,
    digest: Digest,
    data: bytes,
    platform: Platform | None,
    source: BlobSource,
    options: RegistryOptions,
) -> PlatformImage:
    manifest = parse_manifest(data, where=reference)
    config_bytes = read_small_blob(
        source, manifest.config, options.max_manifest_bytes, where=reference, what="image config"
    )
    config_json = load_json(config_bytes, where=reference, what="image config")
    declared = config_platform(config_json)
    if platform is None:
        platform = declared
    else:
        # Reported as the index spells it; compared as containerd normalises both.
        said, has = normalize_platform(platform), normalize_platform(declared)
        if (said.os, said.architecture) != (has.os, has.architecture):
            _logger.debug(
                "%s: index says %s but config of %s says %s", reference, platform, digest, declared
            )
    if options.platforms and not any(platform_matches(w, platform) for w in options.platforms):
        # A single-platform image is scanned as what it is; the caller sees its platform.
        _logger.info("%s: single-platform image is %s, not the requested one", reference, platform)
    return PlatformImage(
        platform=platform,
        manifest_digest=digest,
        config=manifest.config,
        config_json=config_json,
        layers=manifest.layers,
    )
