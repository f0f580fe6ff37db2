"""Advisory-database updates as commands show them: options, progress, the scans' refresh.

Used by :mod:`kubegate.cli.db` (``db update``) and the image-judging commands (``image``,
``scan``) through :func:`refresh_db` (their flags: ``scan_options.add_db_update_arguments``).
Progress goes to stderr: rich bars on a TTY, plain log lines otherwise. Which feeds come first
by default is decided here from the inventory cache (the systems and package types of images
already scanned).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from kubegate.inventory.cache import seen_inventory
from kubegate.match.ecosystems import LANGUAGE_ECOSYSTEMS
from kubegate.transfer import DEFAULT_IDLE_TIMEOUT, TransferLimits
from kubegate.vulndb.importer import ImportStats
from kubegate.vulndb.nvdimport import NvdImportStats, TrackerImportStats
from kubegate.vulndb.update import (
    DEFAULT_SOURCE,
    EcosystemResult,
    FetchOptions,
    SeveritySources,
    UpdateProgress,
    default_ecosystems,
    ensure_updated,
    severity_sources,
)

_logger = logging.getLogger(__name__)

#: os-release ``ID`` -> the bucket directory of its advisories.
OS_FEEDS = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "rhel": "Red Hat",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "sles": "SUSE",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "wolfi": "Wolfi",
    "chainguard": "Chainguard",
}


def default_source() -> str:
    """``$KUBEGATE_DB_SOURCE`` (a mirror), else the public OSV bucket."""
    return os.environ.get("KUBEGATE_DB_SOURCE") or DEFAULT_SOURCE


def resolve_severity_sources(
    osv_source: str,
    *,
    nvd: str | None = None,
    tracker: str | None = None,
    config_nvd: str | None = None,
    config_tracker: str | None = None,
) -> SeveritySources:
    """NVD and tracker sources: flag, else environment, else config, else derived (docs/db.md).

    Without any of them: the public NVD feeds and tracker with the public OSV bucket, and the
    OSV mirror's ``nvd/`` and ``debian-tracker.json`` with a mirror (air-gapped).
    """
    return severity_sources(
        osv_source,
        nvd=nvd or os.environ.get("KUBEGATE_NVD_SOURCE") or config_nvd,
        tracker=tracker or os.environ.get("KUBEGATE_DEBIAN_TRACKER_SOURCE") or config_tracker,
    )


def seen_feeds() -> list[str]:
    """Feeds the images in the inventory cache need, distro feeds first."""
    seen = seen_inventory()
    os_ids = sorted({os_id for os_id, _ in seen.systems})
    feeds = [OS_FEEDS[os_id] for os_id in os_ids if os_id in OS_FEEDS]
    languages = LANGUAGE_ECOSYSTEMS
    feeds += [languages[t] for t in sorted(seen.package_types) if t in languages]
    return list(dict.fromkeys(feeds))


def ordered_defaults() -> tuple[str, ...]:
    """The default ecosystems of ``db update``, those seen in the inventory cache first."""
    return default_ecosystems(seen_feeds())


def _size(count: int | None) -> str:
    if count is None:
        return "size unknown"
    if count < 1 << 20:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1 << 20):.1f} MiB"


def describe(result: EcosystemResult) -> str:
    """One line for a finished feed (an OSV ecosystem, NVD or the Debian tracker)."""
    if result.error is not None:
        return f"{result.ecosystem}: update failed: {result.error.diagnostics()}"
    stats = result.stats
    if isinstance(stats, ImportStats):
        counts = (
            f": {stats.added} added, {stats.replaced} replaced, {stats.withdrawn} withdrawn, "
            f"{stats.invalid} invalid (skipped)"
        )
    elif isinstance(stats, NvdImportStats):
        counts = (
            f": {stats.added} added, {stats.replaced} replaced, {stats.unchanged} unchanged, "
            f"{stats.invalid} invalid (skipped)"
        )
    elif isinstance(stats, TrackerImportStats):
        counts = f": {stats.entries} CVE entries of {stats.packages} packages"
    else:
        counts = ""
    note = f"; {result.note}" if result.note else ""
    fetched = f" ({_size(result.downloaded)} fetched)" if result.downloaded else ""
    return f"{result.ecosystem}: {result.mode}{counts}{note}{fetched}"


class PlainProgress:
    """Log lines on stderr (CI, pipes)."""

    def planned(self, sizes: Sequence[tuple[str, int | None]]) -> None:
        """Announce the first full downloads and their sizes."""
        known = sum(size or 0 for _, size in sizes)
        listed = ", ".join(f"{eco} {_size(size)}" for eco, size in sizes)
        _logger.info("full download of %s feed(s), %s: %s", len(sizes), _size(known), listed)

    def started(self, ecosystem: str, what: str, total: int | None) -> None:
        """One line per transfer."""
        if what == "bytes":
            _logger.info("%s: downloading all.zip (%s)", ecosystem, _size(total))
        elif what == "file":
            _logger.info("%s: downloading", ecosystem)
        elif what == "import":
            _logger.info("%s: importing", ecosystem)
        else:
            _logger.info("%s: fetching %s changed record(s)", ecosystem, total)

    def advanced(self, ecosystem: str, amount: int) -> None:
        """Nothing per chunk off a TTY."""

    def finished(self, result: EcosystemResult) -> None:
        """The outcome (failures are reported by the caller)."""
        if result.error is None:
            _logger.info("%s", describe(result))


class _Amount(ProgressColumn):
    """Bytes for downloads, a count for records, nothing while importing."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit")
        if unit in {"bytes", "file"}:
            total = "?" if task.total is None else _size(int(task.total))
            return Text(f"{_size(int(task.completed))} / {total}")
        if unit == "records":
            return Text(f"{int(task.completed)} / {int(task.total or 0)} records")
        return Text("")


