"""``kubegate scan``: may this GitOps revision be deployed? kubegate's main job.

source -> render -> images -> digests -> inventory -> match -> policy -> report -> exit code,
through ``kubegate.scan``. Policy and exceptions come from flags, ``--config``/``kubegate.yaml``,
``--ignorefile`` (else ``.kubegateignore.yaml``, ``.trivyignore.yaml`` or ``.trivyignore`` in the
working directory) and ``--vex``, never from the revision being judged. ``--pin-digests`` writes
what was scanned as a kustomize ``images:`` list (docs/interop.md).
Exit 0 PASS, 1 BLOCKED, 2 UNPROVEN (also blocks; 0 with ``--fail-open``), 3 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubegate.cli.common import (
    add_output_arguments,
    add_registry_arguments,
    add_render_arguments,
    add_source_arguments,
    parse_source,
    registry_options,
    revision_request,
)
from kubegate.cli.scan_options import (
    add_db_arguments,
    add_db_update_arguments,
    add_policy_arguments,
)
from kubegate.config import Config, find_config
from kubegate.errors import ConfigError, UsageError
from kubegate.ignorefile import IgnoreFile
from kubegate.policy import DEFAULT_DB_MAX_AGE, Policy, parse_duration, parse_registries
from kubegate.report.interface import GateFormat
from kubegate.trivyignore import DEFAULT_NAMES as IGNORE_NAMES
from kubegate.trivyignore import find_exceptions_file, load_exceptions
from kubegate.vex import VexSet, load_vex

# The pipeline is imported in ``run``: registering the command must stay cheap for every other
# command and for ``--help`` (start-up time counts, STYLE.md).
if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from kubegate.gate import GateResult
    from kubegate.registry import RegistryOptions
    from kubegate.scan import Progress, RevisionRequest

_logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4


def register(subparsers: Any) -> None:
    """Add the ``scan`` sub-command."""
    parser = subparsers.add_parser(
        "scan",
        help="decide whether a GitOps revision may be deployed",
        description="Render the revision as Flux would, resolve and inventory every image it "
        "would run, match them against the advisory database and judge them under the policy.",
    )
    add_source_arguments(parser)
    add_render_arguments(parser)
    add_policy_arguments(parser)
    parser.add_argument(
        "--ignorefile",
        type=Path,
        help="exceptions file; a name starting with .trivyignore is read in Trivy's format "
        f"(default: the first of {', '.join(IGNORE_NAMES)} in the working directory)",
    )
    parser.add_argument(
        "--vex",
        action="append",
        type=Path,
        metavar="FILE",
        help="OpenVEX document; not_affected and fixed statements suppress findings (repeatable)",
    )
    parser.add_argument(
        "--allowed-registries",
        action="append",
        metavar="HOST[,HOST]",
        help="images from any other registry block without being pulled "
        "(config registry.allowedRegistries)",
    )
    parser.add_argument(
        "--pin-digests",
        type=Path,
        metavar="FILE",
        help="write a kustomize images: list pinning every scanned image to its scanned digest",
    )
    parser.add_argument(
        "--config", type=Path, help="configuration file (default kubegate.yaml in the working dir)"
    )
    add_db_arguments(parser)
    parser.set_defaults(db_max_age=None)  # unset: the config's db.maxAge, else 120h
    add_db_update_arguments(parser)
    parser.add_argument(
        "--fail-open",
        action="store_true",
        help="what cannot be seen only warns (exit 0); policy blocks still exit 1",
    )
    parser.add_argument(
        "--format",
        action="append",
        choices=[f.value for f in GateFormat],
        help="report format, repeatable (default table)",
    )
    parser.add_argument(
        "--output",
        action="append",
        type=Path,
        metavar="FILE",
        help="file for the report of the --format at the same position (default stdout)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"images resolved and inventoried at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="bound the whole scan; images not done by then are reported as not proven",
    )
    add_registry_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Scan the revision, write every report, return the verdict's exit code."""
    from kubegate.cli.dbupdate import refresh_db
    from kubegate.gate import UnseenKind
    from kubegate.inventory import InventoryCache
    from kubegate.registry import RegistryClient
    from kubegate.scan import ImageInspector, ScanSettings, read_revision, scan_revision
    from kubegate.vulndb import VulnDB, resolve_db_path

    started = time.monotonic()
    outputs = _outputs(args)
    if args.concurrency < 1:
        raise UsageError("must be at least 1", where="--concurrency")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("must be positive", where="--timeout")
    cwd = Path.cwd()
    config = find_config(args.config, cwd)
    settings = ScanSettings(
        policy=_policy(args, config),
        ignore=_ignore_file(args, config, cwd),
        vex=load_vex(args.vex) if args.vex else VexSet(),
        max_age=_max_age(args, config),
        fail_open=args.fail_open or bool(config.policy.fail_open),
        concurrency=args.concurrency,
        timeout=args.timeout,
    )
    options = _registry_options(args, config)
    db_path = Path(args.db) if args.db else config.db.path or resolve_db_path(None)
    # A local source named in the config is the update (imported first, no network); else the
    # OSV feeds are refreshed when older than 12 h, unless --skip-db-update (docs/db.md).
    refresh_db(args, db_path, settings.max_age, local_sources=config.db.sources)
    revision = read_revision(_with_config_sources(revision_request(args), config))
    _logger.info(
        "rendered %s: %s image use(s) of %s image(s)",
        revision.info.location,
        len(revision.images.uses),
        len({str(u.ref) for u in revision.images.uses}),
    )
    deadline = None if args.timeout is None else started + args.timeout
    cache = InventoryCache()
    try:
        with VulnDB.open(db_path) as db, RegistryClient(options) as client:
            inspector = ImageInspector(
                client,
                cache,
                config.image_sources,
                workers=1 if args.concurrency > 1 else None,
            )
            with _progress(args) as progress:
                result = scan_revision(
                    revision,
                    settings,
                    inspector=inspector,
                    db=db,
                    deadline=deadline,
                    progress=progress,
                )
    finally:
        cache.close()
    _write_reports(result, outputs)
    if args.pin_digests is not None:
        _write_pins(result, args.pin_digests)
    _explain(result)
    if any(item.kind is UnseenKind.TIMEOUT for item in result.unseen):
        # Worker threads may still wait on a registry; do not let them hold the exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.exit_code)
    return result.exit_code


