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

import json
import logging
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kubegate.errors import VulnDBError
from kubegate.vulndb import nvd as nvd_format
from kubegate.vulndb.jsonstream import JSONStream
from kubegate.vulndb.nvd import FeedReader, NvdCve, is_nvd_feed, meta_path, parse_meta, sniff
from kubegate.vulndb.records import InvalidRecord, utc_text
from kubegate.vulndb.store import (
    NVD_COUNT,
    NVD_LAST_FULL,
    NVD_LAST_IMPORT,
    NVD_NEWEST,
    NVD_SHA,
    TRACKER_ENTRIES,
    TRACKER_LAST_IMPORT,
    connect,
)

_logger = logging.getLogger(__name__)

_BATCH = 5000
_LOGGED_INVALID = 10
#: One package's entries in the tracker (the Linux kernel's are the largest, a few MB).
_MAX_PACKAGE_CHARS = 256 * 1024 * 1024
_TRACKER_SNIFF = re.compile(rb'^\s*\{\s*"[^"\\]+"\s*:\s*\{\s*"(?:CVE|TEMP)-')
_MAX_META_BYTES = 4096


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


def feed_name(path: Path) -> str:
    """``nvdcve-2.0-2024.json.gz`` -> ``nvdcve-2.0-2024``."""
    name = path.name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def feed_file(path: Path, *, require_meta: bool = False) -> NvdFeedFile:
    """A feed file and the sha256 of the ``.meta`` beside it (mandatory with ``require_meta``)."""
    meta = meta_path(path)
    sha: str | None = None
    if meta.is_file():
        try:
            with meta.open("rb") as handle:
                text = handle.read(_MAX_META_BYTES).decode("utf-8", "replace")
        except OSError as exc:
            raise VulnDBError(f"cannot read: {exc.strerror}", where=str(meta)) from exc
        sha = parse_meta(text, str(meta)).sha256
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


def classify(paths: Sequence[Path]) -> Classified:
    """Tell NVD feeds and tracker JSON (files, by content) from OSV input (everything else)."""
    osv: list[Path] = []
    nvd: list[Path] = []
    tracker: list[Path] = []
    for path in paths:
        name = path.name
        if path.is_file() and name.endswith((".json", ".json.gz")):
            head = sniff(path)
            if is_nvd_feed(head):
                nvd.append(path)
                continue
            if is_tracker(head):
                tracker.append(path)
                continue
        osv.append(path)
    return Classified(tuple(osv), tuple(nvd), tuple(tracker))