class RichProgress:
    """Bars on a TTY (stderr), one per transfer; the outcome lines are the command's."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def planned(self, sizes: Sequence[tuple[str, int | None]]) -> None:
        """Print the size of the first full downloads before they start."""
        known = sum(size or 0 for _, size in sizes)
        listed = ", ".join(f"{eco} {_size(size)}" for eco, size in sizes)
        self._progress.console.print(
            f"full download of {len(sizes)} feed(s), {_size(known)}: {listed}",
            highlight=False,
            soft_wrap=True,
        )

    def started(self, ecosystem: str, what: str, total: int | None) -> None:
        """A new bar (replacing the ecosystem's previous one)."""
        previous = self._tasks.pop(ecosystem, None)
        if previous is not None:
            self._progress.remove_task(previous)
        label = {"bytes": "all.zip", "records": "records", "file": "download"}.get(
            what, "importing"
        )
        # The import reports no steps: a pulsing bar (no total) rather than one stuck at 0.
        self._tasks[ecosystem] = self._progress.add_task(
            f"{ecosystem} {label}", total=None if what == "import" else total, unit=what
        )

    def advanced(self, ecosystem: str, amount: int) -> None:
        """Move the bar."""
        task = self._tasks.get(ecosystem)
        if task is not None:
            self._progress.advance(task, amount)

    def finished(self, result: EcosystemResult) -> None:
        """Drop the bar."""
        task = self._tasks.pop(result.ecosystem, None)
        if task is not None:
            self._progress.remove_task(task)


@contextmanager
def update_progress(quiet: bool = False) -> Iterator[UpdateProgress]:
    """Rich bars when stderr is a terminal (and not ``-q``), plain lines otherwise."""
    if quiet or not sys.stderr.isatty():
        yield PlainProgress()
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        _Amount(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield RichProgress(progress)


def fetch_options(args: argparse.Namespace, limits: TransferLimits | None) -> FetchOptions:
    """The command's idle timeout (``--idle-timeout``), rate floor and deadline for downloads."""
    return FetchOptions(
        timeout=getattr(args, "idle_timeout", DEFAULT_IDLE_TIMEOUT),
        limits=limits or TransferLimits(),
    )


def refresh_db(
    args: argparse.Namespace,
    db_path: Path,
    max_age: timedelta,
    local_sources: Sequence[Path] = (),
    limits: TransferLimits | None = None,
    *,
    nvd_source: str | None = None,
    tracker_source: str | None = None,
) -> None:
    """The scans' update step (docs/db.md "Freshness"); VulnDBError (exit 2) when it must stop.

    For a single image the needed feeds are only known after its inventory, so a missing
    database gets the default list (seen feeds first) and an existing one refreshes the feeds it
    already holds; the scan's own freshness check then rejects a feed the image needs but the
    database lacks.
    """
    source = getattr(args, "db_source", None) or default_source()
    with update_progress(getattr(args, "quiet", False)) as progress:
        ensure_updated(
            db_path,
            options=fetch_options(args, limits),
            ecosystems=None if db_path.is_file() else ordered_defaults(),
            source=source,
            skip=bool(getattr(args, "skip_db_update", False)),
            max_age=max_age,
            local_sources=local_sources,
            progress=progress,
            severity=resolve_severity_sources(
                source, config_nvd=nvd_source, config_tracker=tracker_source
            ),
        )
