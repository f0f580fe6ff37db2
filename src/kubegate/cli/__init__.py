"""Command-line entry point: argument parsing, logging set-up and exit codes.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``
and ``run(args) -> int``; :data:`COMMANDS` lists them explicitly (no registration by import side
effect). ``main`` is the only place that turns a :class:`~kubegate.errors.KubegateError` (or any
unexpected exception) into one line on stderr and an exit code (README "Exit codes"). Every
stderr line, log records included, is escaped with :func:`kubegate.display.visible`: messages
carry file names and references from the judged revision.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from kubegate import __version__
from kubegate.cli import db as db_cmd
from kubegate.cli import image as image_cmd
from kubegate.cli import images as images_cmd
from kubegate.cli import sbom as sbom_cmd
from kubegate.cli import scan as scan_cmd
from kubegate.cli import watch as watch_cmd
from kubegate.cli.common import print_line
from kubegate.display import visible
from kubegate.errors import EXIT_UNPROVEN, EXIT_USAGE, KubegateError, UsageError, redact_urls

_logger = logging.getLogger("kubegate")

#: Every sub-command module, in the order ``--help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (
    scan_cmd,
    watch_cmd,
    images_cmd,
    image_cmd,
    sbom_cmd,
    db_cmd,
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; kubegate reserves 2 for "could not prove", so raise."""

    def error(self, message: str) -> NoReturn:
        # The top-level prog is already in the "kubegate: error:" prefix.
        raise UsageError(message, where=None if self.prog == "kubegate" else self.prog)


def build_parser() -> ArgumentParser:
    """The full parser: global options plus one sub-parser per command in :data:`COMMANDS`."""
    parser = ArgumentParser(
        prog="kubegate",
        description="Stop vulnerable container images before Flux applies them.",
    )
    parser.add_argument("--version", action="version", version=f"kubegate {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=ArgumentParser
    )
    for command in COMMANDS:
        command.register(subparsers)
    return parser


class _SafeFormatter(logging.Formatter):
    """Log lines safe to print: control characters in the message escaped (a traceback after it
    is left as is) and URL userinfo and query strings removed, whoever logged the URL."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = visible(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact_urls(super().format(record))


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("kubegate: %(levelname)s: %(message)s"))
    root = logging.getLogger("kubegate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run kubegate with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    verbose = 0
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        verbose = getattr(args, "verbose", 0)
        _configure_logging(verbose, getattr(args, "quiet", False))
        code: int = args.run(args)
        return code
    except KubegateError as exc:
        if verbose:
            _logger.debug("traceback", exc_info=True)
        print_line(f"error: {exc.diagnostics()}")
        return exc.exit_code
    except KeyboardInterrupt:
        print_line("error: interrupted")
        return EXIT_UNPROVEN
    except Exception as exc:  # the one place that turns any failure into an exit code
        if verbose:
            _logger.debug("traceback", exc_info=True)
        print_line(f"error: internal error: {type(exc).__name__}: {exc}")
        return EXIT_UNPROVEN


__all__ = ["COMMANDS", "EXIT_USAGE", "ArgumentParser", "build_parser", "main"]
