"""Package URLs (purl-spec) for OS packages, built with packageurl-python.

Called by the OS package extractors; the ``distro`` qualifier follows the purl-spec examples
(``distro=debian-12``, ``distro=alpine-3.19.1``) and Trivy's output.
"""

from __future__ import annotations

import functools

from packageurl import PackageURL

from kubegate.models import OSInfo


def distro_qualifier(os_info: OSInfo | None) -> str | None:
    """``debian-12``, ``ubuntu-22.04``, ``alpine-3.19.1`` (``None`` when the OS is unknown)."""
    if os_info is None:
        return None
    return f"{os_info.id}-{os_info.version_id}" if os_info.version_id else os_info.id


# Pure functions of hashable arguments; packageurl's normalisation is slow and the same
# packages come back for every image sharing a base layer (400 packages x 60 images per scan).
@functools.lru_cache(maxsize=16384)
def os_purl(
    kind: str, namespace: str, name: str, version: str, arch: str | None, os_info: OSInfo | None
) -> str:
    """``pkg:KIND/NAMESPACE/NAME@VERSION?arch=...&distro=...``."""
    qualifiers: dict[str, str] = {}
    if arch:
        qualifiers["arch"] = arch
    distro = distro_qualifier(os_info)
    if distro:
        qualifiers["distro"] = distro
    text: str = PackageURL(
        type=kind, namespace=namespace, name=name, version=version, qualifiers=qualifiers
    ).to_string()
    return text


@functools.lru_cache(maxsize=16384)
def language_purl(kind: str, namespace: str | None, name: str, version: str | None) -> str:
    """``pkg:KIND/NAMESPACE/NAME@VERSION`` for language packages (no qualifiers)."""
    text: str = PackageURL(
        type=kind, namespace=namespace or None, name=name, version=version or None
    ).to_string()
    return text
