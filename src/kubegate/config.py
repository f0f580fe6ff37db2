"""The ``kubegate.yaml`` configuration file: policy, registry, database, rendering (``helm:``,
``render:``, ``sources:``), image sources and publishing.

Found with ``--config FILE``, else as ``kubegate.yaml`` in the user config directory
(:func:`user_config_dir`, ``$XDG_CONFIG_HOME/kubegate``), or at the root of ``--config-ref``;
never implicitly from the working directory, which may be the revision being judged
(``kubegate.trust`` refuses an explicit file inside it). Relative paths in it are relative to the
file's own directory. Command line flags override it; the CLI merges the two. Every key is
validated: an unknown key, a wrong type or a missing file is a
:class:`~kubegate.errors.ConfigError` (exit 3) naming the file and the key. Documented in
docs/config.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from kubegate.errors import ConfigError, KubegateError, UsageError
from kubegate.images.reference import parse_reference
from kubegate.textfile import parse_yaml, read_text

DEFAULT_NAME = "kubegate.yaml"
_MAX_BYTES = 1024 * 1024
_LOCAL_PREFIXES = ("oci:", "oci-archive:", "docker-archive:")


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """``policy:``; None means "not set here" so flags and defaults decide."""

    severity: str | None = None
    severity_threshold: str | None = None
    ignore_unfixed: bool | None = None
    fail_open: bool | None = None
    ignorefile: Path | None = None


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """``registry:``."""

    insecure_registries: tuple[str, ...] = ()
    ca_file: Path | None = None
    platforms: tuple[str, ...] = ()
    #: Registries images may come from (empty: any); others block before any pull.
    allowed_registries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DBConfig:
    """``db:``: where the advisory database lives and local sources that update it."""

    path: Path | None = None
    max_age: str | None = None
    #: Local OSV zips/directories imported before each scan; they are the update (no network).
    sources: tuple[Path, ...] = ()
    #: ``db.nvdSource``: NVD feeds URL or directory (else derived, docs/db.md).
    nvd_source: str | None = None
    #: ``db.debianTrackerSource``: the Debian tracker JSON's URL or file.
    debian_tracker_source: str | None = None


@dataclass(frozen=True, slots=True)
class RenderConfig:
    """``render:``: how the judged revision is rendered."""

    #: Fetch remote kustomize resources instead of refusing them (``--allow-remote-bases``).
    allow_remote_bases: bool | None = None


@dataclass(frozen=True, slots=True)
class HelmConfig:
    """``helm:``: how HelmReleases are rendered offline (docs/config.md); None: not set here."""

    #: The helm binary (relative to the file's directory); None: ``helm`` on PATH.
    path: Path | None = None
    #: ``--kube-version`` (validated by :func:`parse_kube_version`).
    kube_version: str | None = None
    #: ``--api-versions`` (validated by :func:`parse_api_versions`).
    api_versions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """``publish:``: where ``scan``/``watch`` push passing revisions (docs/publish.md)."""

    #: ``oci://HOST/REPO[:TAG]``.
    url: str | None = None
    #: ``org.opencontainers.image.source`` when the revision has no Git URL.
    source: str | None = None
    pin: bool | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole file (every section optional)."""

    path: Path | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    db: DBConfig = field(default_factory=DBConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    helm: HelmConfig = field(default_factory=HelmConfig)
    #: Canonical image reference -> local image (``oci:PATH[:TAG]``, ...), for air-gapped use.
    image_sources: Mapping[str, str] = field(default_factory=dict)
    #: GitRepository ``NS/NAME`` -> ``DIR|GIT-URL[@REF]`` (``--source``; relative DIRs resolved).
    sources: Mapping[str, str] = field(default_factory=dict)
    publish: PublishConfig = field(default_factory=PublishConfig)

    def named_paths(self) -> tuple[tuple[str, Path], ...]:
        """``(key, path)`` of every file or directory the configuration makes kubegate read.

        For a local image source ``oci:PATH:TAG`` every prefix before a ``:`` is listed, since
        which one is the path is decided when the image is opened.
        """
        paths: list[tuple[str, Path]] = []
        if self.policy.ignorefile is not None:
            paths.append(("policy.ignorefile", self.policy.ignorefile))
        if self.registry.ca_file is not None:
            paths.append(("registry.caFile", self.registry.ca_file))
        if self.db.path is not None:
            paths.append(("db.path", self.db.path))
        if self.helm.path is not None:
            # The binary that renders charts: a revision must not bring its own.
            paths.append(("helm.path", self.helm.path))
        paths.extend(("db.import", source) for source in self.db.sources)
        paths.extend(
            (f"sources[{key}]", Path(target.rsplit("@", 1)[0]))
            for key, target in self.sources.items()
            if "://" not in target
        )
        for key, text in (
            ("db.nvdSource", self.db.nvd_source),
            ("db.debianTrackerSource", self.db.debian_tracker_source),
        ):
            if text is not None and "://" not in text:
                paths.append((key, Path(text)))
        for reference, target in self.image_sources.items():
            location = target.partition(":")[2]
            candidates = [location] + [
                location[:i] for i, char in enumerate(location) if char == ":" and i
            ]
            paths.extend((f"imageSources[{reference}]", Path(c)) for c in candidates)
        return tuple(paths)


def user_config_dir() -> Path:
    """Where the implicit ``kubegate.yaml`` and exceptions file live (``$XDG_CONFIG_HOME``)."""
    return Path(platformdirs.user_config_dir("kubegate"))


def find_config(explicit: Path | None, directory: Path) -> Config:
    """Load ``explicit`` (it must exist), else ``directory/kubegate.yaml`` if present, else
    defaults. ``directory`` is the user config dir or the ``--config-ref`` checkout, never the
    working directory.
    """
    if explicit is not None:
        return load_config(explicit)
    candidate = directory / DEFAULT_NAME
    # Anything by that name is read (and refused if it is not a small regular file).
    present = candidate.exists() or candidate.is_symlink()
    return load_config(candidate) if present else Config()


def load_config(path: Path) -> Config:
    """Parse and validate one configuration file."""
    where = str(path)
    text = read_text(path, _MAX_BYTES, "configuration file")
    document = parse_yaml(text, where)
    if document is None:
        document = {}
    base = path.resolve().parent
    top = _section(
        document,
        "",
        {"policy", "registry", "db", "render", "helm", "imageSources", "publish", "sources"},
        where,
    )
    return Config(
        path=path,
        policy=_policy(_section(top.get("policy"), "policy", _POLICY_KEYS, where), base, where),
        registry=_registry(
            _section(top.get("registry"), "registry", _REGISTRY_KEYS, where), base, where
        ),
        db=_db(_section(top.get("db"), "db", _DB_KEYS, where), base, where),
        render=RenderConfig(
            allow_remote_bases=_opt_bool(
                _section(top.get("render"), "render", {"allowRemoteBases"}, where).get(
                    "allowRemoteBases"
                ),
                "render.allowRemoteBases",
                where,
            )
        ),
        helm=_helm(_section(top.get("helm"), "helm", _HELM_KEYS, where), base, where),
        image_sources=_image_sources(top.get("imageSources"), base, where),
        sources=_git_sources(top.get("sources"), base, where),
        publish=_publish(_section(top.get("publish"), "publish", _PUBLISH_KEYS, where), where),
    )


_POLICY_KEYS = {"severity", "severityThreshold", "ignoreUnfixed", "failOpen", "ignorefile"}
_REGISTRY_KEYS = {"insecureRegistries", "caFile", "platforms", "allowedRegistries"}
_DB_KEYS = {"path", "maxAge", "import", "nvdSource", "debianTrackerSource"}
_PUBLISH_KEYS = {"url", "source", "pin"}
_HELM_KEYS = {"path", "kubeVersion", "apiVersions"}


def _section(value: Any, name: str, allowed: set[str], where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name or 'the document'} must be a mapping", where=where)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        prefix = f"{name}." if name else ""
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(allowed))})",
            where=where,
        )
    return value


