"""``kubegate scan``: may this GitOps revision be deployed? kubegate's main job.

source -> render -> images -> digests -> inventory -> match -> policy -> report -> exit code,
through ``kubegate.scan``. Policy and exceptions come from flags, ``--config`` (else
``kubegate.yaml``), ``--ignorefile`` (else ``.kubegateignore.yaml``, ``.trivyignore.yaml`` or
``.trivyignore``) and ``--vex``; the implicit files are read from the user config directory, or
from another ref of the judged git source with ``--config-ref``, never from the working
directory. No file the policy reads may lie inside the judged source, and no report is written
there (``kubegate.trust``; exit 3 unless ``--trust-source-config`` / ``--write-into-source``).
``--pin-digests`` writes what was scanned as a kustomize ``images:`` list (docs/interop.md).
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
    DEFAULT_TIMEOUT,
    add_limit_arguments,
    add_output_arguments,
    add_registry_arguments,
    add_render_arguments,
    add_source_arguments,
    print_line,
    revision_request,
    source_spec,
    transfer_limits,
)
from kubegate.cli.publish_options import (
    add_publish_arguments,
    publish_options,
    publish_verdict,
)
from kubegate.cli.revision_options import (
    add_allowed_registries_argument,
    add_helm_arguments,
    allowed_registries,
    configured_registry_options,
    configured_request,
    open_fetcher,
    values_from_files,
)
from kubegate.cli.scan_options import (
    add_db_arguments,
    add_db_update_arguments,
    add_policy_arguments,
)
from kubegate.config import DEFAULT_NAME as DEFAULT_CONFIG_NAME
from kubegate.config import Config, find_config, user_config_dir
from kubegate.decide.ignorefile import IgnoreFile
from kubegate.decide.policy import DEFAULT_DB_MAX_AGE, Policy, parse_duration
from kubegate.decide.trivyignore import DEFAULT_NAMES as IGNORE_NAMES
from kubegate.decide.trivyignore import find_exceptions_file, load_exceptions
from kubegate.decide.vex import VexSet, load_vex
from kubegate.display import visible
from kubegate.errors import ConfigError, UsageError
from kubegate.outfile import check_target, write_atomic
from kubegate.report.interface import GateFormat
from kubegate.trust import JudgedTree

# The pipeline is imported in ``run``: registering the command must stay cheap for every other
# command and for ``--help`` (start-up time counts, STYLE.md).
if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from kubegate.decide.gate import GateResult, PolicySource, Revision
    from kubegate.publish import DatabaseView, PublishOptions
    from kubegate.registry import RegistryOptions
    from kubegate.scan import Progress, ScanSettings
    from kubegate.source import SourceSpec
    from kubegate.transfer import TransferLimits

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
    add_helm_arguments(parser)
    add_policy_arguments(parser)
    parser.add_argument(
        "--ignorefile",
        type=Path,
        help="exceptions file; a name starting with .trivyignore is read in Trivy's format "
        f"(default: the first of {', '.join(IGNORE_NAMES)} in the user config directory or "
        "at --config-ref)",
    )
    parser.add_argument(
        "--vex",
        action="append",
        type=Path,
        metavar="FILE",
        help="OpenVEX document; not_affected and fixed statements suppress findings (repeatable)",
    )
    add_allowed_registries_argument(parser)
    parser.add_argument(
        "--pin-digests",
        type=Path,
        metavar="FILE",
        help="write a kustomize images: list pinning every scanned image to its scanned digest",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="configuration file (default: kubegate.yaml in the user config directory, "
        "$XDG_CONFIG_HOME/kubegate, or at --config-ref)",
    )
    parser.add_argument(
        "--config-ref",
        metavar="REF",
        help="read kubegate.yaml and the exceptions file from this ref of the judged git "
        "source (e.g. origin/main), so the approved revision's policy judges the new one",
    )
    parser.add_argument(
        "--trust-source-config",
        action="store_true",
        help="allow policy files (config, exceptions, VEX, variables, database) that lie inside "
        "the judged source; without it they are refused",
    )
    parser.add_argument(
        "--write-into-source",
        action="store_true",
        help="allow --output and --pin-digests files inside the judged source",
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
    add_limit_arguments(
        parser,
        default_timeout=DEFAULT_TIMEOUT,
        timeout_help="bound the whole scan; images not done by then are reported as not proven",
    )
    add_registry_arguments(parser)
    add_publish_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Scan the revision, write every report, return the verdict's exit code."""
    from kubegate.decide.gate import UnseenKind
    from kubegate.scan import read_revision
    from kubegate.source import local_root

    started = time.monotonic()
    outputs = _outputs(args)
    if args.concurrency < 1:
        raise UsageError("must be at least 1", where="--concurrency")
    limits = transfer_limits(args, started)
    spec = source_spec(args)
    judged = JudgedTree(
        root=local_root(spec),
        trust_config=args.trust_source_config,
        write_into=args.write_into_source,
    )
    # Refused before anything is fetched or pulled: a wrong output path is a usage error.
    for fmt, path in outputs:
        if path is not None:
            _check_output(judged, path, f"--output ({fmt.value})")
    if args.pin_digests is not None:
        _check_output(judged, args.pin_digests, "--pin-digests")
    with contextlib.ExitStack() as stack:
        loaded = load_policy(args, spec, judged, stack, limits)
        config, settings, db_path = loaded.config, loaded.settings, loaded.db_path
        options, publishing = loaded.registry, loaded.publishing
        # Checked before the database update: a bad --values-from file is a usage error.
        request = dataclasses.replace(
            configured_request(revision_request(args), args, config), deadline=limits.deadline
        )
        update_db(args, loaded, limits)
        from kubegate.publish import DatabaseView, Snapshot

        # --publish keeps a copy of exactly the tree that is judged (docs/publish.md).
        snapshot = Snapshot() if publishing else None
        with open_fetcher(
            options, allowed=settings.policy.registry_allowed, deadline=limits.deadline
        ) as fetcher:
            revision = read_revision(
                dataclasses.replace(request, fetcher=fetcher),
                on_checkout=snapshot.capture if snapshot else None,
            )
        _logger.info(
            "rendered %s: %s image use(s) of %s image(s)",
            revision.info.location,
            len(revision.images.uses),
            len({str(u.ref) for u in revision.images.uses}),
        )
        with _progress(args) as progress:
            result, updated = judge_revision(
                revision,
                settings,
                config,
                options,
                db_path,
                deadline=limits.deadline,
                workers=1 if args.concurrency > 1 else None,
                progress=progress,
                database=DatabaseView(db_path) if publishing else None,
            )
    result = dataclasses.replace(result, policy_source=loaded.source)
    _write_reports(result, outputs)
    if args.pin_digests is not None:
        _write_pins(result, args.pin_digests)
    _explain(result)
    code = result.exit_code
    if publishing is not None and snapshot is not None:
        code = publish_verdict(result, snapshot, publishing, options, updated)
    if any(item.kind is UnseenKind.TIMEOUT for item in result.unseen):
        # Worker threads may still wait on a registry; do not let them hold the exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """The policy ``scan`` and ``watch`` judge with (:func:`load_policy`)."""

    config: Config
    settings: ScanSettings
    #: Where the configuration and exceptions were actually read (every report names it).
    source: PolicySource
    registry: RegistryOptions
    #: ``--publish`` and the config's ``publish:`` (None: no publishing).
    publishing: PublishOptions | None
    db_path: Path


