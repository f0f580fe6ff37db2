"""Options shared by several commands (output, verbosity, where a revision comes from)."""

from __future__ import annotations

import argparse

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