class _LogProgress:
    """Off a terminal: one plain log line per image (CI logs)."""

    def __init__(self) -> None:
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def stage(self, name: str, total: int) -> None:
        with self._lock:
            self._totals[name], self._done[name] = total, 0

    def advance(self, name: str, item: str) -> None:
        with self._lock:
            self._done[name] = self._done.get(name, 0) + 1
            done, total = self._done[name], self._totals.get(name, 0)
        if name == "images":
            _logger.info("image %s/%s: %s", done, total, item)


class _BarProgress:
    """On a terminal: one rich progress bar per stage, on stderr, removed when done."""

    def __init__(self, bars: RichProgress) -> None:
        self._bars = bars
        self._tasks: dict[str, TaskID] = {}

    def stage(self, name: str, total: int) -> None:
        self._tasks[name] = self._bars.add_task(name, total=total)

    def advance(self, name: str, item: str) -> None:
        self._bars.update(self._tasks[name], advance=1, description=f"{name}: {item[:60]}")


@contextlib.contextmanager
def _progress(args: argparse.Namespace) -> Iterator[Progress]:
    if args.quiet or not sys.stderr.isatty():
        yield _LogProgress()
        return
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    bars = RichProgress(console=Console(stderr=True), transient=True)
    with bars:
        yield _BarProgress(bars)


