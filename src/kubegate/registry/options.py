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

_PLATFORM = re.compile(r"([a-z0-9_]+)/([a-z0-9_]+)(?:/([a-z0-9_.]+))?")


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
    """Parse ``os/arch[/variant]`` (``linux/arm64/v8``) as ``--platform`` takes it."""
    match = _PLATFORM.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(
            f"invalid platform {text!r} (expected os/arch[/variant], e.g. linux/arm64)",
            where="--platform",
        )
    os_name, arch, variant = match.groups()
    return Platform(os=os_name, architecture=arch, variant=variant)


def normalize_platform(platform: Platform) -> Platform:
    """Apply containerd's defaults so that ``linux/arm64`` equals ``linux/arm64/v8``."""
    arch, variant = platform.architecture, platform.variant
    aliases = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}
    arch = aliases.get(arch, arch)
    if arch == "arm64" and variant in (None, "", "8", "v8"):
        variant = "v8"
    elif arch == "arm" and variant in (None, "", "7", "v7"):
        variant = "v7"
    elif variant == "":
        variant = None
    return Platform(os=platform.os, architecture=arch, variant=variant)


def platform_matches(wanted: Platform, offered: Platform) -> bool:
    """Whether an index entry ``offered`` satisfies the requested ``wanted`` platform."""
    want, have = normalize_platform(wanted), normalize_platform(offered)
    if (want.os, want.architecture) != (have.os, have.architecture):
        return False
    # A request without variant accepts any variant (after the defaults above).
    return wanted.variant is None or want.variant == have.variant