def load_policy(
    args: argparse.Namespace,
    spec: SourceSpec,
    judged: JudgedTree,
    stack: contextlib.ExitStack,
    limits: TransferLimits,
) -> LoadedPolicy:
    """Configuration, exceptions, VEX, settings, registry and publish options, as ``scan`` and
    ``watch`` read them.

    Every input file (config, its named paths, exceptions, VEX, variables, CA bundle, a local
    database mirror, the database itself) is checked against ``judged`` before it is read
    (exit 3 inside the judged source). A ``--config-ref`` checkout is entered on ``stack``.
    """
    from kubegate.scan import ScanSettings
    from kubegate.vulndb import resolve_db_path

    defaults, ref = _defaults_dir(args, spec, stack)
    implicit = defaults / DEFAULT_CONFIG_NAME
    if args.config is not None:
        judged.check_input(args.config, "--config")
    elif implicit.exists() or implicit.is_symlink():
        judged.check_input(implicit, "configuration file")
    config = find_config(args.config, defaults)
    for key, named in config.named_paths():
        judged.check_input(named, key, config=config.path)
    ignore = _ignore_file(args, config, defaults, judged, ref)
    for path in args.vex or ():
        judged.check_input(path, "--vex")
    for text in args.var_file:
        judged.check_input(Path(text), "--var-file")
    for path in values_from_files(args):
        judged.check_input(path, "--values-from")
    if args.ca_file is not None:
        judged.check_input(args.ca_file, "--ca-file")
    if args.db_source and "://" not in args.db_source:  # a local mirror directory
        judged.check_input(Path(args.db_source), "--db-source")
    settings = ScanSettings(
        policy=_policy(args, config),
        ignore=ignore,
        vex=load_vex(args.vex) if args.vex else VexSet(),
        max_age=_max_age(args, config),
        fail_open=args.fail_open or bool(config.policy.fail_open),
        concurrency=args.concurrency,
        timeout=args.timeout or None,
    )
    # --concurrency bounds the connections per registry too: at -c 1 each image's layers would
    # otherwise be walked by one worker per core, each with its own connection.
    registry = dataclasses.replace(
        configured_registry_options(args, config, limits), max_concurrency=args.concurrency
    )
    publishing = publish_options(args, config)
    db_path = Path(args.db) if args.db else config.db.path or resolve_db_path(None)
    judged.check_input(db_path, "--db" if args.db else "advisory database")
    # Named after what was read: --config/--ignorefile win over the --config-ref checkout.
    shown = _shown_in_ref(config.path, defaults, ref) if config.path else None
    source = dataclasses.replace(
        ref,
        config=str(shown or config.path) if config.path else None,
        exceptions=ignore.path,
    )
    return LoadedPolicy(config, settings, source, registry, publishing, db_path)


