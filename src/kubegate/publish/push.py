"""Push an :class:`~kubegate.publish.artifact.Artifact` and move the tags, in a safe order.

Blobs first (each skipped when the repository holds it already), then the manifest under the
immutable per-revision tag, then the same manifest under the moving tag. Until that last
``PUT`` succeeds the moving tag still points at the previous approved revision: a registry that
fails in between leaves the cluster where it was. A per-revision tag that already holds the
same tree (a re-run, a restarted ``watch``) is reused as it is; one holding another tree is
refused, so a per-revision tag never changes meaning.

Uses :class:`kubegate.registry.RegistryClient`'s upload calls; called by
:func:`kubegate.publish.publisher.publish_result`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from kubegate.errors import PublishError, RegistryError
from kubegate.models import Digest
from kubegate.publish.artifact import MANIFEST_MEDIA_TYPE, Artifact
from kubegate.publish.target import PublishTarget
from kubegate.registry import RegistryClient

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pushed:
    """What the registry now holds: the manifest digest and both tags pointing at it."""

    digest: Digest
    revision_tag: str
    tag: str


def push_artifact(
    client: RegistryClient, target: PublishTarget, artifact: Artifact, revision_tag: str
) -> Pushed:
    """Upload ``artifact`` as ``revision_tag``, then point ``target.tag`` at it."""
    ref = target.repository
    where = f"{target.url}:{revision_tag}"
    try:
        existing = client.find_manifest(ref, revision_tag, where=where)
        if existing is not None:
            manifest, digest = existing
            if _content_digest(manifest) != artifact.content.descriptor.digest:
                raise PublishError(
                    f"tag {revision_tag} already holds another tree (tags per revision are never "
                    "moved); name another with --publish-tag",
                    where=where,
                )
            _logger.info("%s already holds this tree (%s); reusing it", where, digest)
        else:
            for blob in (*artifact.layers, artifact.config):
                client.upload_blob(ref, blob.data, where=where)
            manifest, digest = artifact.manifest, artifact.digest
            client.put_manifest(ref, revision_tag, manifest, MANIFEST_MEDIA_TYPE, where=where)
        client.put_manifest(
            ref, target.tag, manifest, MANIFEST_MEDIA_TYPE, where=f"{target.url}:{target.tag}"
        )
    except RegistryError as exc:
        raise PublishError(f"push failed: {exc.diagnostics()}", where=str(target)) from exc
    return Pushed(digest, revision_tag, target.tag)


def _content_digest(manifest: bytes) -> str | None:
    try:
        document = json.loads(manifest)
        return str(document["layers"][0]["digest"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
