"""``kubegate db import``: load OSV records from zips or directories into the database.

Called by :mod:`kubegate.cli.db` and by :mod:`kubegate.vulndb.update` (``db update``). The whole
import is one SQLite transaction under a rollback journal, so a crash or ``kill -9`` at any point
leaves the previous database as it was. Records are validated one by one: an invalid record is
skipped and counted, never fatal. The same id seen again keeps the newest ``modified``;
withdrawn records are removed. Inputs are untrusted: members are read with a size cap and zips
are never extracted to disk.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from kubegate.errors import UsageError, VulnDBError
from kubegate.vulndb.records import IndexedRecord, InvalidRecord, index_record, utc_text
from kubegate.vulndb.store import INDEXES, chunks, transaction

_logger = logging.getLogger(__name__)

#: Largest single OSV record accepted (the biggest real ones, Linux kernel CVEs, are < 1 MiB).
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: Records (and NVD rows) written per executemany.
BATCH = 5000
_PROGRESS_EVERY = 50_000
#: How many invalid records (OSV or NVD) are described in the log before only counting them.
LOGGED_INVALID = 10


@dataclass(slots=True)
class ImportStats:
    """Counts reported by ``kubegate db import``."""

    read: int = 0
    added: int = 0
    replaced: int = 0
    #: Records whose id is already held with the same or a newer ``modified``.
    unchanged: int = 0
    withdrawn: int = 0
    invalid: int = 0
    ecosystems: dict[str, int] = field(default_factory=dict)


def _read_capped(handle: object, size_hint: int, where: str) -> bytes:
    if size_hint > MAX_RECORD_BYTES:
        raise InvalidRecord(f"larger than {MAX_RECORD_BYTES} bytes", where=where)
    data: bytes = handle.read(MAX_RECORD_BYTES + 1)  # type: ignore[attr-defined]
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidRecord(f"larger than {MAX_RECORD_BYTES} bytes", where=where)
    return data


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"


def _read_member(
    handle: BinaryIO, archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str
) -> bytes:
    """One member's bytes, CRC-checked and size-capped.

    Plain stored/deflated members (all the OSV bucket serves) are read straight from the local
    header: ``ZipFile.open`` costs as much per small member as parsing its JSON. Anything else
    (encryption, other methods) goes through zipfile.
    """
    if info.file_size > MAX_RECORD_BYTES or info.compress_size > 2 * MAX_RECORD_BYTES:
        raise InvalidRecord(f"larger than {MAX_RECORD_BYTES} bytes", where=where)
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with archive.open(info) as member:
            return _read_capped(member, info.file_size, where)
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    fields = _LOCAL_HEADER.unpack(header) if len(header) == _LOCAL_HEADER.size else None
    if fields is None or fields[0] != _LOCAL_MAGIC:
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    handle.seek(fields[10] + fields[11], os.SEEK_CUR)
    raw = handle.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise zipfile.BadZipFile(f"truncated member {info.filename}")
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflater.decompress(raw, MAX_RECORD_BYTES + 1)
    else:
        data = raw
    if len(data) != info.file_size:
        raise zipfile.BadZipFile(f"size mismatch for {info.filename}")
    if zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 for {info.filename}")
    return data


def _iter_zip(path: Path) -> Iterator[tuple[str, bytes | InvalidRecord]]:
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                where = f"{path}:{info.filename}"
                try:
                    yield where, _read_member(handle, archive, info, where)
                except InvalidRecord as exc:
                    yield where, exc
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile, zlib.error) as exc:
        raise VulnDBError(f"cannot read OSV zip: {exc}", where=str(path)) from exc


def _iter_dir(root: Path) -> Iterator[tuple[str, bytes | InvalidRecord]]:
    for directory, subdirs, files in os.walk(root, onerror=_walk_error):
        subdirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            if path.suffix == ".zip":
                yield from _iter_zip(path)
            elif path.suffix == ".json" and not path.is_symlink():
                yield from _iter_file(path)


def _walk_error(exc: OSError) -> None:
    raise VulnDBError(f"cannot read directory: {exc.strerror}", where=exc.filename) from exc


def _iter_file(path: Path) -> Iterator[tuple[str, bytes | InvalidRecord]]:
    try:
        with path.open("rb") as handle:
            yield str(path), _read_capped(handle, path.stat().st_size, str(path))
    except InvalidRecord as exc:
        yield str(path), exc
    except OSError as exc:
        raise VulnDBError(f"cannot read OSV file: {exc.strerror}", where=str(path)) from exc


def iter_sources(paths: Sequence[Path]) -> Iterator[tuple[str, bytes | InvalidRecord]]:
    """Every ``*.json`` member of the given zips, directories (recursively) and files."""
    for path in paths:
        if path.is_dir():
            yield from _iter_dir(path)
        elif zipfile.is_zipfile(path):
            yield from _iter_zip(path)
        elif path.suffix == ".zip":
            raise VulnDBError("not a zip file", where=str(path))
        else:
            yield from _iter_file(path)


def check_paths(paths: Sequence[Path]) -> None:
    """Refuse missing inputs before the database is touched (a usage error, exit 3)."""
    if not paths:
        raise UsageError("no OSV zip or directory given", where="db import")
    for path in paths:
        if not path.exists():
            raise UsageError("no such file or directory", where=str(path))


class _Writer:
    """Applies batches of validated records inside the import's one transaction."""

    def __init__(self, conn: sqlite3.Connection, stats: ImportStats) -> None:
        self.conn = conn
        self.stats = stats
        self.dropped: list[str] = []
        #: Ids written by this import when the database started empty: no need to ask SQLite.
        self.seen: dict[str, str] | None = None
        #: Withdrawn ids of this import: an older copy later in the input must not revive them.
        self.tombstones: dict[str, str] = {}
        # A bulk import touches far more pages than the default 2 MiB cache holds.
        conn.execute("PRAGMA cache_size=-65536")
        if conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None:
            self.seen = {}
            # Empty database: build the indexes once at the end (same transaction).
            for name in INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
                self.dropped.append(name)

    def _need_id_indexes(self) -> None:
        # Replacing a record deletes its rows by id: without these indexes each delete would
        # scan the tables (input repeating an id, e.g. two overlapping zips).
        for name in ("affects_id", "refs_id"):
            if name in self.dropped:
                self.conn.execute(INDEXES[name])
                self.dropped.remove(name)

    def finish(self) -> None:
        for name in self.dropped:
            self.conn.execute(INDEXES[name])
        self.dropped.clear()

    def flush(self, batch: dict[str, tuple[IndexedRecord, bytes]]) -> None:
        if not batch:
            return
        ids = list(batch)
        existing: dict[str, str] = {}
        if self.seen is not None:
            existing = {i: self.seen[i] for i in ids if i in self.seen}
            ids = []
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            existing.update(
                self.conn.execute(
                    f"SELECT id, modified FROM records WHERE id IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            )
        remove: list[tuple[str]] = []
        write: list[tuple[IndexedRecord, bytes]] = []
        for record_id, (record, raw) in batch.items():
            held = existing.get(record_id)
            if self.tombstones.get(record_id, "") >= record.modified:
                self.stats.unchanged += 1
                continue
            if held is not None and held > record.modified:
                self.stats.unchanged += 1
                continue
            if held is not None:
                remove.append((record_id,))
            if record.withdrawn:
                self.stats.withdrawn += 1
                self.tombstones[record_id] = record.modified
                continue
            if held is None:
                self.stats.added += 1
            elif held == record.modified:
                self.stats.unchanged += 1
            else:
                self.stats.replaced += 1
            write.append((record, raw))
        if self.seen is not None:
            self.seen.update((r.id, r.modified) for r, _ in write)
            for (record_id,) in remove:
                if batch[record_id][0].withdrawn:
                    self.seen.pop(record_id, None)
        if remove:
            self._need_id_indexes()
        for table in ("records", "affects", "refs"):
            self.conn.executemany(f"DELETE FROM {table} WHERE id=?", remove)  # noqa: S608
        self.conn.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?)",
            [(r.id, r.modified, raw, r.affected) for r, raw in write],
        )
        self.conn.executemany(
            "INSERT INTO affects VALUES (?, ?, ?)",
            [(eco, name, r.id) for r, _ in write for eco, name in r.affects],
        )
        self.conn.executemany(
            "INSERT INTO refs VALUES (?, ?, ?)",
            [(ref, r.id, kind) for r, _ in write for ref, kind in r.refs],
        )
        batch.clear()