def _policy(section: Mapping[str, Any], base: Path, where: str) -> PolicyConfig:
    severity = section.get("severity")
    if isinstance(severity, list):
        severity = ",".join(str(s) for s in severity)
    return PolicyConfig(
        severity=_opt_str(severity, "policy.severity", where),
        severity_threshold=_opt_str(
            section.get("severityThreshold"), "policy.severityThreshold", where
        ),
        ignore_unfixed=_opt_bool(section.get("ignoreUnfixed"), "policy.ignoreUnfixed", where),
        fail_open=_opt_bool(section.get("failOpen"), "policy.failOpen", where),
        ignorefile=_opt_path(section.get("ignorefile"), "policy.ignorefile", base, where),
    )


def _registry(section: Mapping[str, Any], base: Path, where: str) -> RegistryConfig:
    return RegistryConfig(
        insecure_registries=_str_list(
            section.get("insecureRegistries"), "registry.insecureRegistries", where
        ),
        ca_file=_opt_path(section.get("caFile"), "registry.caFile", base, where),
        platforms=_str_list(section.get("platforms"), "registry.platforms", where),
        allowed_registries=_str_list(
            section.get("allowedRegistries"), "registry.allowedRegistries", where
        ),
    )


def _db(section: Mapping[str, Any], base: Path, where: str) -> DBConfig:
    sources = tuple(base / p for p in _str_list(section.get("import"), "db.import", where))
    for source in sources:
        if not source.exists():
            raise ConfigError(f"db.import: no such file or directory {source}", where=where)
    return DBConfig(
        path=_opt_path(section.get("path"), "db.path", base, where),
        max_age=_opt_str(section.get("maxAge"), "db.maxAge", where),
        sources=sources,
        nvd_source=_local_or_url(section.get("nvdSource"), "db.nvdSource", base, where),
        debian_tracker_source=_local_or_url(
            section.get("debianTrackerSource"), "db.debianTrackerSource", base, where
        ),
    )


