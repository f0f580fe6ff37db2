"""OCI registry client and local image readers (DESIGN.md section 1, ``registry/``).

The inventory and the scan pipeline call :func:`open_image` to get an :class:`Image` (top-level
digest, selected platforms with their configs and layers, verified blob streams) and
:meth:`RegistryClient.resolve_digest` to pin a tag. Module map: ``options`` (settings, platform
grammar), ``client`` (HTTP, auth, retries), ``auth`` (Docker config, challenges, token cache),
``transport`` (scheme and redirect policy), ``manifest`` (media types, parsing), ``image``
(``Image`` and its assembly), ``remote`` and ``local`` (the two kinds of blob source),
``verify`` (digest checks). Behaviour is documented in docs/registry.md.
"""

from __future__ import annotations

from kubegate.errors import RegistryError
from kubegate.images.reference import parse_reference
from kubegate.registry.auth import Credentials
from kubegate.registry.client import RegistryClient
from kubegate.registry.image import BlobSource, Image, PlatformImage
from kubegate.registry.local import open_docker_archive, open_oci
from kubegate.registry.options import PLATFORM_RULES, RegistryOptions, parse_platform
from kubegate.registry.remote import open_remote

__all__ = [
    "LOCAL_TRANSPORTS",
    "PLATFORM_RULES",
    "BlobSource",
    "Credentials",
    "Image",
    "PlatformImage",
    "RegistryClient",
    "RegistryOptions",
    "is_local_reference",
    "open_image",
    "parse_platform",
]

#: Prefixes of local image references (skopeo's transport names).
LOCAL_TRANSPORTS = ("oci:", "oci-archive:", "docker-archive:")


def is_local_reference(reference: str) -> bool:
    """Whether ``reference`` names a local image rather than a registry one."""
    return reference.startswith(LOCAL_TRANSPORTS)


def open_image(reference: str, client: RegistryClient) -> Image:
    """Open a registry reference or a local ``oci:``/``oci-archive:``/``docker-archive:`` image."""
    for prefix in LOCAL_TRANSPORTS:
        if reference.startswith(prefix):
            location = reference[len(prefix) :]
            if not location:
                raise RegistryError("missing path", where=reference)
            if prefix == "docker-archive:":
                return open_docker_archive(location, client.options)
            return open_oci(location, client.options, archive=prefix == "oci-archive:")
    return open_remote(parse_reference(reference), client)
