"""Options shared by several commands (output, verbosity, where a revision comes from)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kubegate.errors import UsageError
from kubegate.registry import RegistryOptions, parse_platform
from kubegate.source import SourceSpec


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-q``: logs and progress go to stderr, machine output to stdout."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="debug logs (and tracebacks) on stderr"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the files of a revision come from (README "Sources")."""
    parser.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SOURCE",
        help="local directory (default .) or git repository (path, file://, https://, ssh://)",
    )
    parser.add_argument(
        "--path", default="", help="path inside the source to render (default: root)"
    )
    parser.add_argument("--ref", help="git branch, tag or commit to check out (git sources)")
    parser.add_argument("--artifact-url", help="Flux source-controller artifact (tar.gz) URL")
    parser.add_argument("--artifact-digest", help="sha256:HEX digest of the artifact tarball")


def source_spec(args: argparse.Namespace) -> SourceSpec:
    """Build the :class:`SourceSpec` from parsed source options."""
    return SourceSpec(
        location=args.source,
        ref=args.ref,
        artifact_url=args.artifact_url,
        artifact_digest=args.artifact_digest,
    )


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    """How images are pulled (docs/registry.md)."""
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH[/VARIANT]",
        help="platform of a multi-platform image to inspect (repeatable; default every linux one)",
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP for this registry (loopback registries fall back by themselves)",
    )
    parser.add_argument("--ca-file", type=Path, help="PEM bundle of CAs to trust for registries")


def registry_options(args: argparse.Namespace) -> RegistryOptions:
    """Build :class:`RegistryOptions` from parsed registry options."""
    if args.ca_file is not None and not args.ca_file.is_file():
        raise UsageError("no such file", where=f"--ca-file {args.ca_file}")
    return RegistryOptions(
        ca_file=args.ca_file,
        insecure_registries=frozenset(args.insecure_registry),
        platforms=tuple(parse_platform(text) for text in args.platform),
    )
