"""Settings of the registry client and the ``os/arch[/variant]`` platform grammar.

Built by the CLI (``--platform``, ``--ca-file``, ``--insecure-registry``) and by tests; read by
:mod:`kubegate.registry.client` (transport, limits) and :mod:`kubegate.registry.image` (platform
selection).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubegate.errors import UsageError
from kubegate.models import Platform
from kubegate.registry.auth import Credentials
from kubegate.transfer import DEFAULT_IDLE_TIMEOUT, RetryBudget, TransferLimits

#: Manifests, indexes, image configs and archive metadata larger than this are refused (the same
#: 4 MiB bound distribution and containerd apply to manifests).
DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024

#: Names the rules by which an index's entries are selected; part of the key under which a
#: selection is cached (kubegate.scan), so that a cache written under older rules (which
#: skipped ``os: "Linux"`` and entries without a platform) is not trusted by a warm run.
PLATFORM_RULES = "containerd-normalize-1"
_PLATFORM = re.compile(r"([a-z0-9_]+)/([a-z0-9_-]+)(?:/([a-z0-9_.]+))?")
#: ``uname -m`` names of 32-bit arm, accepted in ``--platform`` only.
_UNAME_ARM = {"armv7l": "v7", "armv6l": "v6", "armv5l": "v5"}


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How the client reaches registries and which platforms of an index it selects.

    ``platforms`` empty means every ``linux/*`` platform of an index (attestation manifests,
    platform ``unknown/unknown``, are always skipped). ``retries`` counts extra attempts after the
    first one; ``max_retry_after`` bounds any wait a server asks for with ``Retry-After``.
    ``max_concurrency`` bounds the requests (and open blob streams) per registry host.
    ``timeout`` is the idle timeout (connect, and between two bytes); ``limits`` adds the
    minimum rate and the command's deadline; ``retry_budget`` bounds the retries of the whole
    command (all of them share it, :mod:`kubegate.transfer`).
    """

    ca_file: Path | None = None
    insecure_registries: frozenset[str] = frozenset()
    platforms: tuple[Platform, ...] = ()
    timeout: float = DEFAULT_IDLE_TIMEOUT
    limits: TransferLimits = field(default_factory=TransferLimits)
    retry_budget: RetryBudget = field(default_factory=RetryBudget, compare=False)
    retries: int = 3
    backoff: float = 0.25
    max_retry_after: float = 10.0
    max_concurrency: int = 4
    docker_config: Path | None = None
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    max_redirects: int = 5
    user_agent: str = "kubegate"
    #: Canonical registry -> mirror ``host[:port]`` (``--registry-mirror docker.io=HOST``): every
    #: request for that registry goes to the mirror; reports keep the canonical reference.
    mirrors: Mapping[str, str] = field(default_factory=dict)
    #: Registry host -> credentials given on the command line (``--username/--password-stdin``);
    #: they win over the Docker config for that host and are sent to no other.
    credentials: Mapping[str, Credentials] = field(default_factory=dict, repr=False)

    def docker_config_path(self) -> Path:
        """The Docker config file to read credentials from (it need not exist)."""
        if self.docker_config is not None:
            return self.docker_config
        configured = os.environ.get("DOCKER_CONFIG")
        if configured:
            return Path(configured) / "config.json"
        return Path.home() / ".docker" / "config.json"


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (``linux/arm64/v8``) as ``--platform`` takes it.

    Kept as spelt (lower-cased); matching normalises it (:func:`normalize_platform`).

    Beyond containerd's aliases (:func:`normalize_platform`), the ``uname -m`` names
    ``armv7l``/``armv6l`` are accepted here, for what a user types only: an index entry
    spelled so is not one containerd would pull, so it is never matched by that name.
    """
    match = _PLATFORM.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(
            f"invalid platform {text!r} (expected os/arch[/variant], e.g. linux/arm64)",
            where="--platform",
        )
    os_name, arch, variant = match.groups()
    if arch in _UNAME_ARM and variant is None:
        arch, variant = "arm", _UNAME_ARM[arch]
    return Platform(os=os_name, architecture=arch, variant=variant)


def normalize_platform(platform: Platform) -> Platform:
    """The platform as containerd normalises it before matching.

    containerd/platforms ``Normalize`` (database.go ``normalizeOS``/``normalizeArch``): case
    folded; an empty OS is the node's own (``linux`` for the nodes kubegate gates); ``macos`` is
    ``darwin``; ``x86_64``/``x86-64`` are ``amd64`` (variant ``v1`` dropped); ``aarch64`` is
    ``arm64`` (variant ``8``/``v8``/``v8.0`` dropped, ``9``/``9.0``/``v9.0`` -> ``v9``);
    ``armhf`` is ``arm/v7``, ``armel`` ``arm/v6``; ``arm`` without variant (or ``7``) is
    ``arm/v7``, ``5``/``6``/``8`` gain their ``v``; ``i386`` is ``386``.
    """
    os_name = platform.os.lower() or "linux"
    if os_name == "macos":
        os_name = "darwin"
    arch, variant = platform.architecture.lower(), (platform.variant or "").lower()
    if arch == "i386":
        arch, variant = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        variant = "" if variant == "v1" else variant
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return Platform(os=os_name, architecture=arch, variant=variant or None)


def compatible_platforms(wanted: Platform) -> tuple[Platform, ...]:
    """What a node of platform ``wanted`` accepts, most preferred first (normalised).

    containerd's CRI plugin pulls with ``platforms.Only(platform)`` (compare.go
    ``platformVector``): an amd64/vN node also runs lower amd64 variants, then 386; an arm/vN
    node lower arm variants down to v5; an arm64 node arm64, then arm/v8 down to arm/v5. The
    entry of an index a node pulls is the first one matching the most preferred platform.
    """
    wanted = normalize_platform(wanted)
    os_name, arch = wanted.os, wanted.architecture
    if arch == "amd64":
        level = _variant_number(wanted.variant)
        vector = [wanted]
        if level is not None and level > 1:
            vector = [Platform(os_name, "amd64", f"v{n}") for n in range(level, 0, -1)]
        vector.append(Platform(os_name, "386"))
    elif arch == "arm":
        level = _variant_number(wanted.variant)
        if level is None or level <= 5:
            vector = [wanted]
        else:
            vector = [Platform(os_name, "arm", f"v{n}") for n in range(level, 4, -1)]
    elif arch == "arm64":
        variant = wanted.variant or "v8"
        if variant not in _ARM64_VERSIONS:
            return ()  # containerd's vector is empty too: such a node pulls nothing
        vector = _arm64_vector(os_name, variant)
        vector.extend(compatible_platforms(Platform(os_name, "arm", "v8")))
    else:
        vector = [wanted]
    return tuple(dict.fromkeys(normalize_platform(p) for p in vector))


def _variant_number(variant: str | None) -> int | None:
    text = (variant or "").removeprefix("v")
    return int(text) if text.isdigit() else None


#: arm64 variant -> (major, highest minor) pairs it runs (containerd compare.go
#: ``arm64variantToVersion``): v9.x also runs v8.(x+5), capped at v8.9.
_ARM64_VERSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    **{f"v8.{minor}": ((8, minor),) for minor in range(10)},
    "v8": ((8, 0),),
    "v9": ((9, 0), (8, 5)),
    **{f"v9.{minor}": ((9, minor), (8, min(minor + 5, 9))) for minor in range(8)},
}


def _arm64_vector(os_name: str, variant: str) -> list[Platform]:
    return [
        Platform(os_name, "arm64", f"v{major}.{minor}" if minor else f"v{major}")
        for major, top in _ARM64_VERSIONS[variant]
        for minor in range(top, -1, -1)
    ]


def platform_matches(wanted: Platform, offered: Platform) -> bool:
    """Whether a node of platform ``wanted`` would run an image of platform ``offered``."""
    return normalize_platform(offered) in compatible_platforms(wanted)
