"""Frozen data shared by every stage of the pipeline.

This module imports nothing else of kubegate: each stage builds these values and hands them on
(source -> render -> images -> registry -> inventory -> match -> policy -> report).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, NewType

#: ``sha256:<64 hex>`` (or ``sha512:<128 hex>``): a content digest as the OCI spec writes it.
Digest = NewType("Digest", str)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised image reference (Docker reference grammar).

    ``registry`` is the canonical host (``docker.io`` for Docker Hub), ``repository`` the path
    (``library/nginx``). Tag and digest are both kept when both are given: the digest decides
    what is pulled, the tag is kept for humans.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where the files of a revision came from, as reported to the user."""

    kind: Literal["dir", "git", "artifact"]
    location: str
    revision: str | None = None
    #: For git: what ``--ref`` named (``branch``, ``tag``, ``commit`` or another ``ref``) and the
    #: commit checked out; ``kubegate scan --publish`` names its per-revision tag from them.
    ref_kind: Literal["branch", "tag", "commit", "ref"] | None = None
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was declared: a path relative to the source root and a 1-based line."""

    file: str | None
    line: int | None = None

    @property
    def where(self) -> str | None:
        """How messages name it: ``file:line``, the file alone without a line, None without a
        file."""
        if self.file is None:
            return None
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One container of one workload that would run ``ref``, with its provenance."""

    ref: ImageRef
    origin: Origin
    kind: str
    namespace: str | None
    name: str
    container: str
    container_type: Literal["containers", "initContainers", "ephemeralContainers", "other"] = (
        "containers"
    )
    #: ``namespace/name`` of the Flux Kustomization that renders it, if any.
    kustomization: str | None = None
    #: The reference as written before kustomize ``images:`` overrides or substitution.
    declared: str | None = None
    #: Source-relative directory of the Flux cluster rendering it (None: one implicit cluster).
    cluster: str | None = None
    #: ``namespace/name`` of the HelmRelease whose chart renders it, if any.
    helm_release: str | None = None
    #: The chart that HelmRelease rendered (None: not from a chart).
    chart: ChartInfo | None = None


@dataclass(frozen=True, slots=True)
class ChartInfo:
    """A Helm chart as rendered: its name and version, the digest of its archive, where from."""

    name: str
    version: str
    #: ``sha256:<hex>`` of the chart archive (None for a chart read from a directory).
    digest: str | None
    #: Where it came from: a repository URL (credentials stripped) or a source-relative path.
    source: str


@dataclass(frozen=True, slots=True)
class NotSeen:
    """Something the revision would deploy that kubegate cannot look inside (yet)."""

    kind: str
    namespace: str | None
    name: str
    origin: Origin
    reason: str
    #: Source-relative directory of the Flux cluster it belongs to (None: one implicit cluster).
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """An error found while reading a revision, kept so that one run reports all of them."""

    message: str
    origin: Origin = field(default_factory=lambda: Origin(None))
    #: Source-relative directory of the Flux cluster it was found in (None: not cluster-bound).
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteBase:
    """A remote kustomize resource fetched with ``--allow-remote-bases`` (the verdict covers it)."""

    url: str
    #: ``sha256:<hex>`` of the bytes fetched and rendered.
    digest: str
    #: The kustomization file (and its field) that names it.
    origin: Origin
    field: str


@dataclass(frozen=True, slots=True)
class OSInfo:
    """The operating system of an image, from ``os-release`` or distro marker files."""

    id: str
    version_id: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package as an extractor found it in the image's final filesystem.

    ``version`` is the full version as the package database states it (epoch included).
    ``source_name``/``source_version`` are what distro advisories name (dpkg ``Source:``, apk
    origin, source rpm); they default to the binary's own.
    """

    name: str
    version: str
    #: Package type as in purls: ``deb``, ``apk``, ``rpm``, ``pypi``, ``npm``, ``golang``, ...
    type: str
    purl: str
    #: The extractor that found it (``dpkg``, ``apk``, ...).
    extractor: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    #: Digest of the layer whose content introduced this version of the package.
    layer: Digest | None = None
    #: Path (inside the image) of the database or file it was read from.
    location: str | None = None
    #: A language package whose files belong to an OS package: not matched against language feeds.
    os_owned: bool = False
    #: A package in a distro database whose vendor is not the distro.
    third_party: bool = False
    #: Files the package owns (absolute paths inside the image), used for ownership.
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform (``linux/arm64/v8``)."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob."""

    media_type: str
    digest: Digest
    size: int


class Severity(enum.IntEnum):
    """Severities in blocking order (Trivy's names); comparisons follow the order."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


@dataclass(frozen=True, slots=True)
class CVSS:
    """A CVSS vector as published and the base score computed from it."""

    vector: str
    score: float


@dataclass(frozen=True, slots=True)
class Finding:
    """One flaw in one package (of one platform of an image).

    ``id`` is the flaw: its CVE, or the advisory's own id when it names no CVE. ``record_ids`` are
    every matched advisory record that speaks of it (a DSA, DEBIAN-CVE-..., a GHSA); findings
    never span packages and never merge two CVEs.
    """

    id: str
    record_ids: tuple[str, ...]
    aliases: tuple[str, ...]
    severity: Severity
    #: Which source decided the severity (``debian``, ``ubuntu``, ``ghsa``, ``nvd``, ...).
    severity_source: str
    package: Package
    #: The release-qualified OSV ecosystem the package was matched in (``Debian:12``).
    ecosystem: str
    fixed_versions: tuple[str, ...] = ()
    cvss: CVSS | None = None
    title: str | None = None
    platform: str | None = None

    @property
    def fixable(self) -> bool:
        """Whether any matched record names a fixed version."""
        return bool(self.fixed_versions)
