"""A judged revision as a Flux OCI artifact, in the format ``flux push artifact`` writes.

Read from fluxcd/pkg ``oci`` (``push.go``, ``globals.go``, ``constants.go``, ``meta.go``) and
go-containerregistry (``pkg/v1/mutate/image.go``, ``pkg/v1/config.go``, ``pkg/v1/manifest.go``),
which Flux builds the artifact with: an OCI image manifest (``schemaVersion`` 2, ``mediaType``
``application/vnd.oci.image.manifest.v1+json``) whose config, of media type
``application/vnd.cncf.flux.config.v1+json``, is go-containerregistry's empty image config with
``created`` set, one ``history`` entry and one ``rootfs.diff_ids`` entry per layer; its first
layer is the tarball (``application/vnd.cncf.flux.content.v1.tar+gzip``); its annotations are
``org.opencontainers.image.created`` (RFC 3339, UTC, seconds), ``.source`` and ``.revision``.
JSON is compact, struct fields in Go's declaration order, map keys sorted (``encoding/json``).

kubegate adds a second layer, ``application/vnd.kubegate.report.v1+json`` (the JSON report of the
scan that approved it), and two annotations, ``dev.kubegate.verdict`` and
``dev.kubegate.db.updated``. source-controller extracts the first layer unless an
OCIRepository's ``layerSelector`` says otherwise, so Flux sees exactly the judged tree.

Called by :func:`kubegate.publish.publisher.publish_result`; pushed by
:mod:`kubegate.publish.push`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubegate.models import Descriptor, Digest
from kubegate.registry.verify import sha256_digest as sha256

MANIFEST_MEDIA_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE: Final = "application/vnd.cncf.flux.config.v1+json"
CONTENT_MEDIA_TYPE: Final = "application/vnd.cncf.flux.content.v1.tar+gzip"
REPORT_MEDIA_TYPE: Final = "application/vnd.kubegate.report.v1+json"

CREATED_ANNOTATION: Final = "org.opencontainers.image.created"
SOURCE_ANNOTATION: Final = "org.opencontainers.image.source"
REVISION_ANNOTATION: Final = "org.opencontainers.image.revision"
VERDICT_ANNOTATION: Final = "dev.kubegate.verdict"
DB_UPDATED_ANNOTATION: Final = "dev.kubegate.db.updated"

#: go-containerregistry marshals an unset ``v1.Time`` (an embedded ``time.Time``) like this.
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes to upload and the descriptor the manifest gives them."""

    descriptor: Descriptor
    data: bytes


@dataclass(frozen=True, slots=True)
class Artifact:
    """Everything one push sends: the blobs, then the manifest (its digest names the artifact)."""

    manifest: bytes
    digest: Digest
    config: Blob
    layers: tuple[Blob, ...]
    annotations: Mapping[str, str]

    @property
    def content(self) -> Blob:
        """The tarball layer."""
        return self.layers[0]


def rfc3339(moment: dt.datetime) -> str:
    """``2006-01-02T15:04:05Z``: Go's ``time.RFC3339`` of a UTC time, whole seconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def build_artifact(
    *,
    tarball: bytes,
    tar: bytes,
    report: bytes,
    source: str,
    revision: str,
    created: dt.datetime,
    extra: Mapping[str, str],
    tarball_digest: Digest | None = None,
) -> Artifact:
    """The manifest, config and layers of one artifact.

    ``tar`` is the uncompressed tarball (the layer's diff ID); ``extra`` are kubegate's own
    annotations. ``source`` and ``revision`` are always written: ``flux pull artifact`` needs
    both. ``tarball_digest``, when the caller has it already, spares hashing the tarball again.
    """
    when = rfc3339(created)
    digest = tarball_digest or sha256(tarball)
    content = Blob(Descriptor(CONTENT_MEDIA_TYPE, digest, len(tarball)), tarball)
    report_blob = Blob(Descriptor(REPORT_MEDIA_TYPE, sha256(report), len(report)), report)
    # go-containerregistry's ConfigFile field order: architecture, created, history, os,
    # rootfs, config; a static (uncompressed) layer's diff ID is its digest.
    config_document = {
        "architecture": "",
        "created": when,
        "history": [{"created": _GO_ZERO_TIME}, {"created": _GO_ZERO_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar), report_blob.descriptor.digest]},
        "config": {},
    }
    config_data = _compact(config_document)
    config = Blob(Descriptor(CONFIG_MEDIA_TYPE, sha256(config_data), len(config_data)), config_data)
    annotations = dict(sorted({
        CREATED_ANNOTATION: when,
        SOURCE_ANNOTATION: source,
        REVISION_ANNOTATION: revision,
        **extra,
    }.items()))  # fmt: skip
    manifest_document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": _descriptor(config.descriptor),
        "layers": [_descriptor(content.descriptor), _descriptor(report_blob.descriptor)],
        "annotations": annotations,
    }
    manifest = _compact(manifest_document)
    return Artifact(manifest, sha256(manifest), config, (content, report_blob), annotations)


def _descriptor(descriptor: Descriptor) -> dict[str, Any]:
    # v1.Descriptor field order: mediaType, size, digest.
    return {
        "mediaType": descriptor.media_type,
        "size": descriptor.size,
        "digest": descriptor.digest,
    }
