"""``kubegate images``: list every image a revision would run, with where it is declared.

Renders the revision (``kubegate.render``), walks the objects (``kubegate.images.find``) and
prints a table (rich, never truncated off a TTY) or the stable JSON document described in
docs/images.md.
Charts and OCIRepository sources are fetched with the registry options and configuration of
``scan`` (``kubegate.cli.revision_options``: ``--config`` else ``kubegate.yaml`` in the user
config directory, ``registry:``, ``helm:``, ``sources:``, ``render:``).
Exit 0 when rendering succeeded (not-seen items are listed, not failures), 2 when any error was
found; each error is also printed to stderr as one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubegate.cli.common import (
    DEFAULT_TIMEOUT,
    add_limit_arguments,
    add_output_arguments,
    add_registry_arguments,
    add_render_arguments,
    add_source_arguments,
    print_line,
    revision_request,
    transfer_limits,
)
from kubegate.cli.revision_options import (
    add_allowed_registries_argument,
    add_helm_arguments,
    allowed_registries,
    configured_registry_options,
    configured_request,
    open_fetcher,
)
from kubegate.config import find_config, user_config_dir
from kubegate.display import visible
from kubegate.errors import EXIT_OK, EXIT_UNPROVEN, redact_urls
from kubegate.models import NotSeen, Origin, Problem
from kubegate.report.revision import grouped, images_document

if TYPE_CHECKING:
    from rich.console import Console

    from kubegate.images.find import ImageScan


def register(subparsers: Any) -> None:
    """Add the ``images`` sub-command."""
    parser = subparsers.add_parser("images", help="list the images a revision would run")
    add_source_arguments(parser)
    add_output_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_render_arguments(parser)
    add_helm_arguments(parser)
    parser.add_argument(
        "--config",
        type=Path,
        help="configuration file for registry:, helm:, sources: and render: (default: "
        "kubegate.yaml in the user config directory, $XDG_CONFIG_HOME/kubegate)",
    )
    add_allowed_registries_argument(parser)
    add_registry_arguments(parser)
    add_limit_arguments(
        parser,
        default_timeout=DEFAULT_TIMEOUT,
        timeout_help="bound the whole command; what is not rendered or fetched by then is exit 2",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render the revision and print its images."""
    # Here: start-up time counts (STYLE.md).
    from kubegate.decide.policy import Policy
    from kubegate.scan import read_revision

    limits = transfer_limits(args, time.monotonic())
    config = find_config(args.config, user_config_dir())
    options = configured_registry_options(args, config, limits)
    policy = Policy(allowed_registries=allowed_registries(args, config))
    request = dataclasses.replace(
        configured_request(revision_request(args), args, config), deadline=limits.deadline
    )
    with open_fetcher(
        options, allowed=policy.registry_allowed, deadline=limits.deadline
    ) as fetcher:
        revision = read_revision(dataclasses.replace(request, fetcher=fetcher))
    if args.format == "json":
        document = images_document(
            revision.info,
            revision.images.uses,
            revision.not_seen,
            revision.problems,
            revision.notes,
        )
        sys.stdout.write(redact_urls(json.dumps(document, indent=2)) + "\n")
    else:
        print_table(revision.images, revision.not_seen, revision.notes)
    for problem in revision.problems:
        print_line(f"error: {_problem_line(problem)}")
    return EXIT_UNPROVEN if revision.problems else EXIT_OK


def _problem_line(problem: Problem) -> str:
    origin = problem.origin
    # The same file can fail in several clusters of one fleet: say which.
    message = (
        f"{problem.message} (cluster {problem.cluster})" if problem.cluster else problem.message
    )
    if origin.file is None:
        return message
    where = f"{origin.file}:{origin.line}" if origin.line else origin.file
    return f"{where}: {message}"


def _console() -> Console:
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False)
    # Off a terminal nothing may be cut: a width no table reaches, and no colour codes.
    return Console(width=100_000, highlight=False, no_color=True, color_system=None)


#: A NOT SEEN list longer than this gets a count line (a fleet can list hundreds).
_NOT_SEEN_COUNT_FROM = 10


def print_table(
    scan: ImageScan, not_seen: Sequence[NotSeen], notes: Sequence[NotSeen] = ()
) -> None:
    """A readable table of image uses (and of what was not seen, and notes) on stdout."""
    console = _console()
    clusters = any(use.cluster for use in scan.uses) or any(
        item.cluster for item in (*not_seen, *notes)
    )
    charts = any(use.helm_release for use in scan.uses)
    rows: list[list[str]] = []
    for _, uses in grouped(scan.uses):
        for use in uses:
            workload = (
                f"{use.kind} {use.namespace}/{use.name}"
                if use.namespace
                else f"{use.kind} {use.name}"
            )
            container = use.container
            if use.container_type not in ("containers", "other"):
                container = f"{container} ({use.container_type.removesuffix('Containers')})"
            cells = [
                str(use.ref),
                workload,
                container,
                _where(use.origin),
                use.kustomization or "-",
            ]
            if charts:
                # Compact: the HelmRelease and its chart as name@version.
                chart = f" ({use.chart.name}@{use.chart.version})" if use.chart else ""
                cells.append(f"{use.helm_release}{chart}" if use.helm_release else "-")
            if clusters:
                cells.insert(1, use.cluster or "-")
            rows.append(cells)
    headers = ["IMAGE", "WORKLOAD", "CONTAINER", "DECLARED AT", "KUSTOMIZATION"]
    if charts:
        headers.append("HELMRELEASE")
    if clusters:
        headers.insert(1, "CLUSTER")
    if rows:
        # No empty table when nothing was found: the count line says it.
        _print_rows(console, headers, rows)
    images = len({str(use.ref) for use in scan.uses})
    console.print(f"{images} image(s) in {len(scan.uses)} use(s)")
    if not_seen:
        _print_items(console, ["NOT SEEN", "DECLARED AT", "REASON"], not_seen, clusters)
        if len(not_seen) >= _NOT_SEEN_COUNT_FROM:
            console.print(f"{len(not_seen)} object(s) not seen")
    if notes:
        _print_items(console, ["NOTE", "DECLARED AT", "REMARK"], notes, clusters)


def _print_items(
    console: Console, headers: list[str], items: Sequence[NotSeen], clusters: bool
) -> None:
    """A table of not-seen objects or notes (both NotSeen-shaped): object, where, why."""
    if clusters:
        headers.insert(1, "CLUSTER")
    rows = []
    for item in items:
        name = f"{item.namespace}/{item.name}" if item.namespace else item.name
        cells = [f"{item.kind} {name}", _where(item.origin), item.reason]
        if clusters:
            cells.insert(1, item.cluster or "-")
        rows.append(cells)
    console.print()
    _print_rows(console, headers, rows)


def _where(origin: Origin) -> str:
    where = origin.file or "?"
    return f"{where}:{origin.line}" if origin.line else where


def _print_rows(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table when it fits; on a narrower terminal one block per row, never cut mid-token.

    References, paths and names are single tokens a user copies: a table squeezed into a
    narrow terminal would fold them inside, so each row is then printed as its first cell
    followed by an indented line of the others (wrapped between cells only).
    """
    from rich import box
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True)
    for cells in rows:
        # File names and object names may hold `[`: never let rich read them as markup.
        table.add_row(*(escape(visible(cell)) for cell in cells))
    unbounded = console.options.update_width(1_000_000)
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
        return
    for cells in rows:
        console.print(escape(visible(cells[0])), soft_wrap=True)
        console.print("    " + "  ".join(escape(visible(cell)) for cell in cells[1:]))
