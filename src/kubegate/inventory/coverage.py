"""Whether an inventory can vouch for an image at all, before any advisory is looked at.

Called by :func:`kubegate.scan.match_image` for every platform of an image. An inventory with
nothing in it matches no advisory, so it would pass: an image with no layers, one layer holding
only a static binary with no build information, or an image whose os-release names a distro
while that distro's package database is absent (deleted, whited out, a dangling link, or never
there: a "slimmed" image). Each is *not proven* (exit 2) with the reason returned here; a user
who knows the image accepts it with a ``notSeen`` exception of kind ``Image``
(docs/config.md), never silently.
"""

from __future__ import annotations

from typing import Final

from kubegate.inventory.image import ImageInventory
from kubegate.models import OSInfo

#: os-release ``ID``/``ID_LIKE`` values -> the package type their package manager records.
_FAMILIES: Final[dict[str, str]] = {
    **dict.fromkeys(("debian", "ubuntu"), "deb"),
    **dict.fromkeys(("alpine", "wolfi", "chainguard"), "apk"),
    **dict.fromkeys(
        (
            "rhel",
            "centos",
            "fedora",
            "almalinux",
            "rocky",
            "ol",
            "amzn",
            "suse",
            "opensuse",
            "opensuse-leap",
            "opensuse-tumbleweed",
            "sles",
            "mariner",
            "azurelinux",
            "photon",
        ),
        "rpm",
    ),
}
#: The database each package type is read from, for the message.
_DATABASES: Final = {
    "deb": "dpkg (/var/lib/dpkg/status or status.d/)",
    "apk": "apk (/lib/apk/db/installed)",
    "rpm": "rpm (/var/lib/rpm or /usr/lib/sysimage/rpm)",
}


def package_type_of(os_info: OSInfo) -> str | None:
    """The package type the OS's own package manager records (``deb`` for Debian and
    derivatives), or ``None`` for an OS kubegate knows no package manager of."""
    for name in (os_info.id, *os_info.id_like):
        found = _FAMILIES.get(name.lower())
        if found is not None:
            return found
    return None


def inventory_gap(inventory: ImageInventory) -> str | None:
    """Why ``inventory`` proves nothing about its image, or ``None`` when it can be judged."""
    if not inventory.layers:
        return "the image has no layers: nothing to inventory"
    os_info = inventory.os
    if os_info is None:
        if not inventory.packages:
            return (
                "no operating system and no package found (a static binary or an empty "
                "image?): nothing to match against advisories"
            )
        return None
    expected = package_type_of(os_info)
    if expected is not None and not any(p.type == expected for p in inventory.packages):
        release = f"{os_info.id} {os_info.version_id or ''}".strip()
        return (
            f"{release} image without any {expected} package: its {_DATABASES[expected]} "
            "database is absent, removed by a whiteout or a dangling link"
        )
    return None