class _NvdWriter:
    def __init__(self, conn: sqlite3.Connection, stats: NvdImportStats) -> None:
        self.conn = conn
        self.stats = stats
        self.newest = ""
        conn.execute("PRAGMA cache_size=-65536")

    def flush(self, batch: dict[str, NvdCve]) -> None:
        if not batch:
            return
        ids = list(batch)
        held: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            held.update(
                self.conn.execute(
                    f"SELECT id, modified FROM nvd WHERE id IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            )
        rows = []
        for cve_id, cve in batch.items():
            old = held.get(cve_id)
            if old is not None and old >= cve.last_modified:
                self.stats.unchanged += 1
                continue
            if old is None:
                self.stats.added += 1
            else:
                self.stats.replaced += 1
            rows.append((cve_id, cve.last_modified, nvd_format.encode(cve)))
            if cve.last_modified > self.newest:
                self.newest = cve.last_modified
        self.conn.executemany("INSERT OR REPLACE INTO nvd VALUES (?, ?, ?)", rows)
        batch.clear()


def import_nvd(
    db_path: Path,
    feeds: Sequence[NvdFeedFile],
    *,
    now: datetime | None = None,
    full: bool = False,
    meta: Mapping[str, str] | None = None,
    on_cves: Callable[[int], None] | None = None,
) -> NvdImportStats:
    """Import NVD feed files in one transaction; any error leaves the database unchanged.

    Each feed's sha256 is checked (when known) before the commit. ``full`` (``db update`` after
    checking every yearly feed) stamps the last full fetch; ``meta`` rows are written in the
    same transaction. ``on_cves`` is told every few thousand CVEs how many were read.
    """
    stats = NvdImportStats()
    conn = connect(db_path, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        writer = _NvdWriter(conn, stats)
        batch: dict[str, NvdCve] = {}
        for feed in feeds:
            reader = FeedReader(feed.path)
            for item in reader:
                stats.read += 1
                if isinstance(item, InvalidRecord):
                    stats.invalid += 1
                    if stats.invalid <= _LOGGED_INVALID:
                        _logger.warning("skipping invalid NVD CVE in %s: %s", feed.path, item)
                    continue
                queued = batch.get(item.id)
                if queued is None or item.last_modified >= queued.last_modified:
                    batch[item.id] = item
                if len(batch) >= _BATCH:
                    writer.flush(batch)
                    if on_cves is not None:
                        on_cves(stats.read)
            writer.flush(batch)
            if feed.sha256 is not None and reader.sha256 != feed.sha256:
                raise VulnDBError(
                    f"sha256 of the uncompressed feed is {reader.sha256}, its .meta says "
                    f"{feed.sha256}; nothing imported",
                    where=str(feed.path),
                )
            stats.files += 1
            stats.digests[feed.name] = reader.sha256
        text = utc_text(now or datetime.now(UTC))
        rows = {NVD_LAST_IMPORT: text, **{NVD_SHA + n: d for n, d in stats.digests.items()}}
        if full:
            rows[NVD_LAST_FULL] = text
        old_newest = conn.execute("SELECT value FROM meta WHERE key=?", (NVD_NEWEST,)).fetchone()
        newest = max(writer.newest, old_newest[0] if old_newest else "")
        if newest:
            rows[NVD_NEWEST] = newest
        (count,) = conn.execute("SELECT COUNT(*) FROM nvd").fetchone()
        rows[NVD_COUNT] = str(count)
        rows.update(meta or {})
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(rows.items()))
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        _rollback(conn)
        raise VulnDBError(f"advisory database write failed: {exc}", where=str(db_path)) from exc
    except BaseException:
        _rollback(conn)
        raise
    finally:
        conn.close()
    if stats.invalid > _LOGGED_INVALID:
        _logger.warning("%s invalid NVD CVEs skipped in all", stats.invalid)
    return stats


@dataclass(slots=True)
class TrackerImportStats:
    """Counts of a Debian security tracker import."""

    packages: int = 0
    #: (CVE, source package) pairs with at least one release urgency.
    entries: int = 0


def _urgencies(entry: object) -> dict[str, str]:
    releases = entry.get("releases") if isinstance(entry, dict) else None
    if not isinstance(releases, dict):
        return {}
    found: dict[str, str] = {}
    for codename, release in releases.items():
        urgency = release.get("urgency") if isinstance(release, dict) else None
        if isinstance(urgency, str) and urgency:
            # Stored raw ("medium**" is the tracker's estimate): the matcher decides what counts.
            found[codename] = urgency
    return found


def _tracker_rows(stream: JSONStream, stats: TrackerImportStats) -> Iterable[tuple[str, str, str]]:
    encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
    for package in stream.members():
        entries = stream.value()
        stats.packages += 1
        if not isinstance(entries, dict):
            continue
        for cve_id, entry in entries.items():
            urgencies = _urgencies(entry)
            if urgencies:
                stats.entries += 1
                yield cve_id, package, encoder.encode(urgencies)
    stream.end()


def import_tracker(db_path: Path, path: Path, *, now: datetime | None = None) -> TrackerImportStats:
    """Replace the held Debian tracker urgencies with those of ``path``, in one transaction."""
    stats = TrackerImportStats()
    where = str(path)
    conn = connect(db_path, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM debian_urgency")
        with path.open("rb", buffering=1 << 16) as raw:
            stream = nvd_format.open_decompressed(raw)
            json_stream = JSONStream(stream.read, where, _MAX_PACKAGE_CHARS)
            rows = _tracker_rows(json_stream, stats)
            while True:
                chunk = [row for _, row in zip(range(_BATCH), rows, strict=False)]
                if not chunk:
                    break
                conn.executemany("INSERT OR REPLACE INTO debian_urgency VALUES (?, ?, ?)", chunk)
        if not stats.packages:
            raise VulnDBError("the Debian tracker document holds no package", where=where)
        text = utc_text(now or datetime.now(UTC))
        conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(TRACKER_LAST_IMPORT, text), (TRACKER_ENTRIES, str(stats.entries))],
        )
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        _rollback(conn)
        raise VulnDBError(f"advisory database write failed: {exc}", where=str(db_path)) from exc
    except (OSError, EOFError, zlib.error) as exc:
        _rollback(conn)
        raise VulnDBError(f"cannot read the Debian tracker JSON: {exc}", where=where) from exc
    except BaseException:
        _rollback(conn)
        raise
    finally:
        conn.close()
    return stats


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


__all__ = [
    "Classified",
    "NvdFeedFile",
    "NvdImportStats",
    "TrackerImportStats",
    "classify",
    "feed_file",
    "import_nvd",
    "import_tracker",
]