def _outputs(args: argparse.Namespace) -> list[tuple[GateFormat, Path | None]]:
    formats = [GateFormat(f) for f in (args.format or [GateFormat.TABLE.value])]
    files: list[Path | None] = list(args.output or [])
    if len(files) > len(formats):
        raise UsageError("more --output files than --format options", where="--output")
    files += [None] * (len(formats) - len(files))
    if sum(1 for f in files if f is None) > 1:
        raise UsageError(
            "only one report can go to stdout: give an --output file for the others",
            where="--format",
        )
    return list(zip(formats, files, strict=True))


def _with_config_sources(request: RevisionRequest, config: Config) -> RevisionRequest:
    """The config's ``sources:`` under the ``--source`` flags (a flag wins for one name)."""
    if not config.sources:
        return request
    where = f"{config.path}: sources"
    sources = dict(parse_source(f"{key}={value}", where) for key, value in config.sources.items())
    return dataclasses.replace(request, sources={**sources, **request.sources})


def _policy(args: argparse.Namespace, config: Config) -> Policy:
    if args.severity is not None or args.severity_threshold is not None:
        severity, threshold = args.severity, args.severity_threshold
    else:
        severity, threshold = config.policy.severity, config.policy.severity_threshold
    try:
        policy = Policy.from_options(
            severity,
            threshold,
            ignore_unfixed=args.ignore_unfixed or bool(config.policy.ignore_unfixed),
        )
    except UsageError as exc:
        if args.severity is None and args.severity_threshold is None and config.path:
            raise ConfigError(f"policy: {exc.diagnostics()}", where=str(config.path)) from exc
        raise
    return dataclasses.replace(policy, allowed_registries=_allowed_registries(args, config))


def _allowed_registries(args: argparse.Namespace, config: Config) -> frozenset[str]:
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


def _max_age(args: argparse.Namespace, config: Config) -> timedelta:
    if args.db_max_age is not None:
        return parse_duration(args.db_max_age)
    if config.db.max_age is not None:
        try:
            return parse_duration(config.db.max_age, option="db.maxAge")
        except UsageError as exc:
            raise ConfigError(exc.diagnostics(), where=str(config.path)) from exc
    return DEFAULT_DB_MAX_AGE


def _ignore_file(args: argparse.Namespace, config: Config, cwd: Path) -> IgnoreFile:
    path = args.ignorefile or config.policy.ignorefile or find_exceptions_file(cwd)
    return IgnoreFile() if path is None else load_exceptions(path)


def _write_pins(result: GateResult, path: Path) -> None:
    from kubegate.report.pin import pin_document

    document = pin_document(result)
    for warning in document.warnings:
        print(f"kubegate: warning: --pin-digests: {warning}", file=sys.stderr)
    try:
        path.write_text(document.text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write pins: {exc.strerror}", where=str(path)) from exc


def _registry_options(args: argparse.Namespace, config: Config) -> RegistryOptions:
    from kubegate.registry import parse_platform

    options = registry_options(args)
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


def _write_reports(result: GateResult, outputs: list[tuple[GateFormat, Path | None]]) -> None:
    from kubegate.report.gate import render_gate_report

    for fmt, path in outputs:
        if path is None:
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            sys.stdout.write(render_gate_report(result, fmt, width))
            continue
        try:
            path.write_text(render_gate_report(result, fmt), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write report: {exc.strerror}", where=str(path)) from exc


def _explain(result: GateResult) -> None:
    """One stderr line per thing not proven: what CI logs show next to the exit code."""
    for item in result.blocking_unseen:
        origin = item.origin
        where = f"{origin.file}:{origin.line}: " if origin and origin.file else ""
        level = "warning" if result.fail_open else "error"
        print(f"kubegate: {level}: not proven: {where}{item.message}", file=sys.stderr)
    for problem in result.exception_problems:
        print(f"kubegate: warning: {problem}", file=sys.stderr)
    if result.fail_open and result.blocking_unseen:
        print(
            f"kubegate: warning: --fail-open: {len(result.blocking_unseen)} thing(s) could not "
            "be proven clean and were let through",
            file=sys.stderr,
        )