def update_db(args: argparse.Namespace, loaded: LoadedPolicy, limits: TransferLimits) -> None:
    """The scan's update step: a local source named in the config is the update (imported
    first, no network); else the OSV feeds (and the config's NVD and Debian tracker sources) are
    refreshed when older than 12 h, unless --skip-db-update (docs/db.md)."""
    from kubegate.cli.dbupdate import refresh_db

    db = loaded.config.db
    refresh_db(
        args,
        loaded.db_path,
        loaded.settings.max_age,
        local_sources=db.sources,
        limits=limits,
        nvd_source=db.nvd_source,
        tracker_source=db.debian_tracker_source,
    )


def judge_revision(
    revision: Revision,
    settings: ScanSettings,
    config: Config,
    options: RegistryOptions,
    db_path: Path,
    *,
    deadline: float | None,
    workers: int | None,
    progress: Progress | None = None,
    database: DatabaseView | None = None,
) -> tuple[GateResult, str | None]:
    """Resolve, inventory and match every image of ``revision`` (``scan`` and ``watch``): the
    verdict and, given the ``database`` view (publishing), the database's update time (the
    artifact's annotation)."""
    from kubegate.inventory import InventoryCache
    from kubegate.registry import RegistryClient
    from kubegate.scan import ImageInspector, scan_revision
    from kubegate.vulndb import VulnDB

    cache = InventoryCache()
    try:
        with VulnDB.open(db_path) as db, RegistryClient(options) as client:
            inspector = ImageInspector(client, cache, config.image_sources, workers=workers)
            result = scan_revision(
                revision, settings, inspector=inspector, db=db, deadline=deadline, progress=progress
            )
            summary = database.summary() if database is not None else None
            return result, summary.updated if summary is not None else None
    finally:
        cache.close()


def _check_output(judged: JudgedTree, path: Path, what: str) -> None:
    check_target(path, what)
    judged.check_output(path, what)


