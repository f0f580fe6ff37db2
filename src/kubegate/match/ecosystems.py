"""Which OSV ecosystem, package name and version an inventoried package is matched under.

Called by :class:`kubegate.match.matcher.Matcher` for every package. Encodes OSV.md's table:
distro packages are matched by their **source** name and version in the release-qualified
ecosystem (never an unqualified ``Debian``), language packages by their own name in the
language feed. OS-owned language packages skip the language feeds (the distro backports fixes)
and third-party packages in a distro database skip the distro's advisories.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubegate.models import OSInfo, Package
from kubegate.vulndb.records import base_ecosystem, index_ecosystem, normalise_name

#: purl type -> OSV ecosystem of the language feeds.
LANGUAGE_ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "maven": "Maven",
    "gem": "RubyGems",
    "cargo": "crates.io",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
}
_DISTRO_TYPES = frozenset({"deb", "apk", "rpm"})
_UBUNTU_RELEASE = re.compile(r"^\d{2}\.\d{2}")
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")
_MAJOR = re.compile(r"^(\d+)")


@dataclass(frozen=True, slots=True)
class MatchTarget:
    """How one package is looked up: the ecosystem, name and version advisories use."""

    #: Release-qualified OSV ecosystem reported with findings (``Debian:12``).
    ecosystem: str
    #: The database index key for it (variant suffixes stripped).
    index_ecosystem: str
    name: str
    version: str
    distro: bool

    @property
    def base(self) -> str:
        """The base ecosystem (``Debian``) whose freshness the scan depends on."""
        return base_ecosystem(self.ecosystem)


@dataclass(frozen=True, slots=True)
class Skip:
    """A package not matched, and why; ``problem`` means the scan cannot prove it clean."""

    package: Package
    reason: str
    problem: bool


def _distro_ecosystem(package: Package, os_info: OSInfo | None) -> str | Skip:
    if os_info is None:
        return Skip(package, "no operating system identified for a distro package", True)
    version = os_info.version_id or ""
    os_id = os_info.id
    if package.type == "deb" and os_id == "debian":
        major = _MAJOR.match(version)
        if major:
            return f"Debian:{major.group(1)}"
    elif package.type == "deb" and os_id == "ubuntu":
        release = _UBUNTU_RELEASE.match(version)
        if release:
            return f"Ubuntu:{release.group(0)}"
    elif package.type == "apk" and os_id == "alpine":
        minor = _MAJOR_MINOR.match(version)
        if minor:
            return f"Alpine:v{minor.group(1)}.{minor.group(2)}"
    elif package.type == "apk" and os_id in {"wolfi", "chainguard"}:
        return "Wolfi" if os_id == "wolfi" else "Chainguard"
    elif package.type == "rpm" and os_id in {"rhel", "almalinux", "rocky"}:
        major = _MAJOR.match(version)
        if major:
            prefix = {"rhel": "Red Hat:enterprise_linux", "almalinux": "AlmaLinux"}.get(
                os_id, "Rocky Linux"
            )
            return f"{prefix}:{major.group(1)}"
    elif package.type == "rpm" and os_id == "opensuse-leap" and version:
        return f"openSUSE:Leap {version}"
    else:
        return Skip(package, f"no advisory feed for {package.type} packages on {os_id}", True)
    # Never fall back to the unqualified ecosystem: it mixes every release (OSV.md mistake 2).
    return Skip(package, f"{os_id} release {version or '(none)'} cannot be mapped to a feed", True)


def target_for(package: Package, os_info: OSInfo | None) -> MatchTarget | Skip:
    """The lookup for ``package`` on ``os_info``, or why it is not matched."""
    if package.type in _DISTRO_TYPES:
        if package.third_party:
            return Skip(package, "third-party package: not covered by distro advisories", False)
        ecosystem = _distro_ecosystem(package, os_info)
        if isinstance(ecosystem, Skip):
            return ecosystem
        # Red Hat names binary rpms in its advisories; every other distro names the source.
        by_source = not ecosystem.startswith("Red Hat")
        name = (package.source_name or package.name) if by_source else package.name
        version = (package.source_version or package.version) if by_source else package.version
        return MatchTarget(
            ecosystem, index_ecosystem(ecosystem), normalise_name(ecosystem, name), version, True
        )
    ecosystem = LANGUAGE_ECOSYSTEMS.get(package.type, "")
    if not ecosystem:
        return Skip(package, f"no advisory feed for {package.type} packages", True)
    if package.os_owned:
        return Skip(package, "owned by an OS package: the distro's advisories cover it", False)
    return MatchTarget(
        ecosystem, ecosystem, normalise_name(ecosystem, package.name), package.version, False
    )
