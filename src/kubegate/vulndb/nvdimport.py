"""Import NVD 2.0 feed files and the Debian security tracker JSON into the advisory database.

Called by ``kubegate db import`` (through :func:`classify`, which tells them from OSV input by
content) and by :mod:`kubegate.vulndb.update` (``db update``). As for OSV, each call is **one
SQLite transaction** under the rollback journal: a bad ``.meta`` checksum, a truncated gzip, a
malformed document or a ``kill -9`` anywhere leaves the database as it was. Feeds are streamed
(:class:`kubegate.vulndb.nvd.FeedReader`), never loaded whole; CVEs are written in batches.
The same CVE seen again keeps the newest ``lastModified``. The tracker is a full snapshot: an
import replaces every urgency held before.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import multiprocessing
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kubegate.errors import VulnDBError
from kubegate.vulndb import nvd as nvd_format
from kubegate.vulndb.importer import BATCH, LOGGED_INVALID
from kubegate.vulndb.jsonstream import JSONStream
from kubegate.vulndb.nvd import (
    MAX_META_BYTES,
    FeedReader,
    feed_name,
    is_nvd_feed,
    meta_path,
    parse_meta,
    sniff,
)
from kubegate.vulndb.records import InvalidRecord, utc_text
from kubegate.vulndb.store import (
    NVD_COUNT,
    NVD_LAST_FULL,
    NVD_LAST_IMPORT,
    NVD_NEWEST,
    NVD_SHA,
    TRACKER_ENTRIES,
    TRACKER_LAST_IMPORT,
    TRACKER_LOCAL,
    chunks,
    transaction,
)

_logger = logging.getLogger(__name__)

#: One package's entries in the tracker (the Linux kernel's are the largest, a few MB).
_MAX_PACKAGE_CHARS = 256 * 1024 * 1024
_TRACKER_SNIFF = re.compile(rb'^\s*\{\s*"[^"\\]+"\s*:\s*\{\s*"(?:CVE|TEMP)-')


@dataclass(frozen=True, slots=True)
class NvdFeedFile:
    """One feed file to import: its path, feed name (``nvdcve-2.0-2024``) and expected sha256."""

    path: Path
    name: str
    #: Upper-case hex sha256 of the uncompressed JSON (from its ``.meta``); None: not checked.
    sha256: str | None = None


@dataclass(slots=True)
class NvdImportStats:
    """Counts reported by ``db import``/``db update`` for NVD feeds."""

    read: int = 0
    added: int = 0
    replaced: int = 0
    #: CVEs already held with the same or a newer ``lastModified``.
    unchanged: int = 0
    invalid: int = 0
    files: int = 0
    #: sha256 (upper-case hex) of each imported feed, by feed name.
    digests: dict[str, str] = field(default_factory=dict)


def feed_file(path: Path, *, require_meta: bool = False) -> NvdFeedFile:
    """A feed file and the sha256 of the ``.meta`` beside it (mandatory with ``require_meta``)."""
    meta = meta_path(path)
    sha: str | None = None
    if meta.is_file():
        try:
            with meta.open("rb") as handle:
                data = handle.read(MAX_META_BYTES + 1)
        except OSError as exc:
            raise VulnDBError(f"cannot read: {exc.strerror}", where=str(meta)) from exc
        if len(data) > MAX_META_BYTES:
            raise VulnDBError(
                f"larger than {MAX_META_BYTES} bytes: not an NVD .meta file", where=str(meta)
            )
        sha = parse_meta(data.decode("utf-8", "replace"), str(meta)).sha256
    elif require_meta:
        raise VulnDBError("no .meta file beside the NVD feed", where=str(path))
    return NvdFeedFile(path, feed_name(path), sha)


@dataclass(frozen=True, slots=True)
class Classified:
    """``db import`` inputs sorted by kind."""

    osv: tuple[Path, ...]
    nvd: tuple[Path, ...]
    tracker: tuple[Path, ...]


def is_tracker(head: bytes) -> bool:
    """Whether sniffed content looks like the Debian tracker (``{"pkg": {"CVE-...": ...``)."""
    return _TRACKER_SNIFF.match(head) is not None


def _kind(path: Path) -> str:
    if path.name.endswith((".json", ".json.gz")):
        head = sniff(path)
        if is_nvd_feed(head):
            return "nvd"
        if is_tracker(head):
            return "tracker"
    return "osv"


def classify(paths: Sequence[Path]) -> Classified:
    """Tell NVD feeds and tracker JSON from OSV input (everything else), by content.

    A file is sniffed; a directory whose top-level ``.json``/``.json.gz`` files include NVD
    feeds or tracker JSON (``examples/nvd/``, a mirror's ``nvd/``) stands for those files
    alone; any other directory is OSV input.
    """
    osv: list[Path] = []
    nvd: list[Path] = []
    tracker: list[Path] = []
    for path in paths:
        if path.is_dir():
            children = sorted(path.iterdir())
            kinds = {
                file: _kind(file) for file in children if file.is_file() and not file.is_symlink()
            }
            found = [file for file, kind in kinds.items() if kind != "osv"]
            if not found:
                osv.append(path)
                continue
            nvd.extend(file for file in found if kinds[file] == "nvd")
            tracker.extend(file for file in found if kinds[file] == "tracker")
            others = [
                file.name
                for file, kind in kinds.items()
                if kind == "osv" and file.suffix in {".json", ".zip", ".gz"}
            ]
            if others or any(child.is_dir() for child in children):
                _logger.warning(
                    "%s holds NVD feeds or tracker JSON: only those are imported from it (not %s)",
                    path,
                    ", ".join(others[:3]) or "its subdirectories",
                )
            continue
        kind = _kind(path) if path.is_file() else "osv"
        if kind == "osv" and path.name.endswith(".json.gz"):
            # OSV input is never gzipped JSON: read as a record it would only be "invalid".
            raise VulnDBError(
                "neither an NVD 2.0 feed nor the Debian tracker JSON (unreadable gzip or "
                "another document)",
                where=str(path),
            )
        {"nvd": nvd, "tracker": tracker, "osv": osv}[kind].append(path)
    return Classified(tuple(osv), tuple(nvd), tuple(tracker))


#: A row of the ``nvd`` table: (id, lastModified, encoded data).
_Row = nvd_format.Row


class _NvdWriter:
    def __init__(self, conn: sqlite3.Connection, stats: NvdImportStats) -> None:
        self.conn = conn
        self.stats = stats
        self.newest = ""
        conn.execute("PRAGMA cache_size=-65536")

    def flush(self, rows: Sequence[_Row]) -> None:
        if not rows:
            return
        batch: dict[str, _Row] = {}
        for row in rows:
            queued = batch.get(row[0])
            if queued is not None:
                self.stats.unchanged += 1  # the same CVE twice in the input: newest wins
                if queued[1] > row[1]:
                    continue
            batch[row[0]] = row
        held: dict[str, str] = {}
        for chunk in chunks(list(batch)):
            marks = ",".join("?" * len(chunk))
            held.update(
                self.conn.execute(
                    f"SELECT id, modified FROM nvd WHERE id IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            )
        write = []
        for cve_id, row in batch.items():
            old = held.get(cve_id)
            if old is not None and old >= row[1]:
                self.stats.unchanged += 1
                continue
            if old is None:
                self.stats.added += 1
            else:
                self.stats.replaced += 1
            write.append(row)
            if row[1] > self.newest:
                self.newest = row[1]
        self.conn.executemany("INSERT OR REPLACE INTO nvd VALUES (?, ?, ?)", write)


@dataclass(slots=True)
class _Parsed:
    """One feed parsed into rows (by a worker process for multi-feed imports)."""

    rows: list[_Row]
    read: int = 0
    invalid: int = 0
    #: The first few invalid CVEs' messages (logged by the importing process).
    messages: list[str] = field(default_factory=list)
    sha256: str = ""
    #: (message, where) of a fatal problem (bad gzip, malformed JSON): the import fails.
    error: tuple[str, str] | None = None


def _rows(reader: FeedReader, parsed: _Parsed) -> Iterator[_Row]:
    for item in reader.rows():
        parsed.read += 1
        if isinstance(item, InvalidRecord):
            parsed.invalid += 1
            if len(parsed.messages) < LOGGED_INVALID:
                parsed.messages.append(item.diagnostics())
            continue
        yield item


def _parse_feed(path: str) -> _Parsed:
    """Worker: read a whole feed into compact rows (about a tenth of its JSON)."""
    parsed = _Parsed([])
    reader = FeedReader(Path(path))
    try:
        parsed.rows = list(_rows(reader, parsed))
    except VulnDBError as exc:
        parsed.error = (exc.message, exc.where or path)
        return parsed
    parsed.sha256 = reader.sha256
    return parsed


#: Multi-feed imports parse feeds in worker processes when there is this much gzip to read:
#: parsing is the bound (measured: inflate, sha256, msgspec and the row deflate are ~85% of a
#: CVE's cost; the SQLite writes in this process the rest).
_PARALLEL_BYTES = 32 << 20
_MAX_WORKERS = 4


def _workers(feeds: Sequence[NvdFeedFile], requested: int | None) -> int:
    if requested is not None:
        return max(1, min(requested, len(feeds)))
    try:
        size = sum(feed.path.stat().st_size for feed in feeds)
    except OSError:
        return 1
    if len(feeds) < 2 or size < _PARALLEL_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, len(feeds), _MAX_WORKERS))


def _parsed_feeds(feeds: Sequence[NvdFeedFile], workers: int) -> Iterator[_Parsed]:
    """Each feed parsed, in order: streamed batch by batch in this process, or whole per feed
    in ``workers`` processes (``spawn``: nothing of this process's threads or locks is copied)."""
    if workers <= 1:
        for feed in feeds:
            parsed = _Parsed([])
            reader = FeedReader(feed.path)
            rows = _rows(reader, parsed)
            while True:
                parsed.rows = list(itertools.islice(rows, BATCH))
                if not parsed.rows:
                    break
                yield dataclasses.replace(parsed)  # a batch (same counters so far)
            parsed.sha256 = reader.sha256
            yield parsed
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(_parse_feed, [str(feed.path) for feed in feeds])


def import_nvd(
    db_path: Path,
    feeds: Sequence[NvdFeedFile],
    *,
    now: datetime | None = None,
    full: bool = False,
    workers: int | None = None,
) -> NvdImportStats:
    """Import NVD feed files in one transaction; any error leaves the database unchanged.

    Each feed's sha256 is checked (when known) before the commit and kept as its cursor, with
    the last-import time; ``full`` (``db update`` after checking every yearly feed) also stamps
    the last full fetch. ``workers``: parse processes (default: one per core, up to 4, when there
    are several feeds and at least 32 MiB of them; else this process, streaming).
    """
    stats = NvdImportStats()
    with transaction(db_path) as conn:
        writer = _NvdWriter(conn, stats)
        parsed_feeds = _parsed_feeds(feeds, _workers(feeds, workers))
        for feed in feeds:
            parsed = _apply(writer, parsed_feeds)
            stats.read += parsed.read
            stats.invalid += parsed.invalid
            for message in parsed.messages:
                _logger.warning("skipping invalid NVD CVE in %s: %s", feed.path, message)
            if feed.sha256 is not None and parsed.sha256 != feed.sha256:
                raise VulnDBError(
                    f"sha256 of the uncompressed feed is {parsed.sha256}, its .meta says "
                    f"{feed.sha256}; nothing imported",
                    where=str(feed.path),
                )
            stats.files += 1
            stats.digests[feed.name] = parsed.sha256
        text = utc_text(now or datetime.now(UTC))
        rows = {NVD_SHA + name: digest for name, digest in stats.digests.items()}
        rows[NVD_LAST_IMPORT] = text
        if full:
            rows[NVD_LAST_FULL] = text
        old_newest = conn.execute("SELECT value FROM meta WHERE key=?", (NVD_NEWEST,)).fetchone()
        newest = max(writer.newest, old_newest[0] if old_newest else "")
        if newest:
            rows[NVD_NEWEST] = newest
        (count,) = conn.execute("SELECT COUNT(*) FROM nvd").fetchone()
        rows[NVD_COUNT] = str(count)
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(rows.items()))
    if stats.invalid > LOGGED_INVALID:
        _logger.warning("%s invalid NVD CVEs skipped in all", stats.invalid)
    return stats


def _apply(writer: _NvdWriter, parsed_feeds: Iterator[_Parsed]) -> _Parsed:
    """Write one feed's rows (its batches, or its whole parse); returns its final counters."""
    while True:
        parsed = next(parsed_feeds)
        if parsed.error is not None:
            message, where = parsed.error
            raise VulnDBError(message, where=where)
        for start in range(0, len(parsed.rows), BATCH):
            writer.flush(parsed.rows[start : start + BATCH])
        if parsed.sha256:
            return parsed


@dataclass(slots=True)
class TrackerImportStats:
    """Counts of a Debian security tracker import."""

    packages: int = 0
    #: (CVE, source package) pairs with at least one release urgency.
    entries: int = 0
    #: Packages or CVE entries of an unexpected shape (skipped; the first few are logged).
    malformed: int = 0


def _urgencies(entry: object) -> tuple[dict[str, str], str | None]:
    """The release urgencies of one (package, CVE) entry, and what is malformed in it."""
    if not isinstance(entry, dict):
        return {}, "the CVE entry is not an object"
    releases = entry.get("releases", {})
    if not isinstance(releases, dict):
        return {}, "its releases are not an object"
    found: dict[str, str] = {}
    problem: str | None = None
    for codename, release in releases.items():
        urgency = release.get("urgency") if isinstance(release, dict) else None
        if isinstance(urgency, str):
            if urgency:
                # Stored raw ("medium**" is the tracker's estimate): the matcher decides.
                found[codename] = urgency
        elif not isinstance(release, dict):
            problem = f"release {str(codename)[:40]!r} is not an object"
        elif urgency is not None:
            problem = f"the urgency of release {str(codename)[:40]!r} is not a string"
    return found, problem


def _tracker_rows(stream: JSONStream, stats: TrackerImportStats) -> Iterable[tuple[str, str, str]]:
    encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=True)

    def malformed(what: str) -> None:
        stats.malformed += 1
        if stats.malformed <= LOGGED_INVALID:
            _logger.warning("skipping malformed Debian tracker data in %s: %s", stream.where, what)

    for package in stream.members():
        entries = stream.value()
        stats.packages += 1
        if not isinstance(entries, dict):
            malformed(f"package {package[:60]!r} is not an object of CVEs")
            continue
        for cve_id, entry in entries.items():
            urgencies, problem = _urgencies(entry)
            if problem is not None:
                malformed(f"{package[:60]} {cve_id[:60]}: {problem}")
            if urgencies:
                stats.entries += 1
                yield cve_id, package, encoder.encode(urgencies)
    stream.end()


def import_tracker(
    db_path: Path, path: Path, *, now: datetime | None = None, local: str | None = None
) -> TrackerImportStats:
    """Replace the held Debian tracker urgencies with those of ``path``, in one transaction.

    ``local``: the fingerprint of a configured local source (config ``db.import``), kept with
    the snapshot so that an unchanged file is only stamped (:func:`stamp_tracker`) next time.
    """
    stats = TrackerImportStats()
    where = str(path)
    with transaction(db_path) as conn:
        conn.execute("DELETE FROM debian_urgency")
        try:
            with path.open("rb", buffering=1 << 16) as raw:
                stream = nvd_format.open_decompressed(raw)
                json_stream = JSONStream(stream.read, where, _MAX_PACKAGE_CHARS)
                rows = _tracker_rows(json_stream, stats)
                while chunk := list(itertools.islice(rows, BATCH)):
                    conn.executemany(
                        "INSERT OR REPLACE INTO debian_urgency VALUES (?, ?, ?)", chunk
                    )
        except nvd_format.INFLATE_ERRORS as exc:
            raise VulnDBError(f"cannot read the Debian tracker JSON: {exc}", where=where) from exc
        if not stats.packages:
            raise VulnDBError("the Debian tracker document holds no package", where=where)
        if stats.malformed and not stats.entries:
            # Replacing the snapshot with nothing would silently drop every urgency held.
            raise VulnDBError(
                f"the Debian tracker document holds no usable entry ({stats.malformed} "
                "malformed: not package -> CVE -> releases -> urgency)",
                where=where,
            )
        text = utc_text(now or datetime.now(UTC))
        conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(TRACKER_LAST_IMPORT, text), (TRACKER_ENTRIES, str(stats.entries))],
        )
        if local is None:
            conn.execute("DELETE FROM meta WHERE key=?", (TRACKER_LOCAL,))
        else:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (TRACKER_LOCAL, local))
    if stats.malformed > LOGGED_INVALID:
        _logger.warning("%s malformed Debian tracker entries skipped in all", stats.malformed)
    return stats


def stamp_tracker(db_path: Path, *, now: datetime | None = None) -> None:
    """Stamp the held tracker snapshot as current (its local source is unchanged)."""
    with transaction(db_path) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            (TRACKER_LAST_IMPORT, utc_text(now or datetime.now(UTC))),
        )


__all__ = [
    "Classified",
    "NvdFeedFile",
    "NvdImportStats",
    "TrackerImportStats",
    "classify",
    "feed_file",
    "import_nvd",
    "import_tracker",
    "stamp_tracker",
]