def _defaults_dir(
    args: argparse.Namespace, spec: SourceSpec, stack: contextlib.ExitStack
) -> tuple[Path, PolicySource]:
    """Where implicit policy files are read: the ``--config-ref`` checkout or the user config
    directory (kept for the whole scan: image sources in it are read while images are)."""
    from kubegate.decide.gate import PolicySource

    if args.config_ref is None:
        return user_config_dir(), PolicySource()
    from kubegate.source import open_policy_ref

    checkout = stack.enter_context(open_policy_ref(spec, args.config_ref))
    config = checkout.root / DEFAULT_CONFIG_NAME
    found = find_exceptions_file(checkout.root)
    for path in (config, found):
        if path is not None and path.is_symlink():
            raise ConfigError(
                f"{path.name} is a symbolic link at {args.config_ref}: policy files must be "
                "regular files",
                where="--config-ref",
            )
    return checkout.root, PolicySource(ref=args.config_ref, commit=checkout.commit)


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
        from rich.markup import escape

        # The item names an image of the revision: no markup, no control characters.
        label = escape(visible(item)[:60])
        self._bars.update(self._tasks[name], advance=1, description=f"{name}: {label}")


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
    return dataclasses.replace(policy, allowed_registries=allowed_registries(args, config))


def _max_age(args: argparse.Namespace, config: Config) -> timedelta:
    if args.db_max_age is not None:
        return parse_duration(args.db_max_age)
    if config.db.max_age is not None:
        try:
            return parse_duration(config.db.max_age, option="db.maxAge")
        except UsageError as exc:
            raise ConfigError(exc.diagnostics(), where=str(config.path)) from exc
    return DEFAULT_DB_MAX_AGE


def _ignore_file(
    args: argparse.Namespace,
    config: Config,
    defaults: Path,
    judged: JudgedTree,
    source: PolicySource,
) -> IgnoreFile:
    if args.ignorefile is not None:
        return load_exceptions(judged.check_input(args.ignorefile, "--ignorefile"))
    path = config.policy.ignorefile  # checked with the configuration's other paths
    if path is None:
        path = find_exceptions_file(defaults)
        if path is None:
            return IgnoreFile()
        judged.check_input(path, "exceptions file")
    return load_exceptions(path, _shown_in_ref(path, defaults, source))


def _shown_in_ref(path: Path, checkout: Path, source: PolicySource) -> Path | None:
    """``origin/main:.kubegateignore.yaml`` for a file of the ``--config-ref`` checkout."""
    if source.ref is None:
        return None
    try:
        relative = Path(os.path.realpath(path)).relative_to(os.path.realpath(checkout))
    except ValueError:
        return None
    return Path(f"{source.ref}:{relative.as_posix()}")


def _write_pins(result: GateResult, path: Path) -> None:
    from kubegate.report.pin import pin_document

    document = pin_document(result)
    for warning in document.warnings:
        print_line(f"warning: --pin-digests: {warning}")
    write_atomic(path, document.text, "--pin-digests")


def _write_reports(result: GateResult, outputs: list[tuple[GateFormat, Path | None]]) -> None:
    from kubegate.report.gate import render_gate_report

    for fmt, path in outputs:
        if path is None:
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            sys.stdout.write(render_gate_report(result, fmt, width))
            continue
        write_atomic(path, render_gate_report(result, fmt), f"--output ({fmt.value})")


def _explain(result: GateResult) -> None:
    """One stderr line per thing not proven: what CI logs show next to the exit code."""
    for item in result.blocking_unseen:
        origin = item.origin
        where = f"{origin.file}:{origin.line}: " if origin and origin.file else ""
        level = "warning" if result.fail_open else "error"
        print_line(f"{level}: not proven: {where}{item.message}")
    for problem in result.exception_problems:
        print_line(f"warning: {problem}")
    if result.fail_open and result.blocking_unseen:
        print_line(
            f"warning: --fail-open: {len(result.blocking_unseen)} thing(s) could not "
            "be proven clean and were let through"
        )
