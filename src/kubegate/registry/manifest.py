"""Manifest media types and parsing of OCI / Docker schema2 manifests and indexes.

Pure functions over bytes, shared by the remote client (:mod:`kubegate.registry.client`) and the
local readers (:mod:`kubegate.registry.local`): they decide which document a byte string is,
refuse schema1 and unknown types with a clear message and turn JSON into descriptors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubegate.errors import RegistryError
from kubegate.models import Descriptor, Digest, Platform
from kubegate.registry.verify import split_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

#: The ``Accept`` header for manifest requests: without it distribution serves (or converts to)
#: a schema1 manifest.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One manifest named by an index, with its platform (None when the index gives none)."""

    descriptor: Descriptor
    platform: Platform | None


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """A single-platform image manifest: its config and layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...]


def load_json(data: bytes, *, where: str, what: str) -> Mapping[str, Any]:
    """Parse a JSON object or raise RegistryError."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{what} is not valid JSON: {exc}", where=where) from exc
    if not isinstance(document, dict):
        raise RegistryError(f"{what} is not a JSON object", where=where)
    return document


def media_type_of(data: bytes, content_type: str | None, *, where: str) -> str:
    """The media type of a manifest document: its own ``mediaType``, else the HTTP
    ``Content-Type``, else guessed from its shape (OCI allows omitting ``mediaType``)."""
    document = load_json(data, where=where, what="manifest")
    declared = document.get("mediaType")
    header = (content_type or "").split(";", 1)[0].strip().lower()
    if document.get("schemaVersion") == 1 or header in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise RegistryError(
            "Docker schema1 manifests are deprecated and not supported; push the image again "
            "with a current client (schema2 or OCI)",
            where=where,
        )
    if isinstance(declared, str) and declared:
        media_type = declared
    elif header and header not in ("application/json", "application/octet-stream", "text/plain"):
        media_type = header
    elif "manifests" in document:
        media_type = OCI_INDEX
    elif "config" in document and "layers" in document:
        media_type = OCI_MANIFEST
    else:
        media_type = header or "(none)"
    if media_type not in MANIFEST_TYPES | INDEX_TYPES:
        raise RegistryError(
            f"unsupported manifest media type {media_type[:120]!r} (not an OCI or Docker "
            "schema2 image manifest or index)",
            where=where,
        )
    return media_type


def _descriptor(raw: Any, *, where: str, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise RegistryError(f"{what} descriptor is not an object", where=where)
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise RegistryError(f"{what} descriptor lacks mediaType or digest", where=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(f"{what} descriptor has an invalid size", where=where)
    split_digest(digest, where=where)
    return Descriptor(media_type=media_type, digest=Digest(digest), size=size)


def parse_manifest(data: bytes, *, where: str) -> ImageManifest:
    """The config and layers of an OCI or Docker schema2 image manifest."""
    document = load_json(data, where=where, what="manifest")
    config = _descriptor(document.get("config"), where=where, what="config")
    if config.media_type not in CONFIG_TYPES:
        raise RegistryError(
            f"not a container image: config media type {config.media_type[:120]!r} "
            "(an OCI artifact such as a Helm chart or signature?)",
            where=where,
        )
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise RegistryError("manifest has no layers list", where=where)
    return ImageManifest(
        config=config,
        layers=tuple(_descriptor(layer, where=where, what="layer") for layer in layers),
    )


def parse_index(data: bytes, *, where: str) -> tuple[IndexEntry, ...]:
    """The entries of an OCI index or Docker manifest list."""
    document = load_json(data, where=where, what="index")
    manifests = document.get("manifests")
    if not isinstance(manifests, list):
        raise RegistryError("index has no manifests list", where=where)
    entries = []
    for raw in manifests:
        descriptor = _descriptor(raw, where=where, what="index entry")
        platform = None
        raw_platform = raw.get("platform")
        if isinstance(raw_platform, dict):
            os_name, arch = raw_platform.get("os"), raw_platform.get("architecture")
            variant = raw_platform.get("variant")
            if isinstance(os_name, str) and isinstance(arch, str):
                platform = Platform(
                    os=os_name,
                    architecture=arch,
                    variant=variant if isinstance(variant, str) and variant else None,
                )
        entries.append(IndexEntry(descriptor=descriptor, platform=platform))
    return tuple(entries)


def config_platform(config: Mapping[str, Any]) -> Platform:
    """The platform an image config declares (``unknown`` parts when it declares none)."""
    os_name, arch, variant = config.get("os"), config.get("architecture"), config.get("variant")
    return Platform(
        os=os_name if isinstance(os_name, str) and os_name else "unknown",
        architecture=arch if isinstance(arch, str) and arch else "unknown",
        variant=variant if isinstance(variant, str) and variant else None,
    )
