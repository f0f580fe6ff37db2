"""Settings the commands that read a revision (``scan``, ``watch``, ``images``) take from flags
and from the configuration file alike.

All three render HelmReleases with the same helm settings (``--kube-version``,
``--api-versions``, ``--values-from``; config ``helm:``), fetch charts and OCIRepository
sources through the same registry settings as images (``--registry-mirror``,
``--insecure-registry``, ``--ca-file``, ``--username``/``--password-stdin``, the Docker config;
config ``registry:``) under the same allow-list (``--allowed-registries``,
``registry.allowedRegistries``), and read other GitRepositories from ``--source``/``sources:``.
This module registers the flags :mod:`kubegate.cli.common` does not, merges flags with the
configuration (a flag wins; lists add up), and opens the fetcher (:func:`open_fetcher`) that
``kubegate.scan.read_revision`` hands to rendering. Documented in docs/config.md, docs/images.md
and the README's CLI reference.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kubegate.cli.common import parse_source, registry_options
from kubegate.config import Config, parse_api_versions, parse_kube_version
from kubegate.decide.policy import parse_registries
from kubegate.errors import ConfigError, UsageError

# Rendering and the registry client are imported where they are used (start-up time counts).
if TYPE_CHECKING:
    from kubegate.models import ImageRef
    from kubegate.registry import RegistryOptions
    from kubegate.render.fetch import HelmOptions, SourceFetcher
    from kubegate.scan import RevisionRequest
    from kubegate.transfer import TransferLimits

#: The Kubernetes version ``HelmOptions`` defaults to, shown in ``--help`` (kept equal to
#: ``kubegate.render.fetch.HelmOptions.kube_version`` by a test; importing it here would load
#: the whole render package for every command).
DEFAULT_KUBE_VERSION = "1.35.0"


def add_allowed_registries_argument(parser: argparse.ArgumentParser) -> None:
    """``--allowed-registries``: images, charts and OCI sources from other registries are
    never contacted."""
    parser.add_argument(
        "--allowed-registries",
        action="append",
        metavar="HOST[,HOST]",
        help="images, charts and OCI sources from any other registry are not pulled (scan: "
        "they block) (config registry.allowedRegistries)",
    )


def add_helm_arguments(parser: argparse.ArgumentParser) -> None:
    """How HelmReleases are rendered offline (docs/images.md "HelmReleases")."""
    parser.add_argument(
        "--kube-version",
        metavar="VERSION",
        help="Kubernetes version charts are rendered for, what Flux would get from the cluster "
        f"(default: helm.kubeVersion of the config, else {DEFAULT_KUBE_VERSION})",
    )
    parser.add_argument(
        "--api-versions",
        action="append",
        default=[],
        metavar="GROUP/VERSION[/Kind][,...]",
        help="API versions the cluster serves, for charts' .Capabilities.APIVersions "
        "(repeatable or comma-separated; added to helm.apiVersions of the config)",
    )
    parser.add_argument(
        "--values-from",
        action="append",
        default=[],
        metavar="NS/KIND/NAME=FILE",
        help="data of a ConfigMap or Secret (KIND) that a HelmRelease's valuesFrom names and "
        "only the cluster holds: FILE is a YAML mapping of data keys to text values "
        "(repeatable)",
    )


def parse_values_from(text: str) -> tuple[str, Path]:
    """``NS/KIND/NAME=FILE`` -> (``NS/KIND/NAME``, FILE), the file checked (exit 3 if bad)."""
    from kubegate.render.valuesfrom import KINDS, read_values_file

    key, sep, file = text.partition("=")
    parts = key.strip().split("/")
    if not sep or not file.strip() or len(parts) != 3 or not all(parts):
        raise UsageError(f"expected NS/KIND/NAME=FILE, got {text!r}", where="--values-from")
    namespace, kind, name = parts
    if kind not in KINDS:
        raise UsageError(
            f"{key.strip()}: KIND must be {' or '.join(KINDS)}, got {kind!r}",
            where="--values-from",
        )
    path = Path(file.strip())
    try:
        read_values_file(path)
    except ConfigError as exc:
        raise ConfigError(exc.diagnostics(), where=f"--values-from {key.strip()}") from exc
    return f"{namespace}/{kind}/{name}", path


def values_from_files(args: argparse.Namespace) -> list[Path]:
    """The files ``--values-from`` names (for the trust check before anything is read)."""
    return [Path(text.partition("=")[2].strip()) for text in args.values_from if "=" in text]


def helm_options(args: argparse.Namespace, config: Config) -> HelmOptions:
    """The flags over the config's ``helm:`` (``--api-versions`` adds to ``apiVersions``)."""
    from kubegate.render.fetch import HelmOptions

    helm = config.helm
    if helm.path is not None and not helm.path.is_file():
        raise ConfigError(f"helm.path: no such file {helm.path}", where=str(config.path))
    kube_version = (
        parse_kube_version(args.kube_version)
        if args.kube_version is not None
        else helm.kube_version
    )
    values_from = dict(parse_values_from(text) for text in args.values_from)
    defaults = HelmOptions()
    return HelmOptions(
        path=str(helm.path) if helm.path is not None else None,
        kube_version=kube_version or defaults.kube_version,
        api_versions=tuple(
            dict.fromkeys((*helm.api_versions, *parse_api_versions(args.api_versions)))
        ),
        values_from=values_from,
    )