def import_paths(
    db_path: Path, paths: Sequence[Path], *, now: datetime | None = None
) -> ImportStats:
    """Import every OSV record under ``paths`` into the database at ``db_path``, atomically."""
    check_paths(paths)
    return import_records(db_path, iter_sources(paths), now=now)


def import_records(
    db_path: Path,
    sources: Iterable[tuple[str, bytes | InvalidRecord]],
    *,
    now: datetime | None = None,
    stamp: Collection[str] | None = None,
    meta: Mapping[str, str] | None = None,
) -> ImportStats:
    """Import ``(where, raw record)`` pairs in one transaction (the core of import and update).

    ``stamp`` None (``db import``): every base ecosystem the records name is stamped as imported
    now. Otherwise (``db update``) exactly the ``stamp`` ecosystems are, even without records (a
    feed checked and found unchanged is fresh), and other ecosystems a record names only have
    their counts refreshed: their own feed was not checked. ``meta`` rows (the update cursors)
    are written in the same transaction, so they never run ahead of the records.
    """
    stats = ImportStats()
    newest: dict[str, str] = {}
    with transaction(db_path) as conn:
        writer = _Writer(conn, stats)
        batch: dict[str, tuple[IndexedRecord, bytes]] = {}
        for where, raw in sources:
            stats.read += 1
            if not stats.read % _PROGRESS_EVERY:
                _logger.info("%s records read", stats.read)
            try:
                if isinstance(raw, InvalidRecord):
                    raise raw
                try:
                    parsed = json.loads(raw)
                except ValueError as exc:
                    raise InvalidRecord(f"not JSON: {exc}") from exc
                record = index_record(parsed)
            except InvalidRecord as exc:
                stats.invalid += 1
                if stats.invalid <= LOGGED_INVALID:
                    _logger.warning("skipping invalid OSV record %s: %s", where, exc.message)
                continue
            for eco in record.base_ecosystems:
                stats.ecosystems[eco] = stats.ecosystems.get(eco, 0) + 1
                if record.modified > newest.get(eco, ""):
                    newest[eco] = record.modified
            queued = batch.get(record.id)
            if queued is None or record.modified >= queued[0].modified:
                batch[record.id] = (record, raw)
            if len(batch) >= BATCH:
                writer.flush(batch)
        writer.flush(batch)
        writer.finish()
        stamped = set(newest) if stamp is None else set(stamp)
        text = utc_text(now or datetime.now(UTC))
        conn.executemany(
            "INSERT INTO ecosystems VALUES (?, ?, ?, 0) ON CONFLICT (ecosystem) DO UPDATE SET "
            "last_import=excluded.last_import, newest_modified=nullif(max("
            "coalesce(newest_modified, ''), coalesce(excluded.newest_modified, '')), '')",
            [(eco, text, newest.get(eco)) for eco in sorted(stamped)],
        )
        conn.executemany(
            "UPDATE ecosystems SET newest_modified=max(coalesce(newest_modified, ''), ?2) "
            "WHERE ecosystem=?1",
            [(eco, modified) for eco, modified in newest.items() if eco not in stamped],
        )
        conn.executemany(
            "UPDATE ecosystems SET records=(SELECT COUNT(*) FROM ("
            " SELECT id FROM affects WHERE ecosystem=?1"
            " UNION SELECT id FROM affects WHERE ecosystem>=?1||':' AND ecosystem<?1||';'))"
            " WHERE ecosystem=?1",
            [(eco,) for eco in sorted(stamped | set(newest))],
        )
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted((meta or {}).items()))
    if stats.invalid > LOGGED_INVALID:
        _logger.warning("%s invalid records skipped in all", stats.invalid)
    return stats
