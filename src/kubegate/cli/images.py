"""``kubegate images``: list every image a revision would run, with where it is declared.

Renders the revision (``kubegate.render``), walks the objects (``kubegate.images``) and prints a
table (rich, never truncated off a TTY) or the stable JSON document described in docs/images.md.
Exit 0 when rendering succeeded (not-seen items are listed, not failures), 2 when any error was
found; each error is also printed to stderr as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kubegate.cli.common import (
    add_output_arguments,
    add_render_arguments,
    add_source_arguments,
    revision_request,
)
from kubegate.display import visible
from kubegate.errors import EXIT_OK, EXIT_UNPROVEN, redact_urls
from kubegate.models import NotSeen, Problem
from kubegate.report.revision import grouped, images_document

if TYPE_CHECKING:
    from rich.console import Console

    from kubegate.images import ImageScan


def register(subparsers: Any) -> None:
    """Add the ``images`` sub-command."""
    parser = subparsers.add_parser("images", help="list the images a revision would run")
    add_source_arguments(parser)
    add_output_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_render_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render the revision and print its images."""
    from kubegate.scan import read_revision  # here: start-up time counts (STYLE.md)

    revision = read_revision(revision_request(args))
    if args.format == "json":
        document = images_document(
            revision.info, revision.images.uses, revision.not_seen, revision.problems
        )
        sys.stdout.write(redact_urls(json.dumps(document, indent=2)) + "\n")
    else:
        print_table(revision.images, revision.not_seen)
    for problem in revision.problems:
        print(f"kubegate: error: {visible(redact_urls(_problem_line(problem)))}", file=sys.stderr)
    return EXIT_UNPROVEN if revision.problems else EXIT_OK


def _problem_line(problem: Problem) -> str:
    origin = problem.origin
    if origin.file is None:
        return problem.message
    where = f"{origin.file}:{origin.line}" if origin.line else origin.file
    return f"{where}: {problem.message}"


def _console() -> Console:
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False)
    # Off a terminal nothing may be cut: a width no table reaches, and no colour codes.
    return Console(width=100_000, highlight=False, no_color=True, color_system=None)


def print_table(scan: ImageScan, not_seen: Sequence[NotSeen]) -> None:
    """A readable table of image uses (and of what was not seen) on stdout."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("IMAGE", "WORKLOAD", "CONTAINER", "DECLARED AT", "KUSTOMIZATION"):
        table.add_column(column, overflow="fold", no_wrap=not sys.stdout.isatty())
    count = 0
    for _, uses in grouped(scan.uses):
        for use in uses:
            count += 1
            workload = (
                f"{use.kind} {use.namespace}/{use.name}"
                if use.namespace
                else (f"{use.kind} {use.name}")
            )
            where = use.origin.file or "?"
            if use.origin.line:
                where = f"{where}:{use.origin.line}"
            container = use.container
            if use.container_type not in ("containers", "other"):
                container = f"{container} ({use.container_type.removesuffix('Containers')})"
            cells = (str(use.ref), workload, container, where, use.kustomization or "-")
            # File names and object names may hold `[`: never let rich read them as markup.
            # Nor drive the terminal: control characters are escaped too (kubegate.display).
            table.add_row(*(escape(visible(cell)) for cell in cells))
    console.print(table)
    images = len({str(use.ref) for use in scan.uses})
    console.print(f"{images} image(s) in {count} use(s)")
    if not_seen:
        rest = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title=None)
        for column in ("NOT SEEN", "DECLARED AT", "REASON"):
            rest.add_column(column, no_wrap=not sys.stdout.isatty())
        for item in not_seen:
            name = f"{item.namespace}/{item.name}" if item.namespace else item.name
            where = item.origin.file or "?"
            if item.origin.line:
                where = f"{where}:{item.origin.line}"
            texts = (f"{item.kind} {name}", where, item.reason)
            rest.add_row(*(escape(visible(text)) for text in texts))
        console.print()
        console.print(rest)
