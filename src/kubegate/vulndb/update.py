"""``kubegate db update`` and the scans' automatic refresh: keep the database current from OSV.

Called by :mod:`kubegate.cli.db` (:func:`update`) and by the image-judging commands
(:func:`ensure_updated`). Per base ecosystem (``Debian``), either a **full** fetch
(``<Ecosystem>/all.zip``, when the database holds no update cursor for it, or when more records
changed than an incremental update is worth) or an **incremental** one: ``modified_id.csv``
(``<RFC3339>,<ID>``, newest first) is read until the newest timestamp already applied (the
cursor), and each changed ``<ID>.json`` is fetched.

Atomicity: everything is downloaded into a private temp dir next to the database first (capped
sizes, zip central directory checked), then applied by the importer in **one transaction per
ecosystem**, the new cursor included. A failure or ``kill -9`` before the commit applies nothing
for that ecosystem; ecosystems already committed stay (each is consistent on its own). One
update at a time per database file (an advisory ``flock``); temp dirs left by a killed update
are removed by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from kubegate.errors import VulnDBError
from kubegate.vulndb.feeds import (
    DEFAULT_ECOSYSTEMS,
    DEFAULT_SOURCE,
    KNOWN_ECOSYSTEMS,
    default_ecosystems,
    parse_ecosystems,
)
from kubegate.vulndb.fetch import (
    Bucket,
    FetchOptions,
    NotInBucket,
    Unreachable,
    object_path,
    open_bucket,
)
from kubegate.vulndb.importer import (
    MAX_RECORD_BYTES,
    ImportStats,
    check_paths,
    import_records,
    iter_sources,
)
from kubegate.vulndb.nvdimport import (
    NvdImportStats,
    TrackerImportStats,
    classify,
    feed_file,
    import_nvd,
    import_tracker,
    stamp_tracker,
)
from kubegate.vulndb.nvdupdate import (
    DEFAULT_NVD_SOURCE,
    DEFAULT_TRACKER_SOURCE,
    SeveritySources,
    check_sources,
    nvd_cursors,
    severity_sources,
    update_nvd,
    update_tracker,
)
from kubegate.vulndb.records import InvalidRecord
from kubegate.vulndb.store import TRACKER_LOCAL, VulnDB

_logger = logging.getLogger(__name__)

#: A scan refreshes an ecosystem whose last update is older than this.
UPDATE_INTERVAL = timedelta(hours=12)
_CURSOR = "osv-cursor:"
_LOCAL = "local-source:"
_TEMP_PREFIX = ".kubegate-update-"
_FETCH_WORKERS = 8
#: OSV ids as the bucket names them (``GHSA-…``, ``RHSA-2024:1234``): no path separators.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}$")


@dataclass(frozen=True, slots=True)
class UpdateLimits:
    """Size caps of one update (the inputs are untrusted)."""

    max_zip_bytes: int = 4 << 30
    max_index_bytes: int = 512 << 20
    max_record_bytes: int = MAX_RECORD_BYTES
    #: More changed records than this: fetching ``all.zip`` is cheaper than one request each.
    incremental_max: int = 5000
    #: Members of one all.zip (the largest real feeds hold a few hundred thousand).
    max_members: int = 5_000_000
    #: One NVD feed file (gzipped; the largest yearly feeds are a few hundred MB).
    max_nvd_bytes: int = 4 << 30
    #: The Debian tracker JSON (about 100 MB today).
    max_tracker_bytes: int = 2 << 30


@dataclass(frozen=True, slots=True)
class EcosystemResult:
    """What happened to one feed: ``full``, ``incremental``, ``unchanged``, ``absent`` or an error.

    A feed is an OSV ecosystem, ``NVD`` or ``Debian tracker`` (``optional``: its failure only
    warns).
    """

    ecosystem: str
    mode: str
    stats: ImportStats | NvdImportStats | TrackerImportStats | None = None
    downloaded: int = 0
    error: VulnDBError | None = None
    optional: bool = False
    #: Extra words for the outcome line (``2 feed(s) fetched, 23 unchanged``).
    note: str = ""


class UpdateProgress(Protocol):
    """What the CLI shows while an update runs (stderr; bars on a TTY, lines otherwise)."""

    def planned(self, sizes: Sequence[tuple[str, int | None]]) -> None:
        """The ecosystems about to be fully downloaded and their sizes, before any download."""

    def started(self, ecosystem: str, what: str, total: int | None) -> None:
        """A stage begins: ``bytes`` (all.zip), ``records`` (incremental) or ``import``."""

    def advanced(self, ecosystem: str, amount: int) -> None:
        """Some bytes or records arrived."""

    def finished(self, result: EcosystemResult) -> None:
        """An ecosystem is done (applied, unchanged or failed)."""


class _Silent:
    def planned(self, sizes: Sequence[tuple[str, int | None]]) -> None:
        pass

    def started(self, ecosystem: str, what: str, total: int | None) -> None:
        pass

    def advanced(self, ecosystem: str, amount: int) -> None:
        pass

    def finished(self, result: EcosystemResult) -> None:
        pass


def _parse_time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise VulnDBError(f"bad timestamp {text[:40]!r} in modified_id.csv", where=where) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_line(line: str, where: str) -> tuple[datetime, str, str]:
    stamp, _, record_id = line.partition(",")
    record_id = record_id.strip()
    if not _ID.match(record_id):
        raise VulnDBError(f"bad record id {record_id[:60]!r} in modified_id.csv", where=where)
    return _parse_time(stamp, where), stamp.strip(), record_id


@contextlib.contextmanager
def _update_lock(db_path: Path) -> Iterator[None]:
    """One updater per database file; the next one waits, then finds the work done."""
    lock_path = db_path.with_name(db_path.name + ".update-lock")
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a")
    except OSError as exc:
        raise VulnDBError(
            f"cannot lock the database for an update: {exc.strerror}", where=str(lock_path)
        ) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _logger.info("waiting for another update of %s", db_path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class _Held:
    """What the database holds, as an update decides from it (read on one connection)."""

    #: Last import per base ecosystem.
    ecosystems: dict[str, datetime]
    #: The update cursor per base ecosystem.
    cursors: dict[str, str]
    #: Last NVD and Debian tracker imports (None: never).
    nvd: datetime | None = None
    tracker: datetime | None = None
    #: False: no database file yet.
    exists: bool = True


def _held(db_path: Path) -> _Held:
    """The update state of the database; empty for a missing one."""
    if not db_path.is_file():
        return _Held({}, {}, exists=False)
    with VulnDB(db_path) as db:
        nvd = db.nvd_status()
        return _Held(
            {eco.ecosystem: eco.last_import for eco in db.ecosystem_statuses()},
            {key[len(_CURSOR) :]: value for key, value in db.meta(_CURSOR).items()},
            nvd.last_import if nvd is not None else None,
            db.debian_tracker_status(),
        )


class _Updater:
    """One update run over one bucket, inside the lock and a private temp dir."""

    def __init__(
        self,
        db_path: Path,
        bucket: Bucket,
        limits: UpdateLimits,
        progress: UpdateProgress,
        now: datetime | None,
        workdir: Path,
    ) -> None:
        self.db_path = db_path
        self.bucket = bucket
        self.limits = limits
        self.progress = progress
        self.now = now
        self.workdir = workdir

    def _apply(
        self,
        ecosystem: str,
        sources: Iterable[tuple[str, bytes | InvalidRecord]],
        cursor: str | None,
    ) -> ImportStats:
        meta = {f"{_CURSOR}{ecosystem}": cursor} if cursor else {}
        return import_records(
            self.db_path,
            sources,
            now=self.now or datetime.now(UTC),
            stamp={ecosystem},
            meta=meta,
        )

    def _newest_line(self, ecosystem: str) -> str | None:
        path = object_path(ecosystem, "modified_id.csv")
        try:
            with self.bucket.lines(path, self.limits.max_index_bytes) as lines:
                for line in lines:
                    if line.strip():
                        return _parse_line(line, f"{self.bucket.where}{path}")[1]
        except NotInBucket:
            _logger.info("%s: no modified_id.csv: the next update is a full one too", ecosystem)
        return None

    def full(self, ecosystem: str, size: int | None) -> EcosystemResult:
        """Download all.zip, check it, import it with the cursor read just before."""
        # The cursor is read before the zip: a record changed in between is fetched again next
        # time (harmless, the newest copy wins), never missed.
        cursor = self._newest_line(ecosystem)
        path = object_path(ecosystem, "all.zip")
        archive = self.workdir / f"{len(list(self.workdir.iterdir()))}.zip"
        self.progress.started(ecosystem, "bytes", size)
        with archive.open("wb") as handle:
            downloaded = self.bucket.download(
                path,
                handle,
                self.limits.max_zip_bytes,
                lambda n: self.progress.advanced(ecosystem, n),
            )
        try:
            with zipfile.ZipFile(archive) as checked:
                members = len(checked.infolist())
                records = sum(1 for m in checked.infolist() if m.filename.endswith(".json"))
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise VulnDBError(
                f"downloaded all.zip is not a valid zip ({exc}); nothing applied",
                where=f"{self.bucket.where}{path}",
            ) from exc
        if members > self.limits.max_members:
            raise VulnDBError(
                f"all.zip has {members} members, more than the {self.limits.max_members} allowed",
                where=f"{self.bucket.where}{path}",
            )
        if records == 0:
            # Every feed kubegate follows holds thousands of records: an empty one is a broken
            # or hostile mirror, and taking it as a full update would call the ecosystem fresh.
            raise VulnDBError(
                "all.zip holds no advisory records; nothing applied",
                where=f"{self.bucket.where}{path}",
            )
        _logger.debug("%s: all.zip has %s members", ecosystem, members)
        self.progress.started(ecosystem, "import", members)
        stats = self._apply(ecosystem, iter_sources([archive]), cursor)
        archive.unlink()
        return EcosystemResult(ecosystem, "full", stats, downloaded)

    def _changed(self, ecosystem: str, cursor: str) -> tuple[list[str], str] | None:
        """Ids changed after ``cursor`` and the newest timestamp; None when a full fetch is due."""
        path = object_path(ecosystem, "modified_id.csv")
        where = f"{self.bucket.where}{path}"
        held = _parse_time(cursor, "database cursor")
        changed: dict[str, None] = {}
        newest = cursor
        with self.bucket.lines(path, self.limits.max_index_bytes) as lines:
            for line in lines:
                if not line.strip():
                    continue
                stamp, text, record_id = _parse_line(line, where)
                if stamp <= held:
                    break
                if not changed:
                    newest = text
                changed[record_id] = None
                if len(changed) > self.limits.incremental_max:
                    return None
        return list(changed), newest

    def incremental(self, ecosystem: str, cursor: str) -> EcosystemResult:
        """Fetch each record changed since ``cursor``; apply them all or nothing."""
        try:
            found = self._changed(ecosystem, cursor)
        except NotInBucket:
            found = None
        if found is None:
            _logger.info("%s: many changes (or no index): full download", ecosystem)
            return self.full(ecosystem, self._size(ecosystem))
        ids, newest = found
        if not ids:
            stats = self._apply(ecosystem, [], newest)
            return EcosystemResult(ecosystem, "unchanged", stats)
        directory = self.workdir / f"{ecosystem.replace(' ', '_')}-records"
        directory.mkdir()
        self.progress.started(ecosystem, "records", len(ids))

        def fetch(item: tuple[int, str]) -> int:
            index, record_id = item
            path = object_path(ecosystem, f"{record_id}.json")
            try:
                data = self.bucket.read(path, self.limits.max_record_bytes)
            except NotInBucket:
                # Listed but gone (removed upstream since the index was written): nothing to add.
                _logger.warning("%s: %s is listed but not in the bucket", ecosystem, record_id)
                return 0
            # Named by position, never by the (untrusted) id.
            (directory / f"{index:07d}.json").write_bytes(data)
            self.progress.advanced(ecosystem, 1)
            return len(data)

        # Records are small: latency, not bandwidth, bounds this; a few requests in flight.
        # The first failure is re-raised (the rest cancelled) and nothing is applied.
        with ThreadPoolExecutor(max_workers=_FETCH_WORKERS) as pool:
            futures = [pool.submit(fetch, item) for item in enumerate(ids)]
            try:
                downloaded = sum(future.result() for future in futures)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        self.progress.started(ecosystem, "import", len(ids))
        stats = self._apply(ecosystem, iter_sources([directory]), newest)
        shutil.rmtree(directory)
        return EcosystemResult(ecosystem, "incremental", stats, downloaded)

    def _size(self, ecosystem: str) -> int | None:
        try:
            return self.bucket.size(object_path(ecosystem, "all.zip"))
        except Unreachable:
            raise
        except VulnDBError:
            return None  # the GET that follows reports the real problem


def _clean_stale_temp(directory: Path) -> None:
    """Remove temp dirs of updates killed before their cleanup (we hold the lock)."""
    for stale in directory.glob(f"{_TEMP_PREFIX}*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _run(
    db_path: Path,
    ecosystems: Sequence[str],
    bucket: Bucket,
    limits: UpdateLimits,
    progress: UpdateProgress,
    now: datetime | None,
    severity: SeveritySources | None = None,
    options: FetchOptions | None = None,
) -> list[EcosystemResult]:
    _clean_stale_temp(db_path.parent)
    cursors = _held(db_path).cursors
    try:
        workdir = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=db_path.parent))
    except OSError as exc:
        raise VulnDBError(f"cannot create a temp dir: {exc}", where=str(db_path.parent)) from exc
    try:
        updater = _Updater(db_path, bucket, limits, progress, now, workdir)
        results: list[EcosystemResult] = []
        unreachable: VulnDBError | None = None
        sizes: dict[str, int | None] = {}
        try:
            sizes = {eco: updater._size(eco) for eco in ecosystems if eco not in cursors}
        except Unreachable as exc:
            unreachable = exc
        if sizes:
            progress.planned(list(sizes.items()))
        for eco in ecosystems:
            if unreachable is not None:
                result = EcosystemResult(eco, "failed", error=unreachable)
            else:
                try:
                    cursor = cursors.get(eco)
                    if cursor is None:
                        result = updater.full(eco, sizes.get(eco))
                    else:
                        result = updater.incremental(eco, cursor)
                except Unreachable as exc:
                    unreachable = exc
                    result = EcosystemResult(eco, "failed", error=exc)
                except VulnDBError as exc:
                    result = EcosystemResult(eco, "failed", error=exc)
                except OSError as exc:
                    error = VulnDBError(f"update failed: {exc}", where=str(workdir))
                    result = EcosystemResult(eco, "failed", error=error)
            progress.finished(result)
            results.append(result)
        if severity is not None:
            run = _SeverityRun(db_path, workdir, limits, progress, now, options, unreachable)
            if severity.nvd is not None:
                results.append(run.nvd(severity.nvd, severity.nvd_derived))
            if severity.tracker is not None:
                results.append(run.tracker(severity.tracker, severity.tracker_derived))
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _SeverityRun:
    """NVD and the Debian tracker after the OSV feeds, in the same lock and temp dir."""

    def __init__(
        self,
        db_path: Path,
        workdir: Path,
        limits: UpdateLimits,
        progress: UpdateProgress,
        now: datetime | None,
        options: FetchOptions | None,
        unreachable: VulnDBError | None,
    ) -> None:
        self.db_path = db_path
        self.workdir = workdir
        self.limits = limits
        self.progress = progress
        self.now = now or datetime.now(UTC)
        self.options = options
        #: The OSV mirror was unreachable: sources derived from it fail at once, not again.
        self.unreachable = unreachable

    def _stage(self, label: str, stage: str, total: int | None) -> None:
        # The end of a feed's download is an outcome of its own, not a new stage.
        if stage == "done":
            self.progress.finished(EcosystemResult(label, "downloaded"))
        else:
            self.progress.started(label, stage, total)

    def nvd(self, source: str, derived: bool) -> EcosystemResult:
        if derived and self.unreachable is not None:
            result = EcosystemResult("NVD", "failed", error=self.unreachable)
            self.progress.finished(result)
            return result
        try:
            outcome = update_nvd(
                self.db_path,
                source,
                derived=derived,
                workdir=self.workdir,
                now=self.now,
                max_bytes=self.limits.max_nvd_bytes,
                options=self.options,
                on_stage=self._stage,
                on_amount=self.progress.advanced,
            )
            note = (
                f"{len(outcome.fetched)} feed(s) fetched, {len(outcome.unchanged)} unchanged"
                if outcome.mode != "absent"
                else "no NVD feeds in the mirror"
            )
            stats = None if outcome.mode == "absent" else outcome.stats
            result = EcosystemResult("NVD", outcome.mode, stats, outcome.downloaded, note=note)
        except VulnDBError as exc:
            result = EcosystemResult("NVD", "failed", error=exc)
        except OSError as exc:
            error = VulnDBError(f"update failed: {exc}", where=str(self.workdir))
            result = EcosystemResult("NVD", "failed", error=error)
        self.progress.finished(result)
        return result

    def tracker(self, source: str, derived: bool) -> EcosystemResult:
        label = "Debian tracker"
        if derived and self.unreachable is not None:
            result = EcosystemResult(label, "failed", error=self.unreachable, optional=True)
            self.progress.finished(result)
            return result
        self.progress.started(label, "file", None)
        try:
            stats, downloaded = update_tracker(
                self.db_path,
                source,
                derived=derived,
                workdir=self.workdir,
                now=self.now,
                max_bytes=self.limits.max_tracker_bytes,
                options=self.options,
                on_amount=self.progress.advanced,
            )
            if stats is None:
                result = EcosystemResult(label, "absent", optional=True, note="not in the mirror")
            else:
                result = EcosystemResult(label, "full", stats, downloaded, optional=True)
        except VulnDBError as exc:
            result = EcosystemResult(label, "failed", error=exc, optional=True)
        except OSError as exc:
            error = VulnDBError(f"update failed: {exc}", where=str(self.workdir))
            result = EcosystemResult(label, "failed", error=error, optional=True)
        self.progress.finished(result)
        return result


def update(
    db_path: Path,
    ecosystems: Sequence[str] = DEFAULT_ECOSYSTEMS,
    *,
    source: str = DEFAULT_SOURCE,
    options: FetchOptions | None = None,
    limits: UpdateLimits | None = None,
    progress: UpdateProgress | None = None,
    now: datetime | None = None,
    severity: SeveritySources | None = None,
) -> list[EcosystemResult]:
    """Update each of ``ecosystems`` (validated names) from ``source``; failures are in results.

    With ``severity``, NVD and the Debian tracker follow (results ``NVD`` and ``Debian
    tracker``, the latter ``optional``). Raises UsageError for a bad ``source``; a network or
    data problem only fails its feed (an unreachable source fails all that remain without
    further waiting).
    """
    if severity is not None:
        check_sources(severity)
    bucket = open_bucket(source, options)
    try:
        with _update_lock(db_path):
            return _run(
                db_path,
                ecosystems,
                bucket,
                limits or UpdateLimits(),
                progress or _Silent(),
                now,
                severity,
                options,
            )
    finally:
        bucket.close()


def ensure_updated(
    db_path: Path,
    *,
    ecosystems: Sequence[str] | None = None,
    source: str = DEFAULT_SOURCE,
    skip: bool = False,
    max_age: timedelta,
    local_sources: Sequence[Path] = (),
    interval: timedelta = UPDATE_INTERVAL,
    options: FetchOptions | None = None,
    limits: UpdateLimits | None = None,
    progress: UpdateProgress | None = None,
    now: datetime | None = None,
    severity: SeveritySources | None = None,
) -> list[EcosystemResult]:
    """The scans' refresh before matching (docs/db.md "Freshness").

    ``local_sources`` (config ``db.import``) are the update: imported when changed, no network.
    Otherwise, unless ``skip``: a missing database gets ``ecosystems`` (default: the default
    list); an existing one refreshes ``ecosystems`` or, by default, every known ecosystem it
    holds, each only if its last update is older than ``interval``. A failed update warns and
    goes on while the ecosystem's data is younger than ``max_age``; otherwise VulnDBError (exit
    2). Ecosystems the database never held are left to the scan's own freshness check.

    ``severity`` sources (NVD, the Debian tracker) are refreshed the same way: fetched for a
    missing database, refreshed when held and older than ``interval``, never fetched for the
    first time into an existing database (that is ``kubegate db update``'s job). Their failure
    only warns: the matcher judges findings left without a severity source.
    """
    if local_sources:
        import_local_sources(db_path, local_sources, now=now)
        return []
    if skip:
        return []
    now = now or datetime.now(UTC)
    bucket = open_bucket(source, options)

    def stale_now() -> tuple[dict[str, datetime], list[str], SeveritySources | None]:
        state = _held(db_path)
        held = state.ecosystems
        default = [eco for eco in held if eco in KNOWN_ECOSYSTEMS] if held else DEFAULT_ECOSYSTEMS
        wanted = list(ecosystems or default)
        stale = [eco for eco in wanted if eco not in held or now - held[eco] > interval]
        return held, stale, _stale_severity(state, severity, interval, now)

    try:
        # Checked before locking: a fresh database (even a read-only one) needs no lock.
        held, stale, extra = stale_now()
        if not stale and extra is None:
            return []
        try:
            with _update_lock(db_path):
                held, stale, extra = stale_now()  # another process may have just updated it
                if not stale and extra is None:
                    return []
                _logger.info(
                    "updating the advisory database: %s",
                    ", ".join([*stale, *_names(extra)]),
                )
                results = _run(
                    db_path,
                    stale,
                    bucket,
                    limits or UpdateLimits(),
                    progress or _Silent(),
                    now,
                    extra,
                    options,
                )
        except VulnDBError as exc:
            results = [EcosystemResult(eco, "failed", error=exc) for eco in stale]
    finally:
        bucket.close()
    _judge_failures(db_path, [r for r in results if r.ecosystem in stale], held, max_age, now)
    # Only warnings: --db-max-age and the matcher's rule for findings left without any
    # severity source decide what missing or old NVD data means for a scan.
    for result in results:
        if result.ecosystem not in stale and result.error is not None:
            _logger.warning(
                "could not update %s, going on with the data held: %s",
                result.ecosystem,
                result.error.diagnostics(),
            )
    return results


def _names(severity: SeveritySources | None) -> list[str]:
    if severity is None:
        return []
    return [
        name
        for name, source in (("NVD", severity.nvd), ("Debian tracker", severity.tracker))
        if source
    ]


def _stale_severity(
    held: _Held, severity: SeveritySources | None, interval: timedelta, now: datetime
) -> SeveritySources | None:
    """The severity sources a scan's refresh must fetch now (None: none)."""
    if severity is None:
        return None
    if not held.exists:
        return severity
    nvd, tracker = held.nvd, held.tracker
    nvd_due = nvd is not None and now - nvd > interval
    tracker_due = tracker is not None and now - tracker > interval
    if not nvd_due and not tracker_due:
        return None
    return SeveritySources(
        severity.nvd if nvd_due else None,
        severity.tracker if tracker_due else None,
        severity.nvd_derived,
        severity.tracker_derived,
    )


def _judge_failures(
    db_path: Path,
    results: Sequence[EcosystemResult],
    held: dict[str, datetime],
    max_age: timedelta,
    now: datetime,
) -> None:
    failed = [(r.ecosystem, r.error) for r in results if r.error is not None]
    if not failed:
        return
    usable = len(failed) < len(results) or bool(held)
    for ecosystem, error in failed:
        last = held.get(ecosystem)
        reason = error.diagnostics()
        if not usable:
            raise VulnDBError(
                f"no advisory database and the update failed: {reason}", where=str(db_path)
            )
        if last is not None and now - last > max_age:
            raise VulnDBError(
                f"cannot update {ecosystem} advisories ({reason}) and they are older "
                "than --db-max-age",
                where=str(db_path),
            )
        _logger.warning(
            "could not update %s advisories, going on with %s: %s",
            ecosystem,
            f"data from {last:%Y-%m-%d %H:%M} UTC" if last else "none",
            reason,
        )


def _fingerprint(path: Path) -> str:
    """Size and mtime of a file, or of every file under a directory: changed -> re-import."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parts = []
    for file in files:
        stat = file.stat()
        name = "" if file == path else str(file.relative_to(path))
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def import_local_sources(
    db_path: Path, paths: Sequence[Path], *, now: datetime | None = None
) -> ImportStats:
    """Import configured local sources (config ``db.import``): at every scan, they are the update.

    No network. OSV zips/directories, NVD feed files (or directories of them) and the Debian
    tracker JSON are told apart as ``db import`` does. Unchanged records are counted as
    unchanged and not rewritten, but the import stamps their ecosystems (and NVD) as updated
    now, as the issue's demo requires ("fresh by construction"); a large mirror is better
    served by ``kubegate db update --source DIR``, which is incremental (docs/db.md). NVD feeds
    whose ``.meta`` sha256 was already imported are not parsed again, nor a tracker file whose
    size and mtime are those of the snapshot held (both are only stamped as updated now).
    """
    check_paths(paths)
    kinds = classify(paths)
    prints = {f"{_LOCAL}{path.resolve()}": _fingerprint(path) for path in kinds.osv}
    with _update_lock(db_path):
        stats = (
            import_records(db_path, iter_sources(kinds.osv), now=now, meta=prints)
            if kinds.osv
            else ImportStats()
        )
        if kinds.nvd:
            held = nvd_cursors(db_path)
            feeds = [feed_file(path) for path in kinds.nvd]
            changed = [f for f in feeds if f.sha256 is None or held.get(f.name) != f.sha256]
            import_nvd(db_path, changed, now=now)
        for path in kinds.tracker:
            # The tracker is a full snapshot of ~100 MB: re-read only when the file changed
            # (or another tracker import replaced the snapshot since).
            local = f"{path.resolve()}|{_fingerprint(path)}"
            if _held_tracker(db_path) == local:
                stamp_tracker(db_path, now=now)
            else:
                import_tracker(db_path, path, now=now, local=local)
        return stats


def _held_tracker(db_path: Path) -> str | None:
    """The local source the held tracker snapshot came from (None: none, or no database)."""
    if not db_path.is_file():
        return None
    with VulnDB(db_path) as db:
        return db.meta(TRACKER_LOCAL).get(TRACKER_LOCAL)


__all__ = [
    "DEFAULT_ECOSYSTEMS",
    "DEFAULT_NVD_SOURCE",
    "DEFAULT_SOURCE",
    "DEFAULT_TRACKER_SOURCE",
    "KNOWN_ECOSYSTEMS",
    "EcosystemResult",
    "FetchOptions",
    "SeveritySources",
    "UpdateLimits",
    "UpdateProgress",
    "default_ecosystems",
    "ensure_updated",
    "import_local_sources",
    "parse_ecosystems",
    "severity_sources",
    "update",
]
