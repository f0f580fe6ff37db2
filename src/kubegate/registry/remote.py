"""Images in a registry: :func:`open_remote` and the :class:`RemoteSource` blob source.

Called by :func:`kubegate.registry.open_image` for registry references; the HTTP work is
:class:`~kubegate.registry.client.RegistryClient`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from kubegate.models import Descriptor, Digest, ImageRef
from kubegate.registry.client import RegistryClient
from kubegate.registry.image import Image, assemble_image


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """Manifests and blobs of one repository, fetched through ``client``."""

    client: RegistryClient
    ref: ImageRef
    where: str

    def fetch_manifest(self, digest: Digest) -> tuple[bytes, str | None]:
        data, content_type, _ = self.client.fetch_manifest(self.ref, digest, where=self.where)
        return data, content_type

    def open_chunks(
        self, descriptor: Descriptor
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        return self.client.open_blob(self.ref, descriptor, where=self.where)


def open_remote(ref: ImageRef, client: RegistryClient) -> Image:
    """Fetch the top-level manifest (by digest when the reference has one) and assemble."""
    where = str(ref)
    data, content_type, digest = client.fetch_manifest(
        ref, ref.digest or ref.tag or "latest", where=where
    )
    source = RemoteSource(client=client, ref=ref, where=where)
    return assemble_image(where, digest, data, content_type, source, client.options)