def allowed_registries(args: argparse.Namespace, config: Config) -> frozenset[str]:
    """``--allowed-registries``, else the config's ``registry.allowedRegistries`` (empty: any)."""
    if args.allowed_registries:
        return parse_registries(h for value in args.allowed_registries for h in value.split(","))
    if not config.registry.allowed_registries:
        return frozenset()
    try:
        return parse_registries(
            config.registry.allowed_registries, option="registry.allowedRegistries"
        )
    except UsageError as exc:
        raise ConfigError(exc.diagnostics(), where=str(config.path)) from exc


def configured_registry_options(
    args: argparse.Namespace, config: Config, limits: TransferLimits
) -> RegistryOptions:
    """The registry flags over the config's ``registry:`` (``--insecure-registry`` adds)."""
    from kubegate.registry import parse_platform

    options = registry_options(args, limits=limits)
    platforms = options.platforms or tuple(parse_platform(p) for p in config.registry.platforms)
    ca_file = options.ca_file or config.registry.ca_file
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError("registry.caFile: no such file", where=str(ca_file))
    return dataclasses.replace(
        options,
        ca_file=ca_file,
        insecure_registries=options.insecure_registries
        | frozenset(config.registry.insecure_registries),
        platforms=platforms,
    )


def configured_request(
    request: RevisionRequest, args: argparse.Namespace, config: Config
) -> RevisionRequest:
    """``request`` with the config's ``sources:`` (under ``--source``),
    ``render.allowRemoteBases`` and the helm settings applied."""
    if config.sources:
        where = f"{config.path}: sources"
        sources = dict(
            parse_source(f"{key}={value}", where) for key, value in config.sources.items()
        )
        request = dataclasses.replace(request, sources={**sources, **request.sources})
    return dataclasses.replace(
        request,
        allow_remote_bases=args.allow_remote_bases or bool(config.render.allow_remote_bases),
        helm=helm_options(args, config),
    )


@contextlib.contextmanager
def open_fetcher(
    options: RegistryOptions,
    *,
    allowed: Callable[[ImageRef], bool] | None,
    deadline: float | None,
) -> Iterator[SourceFetcher]:
    """The fetcher of charts and OCI sources for one run, on its own registry client (closed
    when the run's rendering is done); charts are cached by digest in kubegate's cache dir."""
    from kubegate.cachedir import cache_dir
    from kubegate.fetch import Fetcher
    from kubegate.registry import RegistryClient
    from kubegate.source import SourceLimits

    limits = SourceLimits(min_rate=options.limits.min_rate, rate_window=options.limits.rate_window)
    with (
        RegistryClient(options) as client,
        Fetcher(
            client, cache_dir=cache_dir(), limits=limits, allowed=allowed, deadline=deadline
        ) as fetcher,
    ):
        yield fetcher