def _helm(section: Mapping[str, Any], base: Path, where: str) -> HelmConfig:
    kube_version = _opt_str(section.get("kubeVersion"), "helm.kubeVersion", where)
    api_versions = _str_list(section.get("apiVersions"), "helm.apiVersions", where)
    try:
        if kube_version is not None:
            kube_version = parse_kube_version(kube_version, option="helm.kubeVersion")
        api_versions = parse_api_versions(api_versions, option="helm.apiVersions")
    except UsageError as exc:
        raise ConfigError(exc.diagnostics(), where=where) from exc
    return HelmConfig(
        path=_opt_path(section.get("path"), "helm.path", base, where),
        kube_version=kube_version,
        api_versions=api_versions,
    )


#: What ``--kube-version`` takes: ``MAJOR.MINOR[.PATCH]``, an optional ``v``, a pre-release and
#: build suffix. Stricter than helm (k8s.io/apimachinery ``ParseGeneric`` ignores trailing
#: text, so ``1.35.0 junk`` passes there); every value accepted here is accepted by helm.
_KUBE_VERSION = re.compile(
    r"v?(?:0|[1-9][0-9]*)\.[0-9]+(?:\.[0-9]+)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
)
#: ``[GROUP/]VERSION[/Kind]`` as helm's ``--api-versions`` and ``.Capabilities.APIVersions.Has``
#: take them: a DNS-subdomain group, a Kubernetes API version (``v1``, ``v2beta1``).
_API_VERSION = re.compile(
    r"(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?"
    r"v[1-9][0-9]*(?:(?:alpha|beta)[1-9][0-9]*)?(?:/[A-Za-z][A-Za-z0-9]*)?"
)


def parse_kube_version(text: str, *, option: str = "--kube-version") -> str:
    """The Kubernetes version ``helm template`` renders for; UsageError naming ``option``."""
    value = text.strip()
    if not _KUBE_VERSION.fullmatch(value):
        raise UsageError(
            f"invalid Kubernetes version {text!r} (expected MAJOR.MINOR[.PATCH], e.g. 1.35.0)",
            where=option,
        )
    return value


def parse_api_versions(values: Iterable[str], *, option: str = "--api-versions") -> tuple[str, ...]:
    """API versions from repeated and comma-separated values, in order, without duplicates."""
    found: dict[str, None] = {}
    for value in values:
        for item in value.split(","):
            text = item.strip()
            if not _API_VERSION.fullmatch(text):
                raise UsageError(
                    f"invalid API version {item.strip()!r} (expected [GROUP/]VERSION[/Kind], "
                    "e.g. monitoring.coreos.com/v1)",
                    where=option,
                )
            found[text] = None
    return tuple(found)


def _publish(section: Mapping[str, Any], where: str) -> PublishConfig:
    return PublishConfig(
        url=_opt_str(section.get("url"), "publish.url", where),
        source=_opt_str(section.get("source"), "publish.source", where),
        pin=_opt_bool(section.get("pin"), "publish.pin", where),
    )


def _local_or_url(value: Any, key: str, base: Path, where: str) -> str | None:
    """A URL as written; a path relative to the config file's directory."""
    text = _opt_str(value, key, where)
    if text is None or "://" in text:
        return text
    return str(base / text)


def _image_sources(value: Any, base: Path, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("imageSources must be a mapping of reference: local image", where=where)
    sources: dict[str, str] = {}
    for key, target in value.items():
        try:
            canonical = str(parse_reference(str(key)))
        except KubegateError as exc:
            raise ConfigError(f"imageSources: {exc.diagnostics()}", where=where) from exc
        if not isinstance(target, str) or not target.startswith(_LOCAL_PREFIXES):
            raise ConfigError(
                f"imageSources[{key}]: expected oci:PATH[:TAG], oci-archive:PATH or "
                "docker-archive:PATH",
                where=where,
            )
        prefix, _, rest = target.partition(":")
        sources[canonical] = target if rest.startswith("/") else f"{prefix}:{_shown(base / rest)}"
    return sources


def _git_sources(value: Any, base: Path, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("sources must be a mapping of NS/NAME: DIR|GIT-URL[@REF]", where=where)
    sources: dict[str, str] = {}
    for key, target in value.items():
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"sources[{key}]: expected DIR|GIT-URL[@REF]", where=where)
        local = base / target
        # A directory is relative to the file, like every other path in it.
        sources[str(key)] = (
            str(local) if not Path(target).is_absolute() and local.is_dir() else target
        )
    return sources


def _shown(path: Path) -> str:
    # Relative to the working directory when inside it, so reports read like the config.
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _opt_str(value: Any, key: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{key} must be a string", where=where)
    return str(value)


def _opt_bool(value: Any, key: str, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{key} must be true or false", where=where)


def _opt_path(value: Any, key: str, base: Path, where: str) -> Path | None:
    text = _opt_str(value, key, where)
    return None if text is None else base / text


def _str_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of strings", where=where)
    return tuple(value)
