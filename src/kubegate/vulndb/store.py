"""The advisory database: one SQLite file holding OSV records and the indexes the matcher uses.

Owns the file's location (``--db``, else ``$KUBEGATE_DB``, else the cache dir), its versioned
schema, the read queries of the matcher and the per-ecosystem freshness metadata. Written only by
:mod:`kubegate.vulndb.importer`, inside one transaction with a rollback journal
(``journal_mode=DELETE``): a killed import leaves a hot journal that the next opener rolls back,
so the previous database stays usable. WAL is deliberately not used (DESIGN.md "DB").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubegate.cachedir import cache_dir
from kubegate.errors import VulnDBError
from kubegate.vulndb.nvdrow import NvdCve, decode
from kubegate.vulndb.records import base_ecosystem

_logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
#: Schemas a writer upgrades in place: each later version only added tables (2: NVD, Debian
#: tracker), so the older file's data stays valid as it is.
_UPGRADABLE = {"1"}
DB_FILE_NAME = "osv.sqlite3"
#: SQLite's default limit on bound parameters is 32766 on current builds; stay far below.
_CHUNK = 500

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (id TEXT PRIMARY KEY, modified TEXT NOT NULL, data BLOB NOT NULL,
                      affected TEXT NOT NULL);
CREATE TABLE affects (ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL);
CREATE TABLE refs (ref TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE ecosystems (ecosystem TEXT PRIMARY KEY, last_import TEXT NOT NULL,
                         newest_modified TEXT, records INTEGER NOT NULL DEFAULT 0);
"""
#: Added by schema 2. ``nvd.data`` is :func:`kubegate.vulndb.nvdrow.encode`'s compact row;
#: ``debian_urgency.urgencies`` a JSON object ``{codename: raw urgency}`` of the Debian
#: security tracker. WITHOUT ROWID: the key is the only lookup and the rows are small.
_SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS nvd (id TEXT PRIMARY KEY, modified TEXT NOT NULL, data BLOB NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS debian_urgency (cve TEXT NOT NULL, package TEXT NOT NULL,
    urgencies TEXT NOT NULL, PRIMARY KEY (cve, package)) WITHOUT ROWID;
"""
#: ``meta`` keys of the NVD and Debian tracker sources (written by kubegate.vulndb.nvdimport).
NVD_LAST_IMPORT = "nvd:last-import"
NVD_LAST_FULL = "nvd:last-full"
NVD_NEWEST = "nvd:newest-modified"
NVD_COUNT = "nvd:cves"
#: Prefix of the per-feed cursor: ``nvd-sha256:<feed name>`` -> sha256 of its last import.
NVD_SHA = "nvd-sha256:"
#: Prefix of the Debian tracker's ``meta`` keys.
TRACKER = "debian-tracker:"
TRACKER_LAST_IMPORT = TRACKER + "last-import"
TRACKER_ENTRIES = TRACKER + "entries"
#: The local file (config ``db.import``) the held snapshot came from, as ``<path>|<size and
#: mtime>``; any other tracker import removes it. Same value at the next scan: not re-imported.
TRACKER_LOCAL = TRACKER + "local-source"
#: Debian release numbers (the ``Debian:12`` ecosystem suffix) -> the tracker's codenames.
DEBIAN_CODENAMES = {
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
}
#: Secondary indexes, by name. A first import into an empty database drops the lookup ones and
#: builds them once at the end (a bulk build sorts once instead of growing B-trees row by row).
INDEXES = {
    "affects_key": "CREATE INDEX affects_key ON affects (ecosystem, name)",
    "refs_ref": "CREATE INDEX refs_ref ON refs (ref)",
    "affects_id": "CREATE INDEX affects_id ON affects (id)",
    "refs_id": "CREATE INDEX refs_id ON refs (id)",
}


def resolve_db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--db PATH``, else ``$KUBEGATE_DB``, else ``osv.sqlite3`` in the cache dir."""
    if explicit:
        return Path(explicit)
    configured = os.environ.get("KUBEGATE_DB")
    if configured:
        return Path(configured)
    return cache_dir() / DB_FILE_NAME


@dataclass(frozen=True, slots=True)
class AffectRow:
    """One index row: a record speaking of one package, with its affected[] entries for it."""

    id: str
    entries: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class EcosystemStatus:
    """Freshness and size of one base ecosystem (``Debian``, ``PyPI``)."""

    ecosystem: str
    records: int
    last_import: datetime
    newest_modified: datetime | None


@dataclass(frozen=True, slots=True)
class NvdStatus:
    """Size and freshness of the NVD data (:meth:`VulnDB.nvd_status`)."""

    cves: int
    #: The newest ``lastModified`` of any CVE held.
    newest_modified: datetime | None
    #: When NVD feeds were last imported or checked unchanged (``db import`` or ``db update``).
    last_import: datetime
    #: When ``db update`` last checked every yearly feed (the 7-day rule), None if never.
    last_full: datetime | None


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """The Debian security tracker snapshot held."""

    last_import: datetime
    #: (CVE, source package) entries with at least one release urgency.
    entries: int


@dataclass(frozen=True, slots=True)
class DBStatus:
    """What ``kubegate db status`` prints."""

    path: Path
    schema_version: int
    size_bytes: int
    records: int
    ecosystems: tuple[EcosystemStatus, ...]
    #: The NVD severity source (None: never imported).
    nvd: NvdStatus | None = None
    #: The Debian security tracker (None: never imported).
    debian_tracker: TrackerStatus | None = None


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # NVD's timestamps carry no offset; they are UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open (and with ``create`` initialise) the database file; errors become VulnDBError."""
    if not create and not path.is_file():
        raise VulnDBError(
            "no advisory database; run `kubegate db import` or `kubegate db update`",
            where=str(path),
        )
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Read-write even for queries: only a writer can roll back a hot journal left by a
        # killed import. A read-only file (a DB baked into an image) is opened read-only.
        mode = "rwc" if create else ("rw" if os.access(path, os.W_OK) else "ro")
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}", uri=True, isolation_level=None
        )
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not tables and create:
            # One script, one transaction: a crash here leaves an empty file, recreated next time.
            script = f"BEGIN IMMEDIATE;{_SCHEMA}{_SCHEMA_2}{';'.join(INDEXES.values())};"
            version = f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}')"  # noqa: S608
            script += f"{version};COMMIT;"
            conn.executescript(script)
            return conn
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and row[0] in _UPGRADABLE and mode != "ro":
            row = _upgrade(conn)
    except sqlite3.DatabaseError as exc:
        raise VulnDBError(f"not a kubegate advisory database: {exc}", where=str(path)) from exc
    if row is None or row[0] != str(SCHEMA_VERSION):
        conn.close()
        raise VulnDBError(
            f"advisory database schema {row[0] if row else '?'} is not {SCHEMA_VERSION}; "
            "re-import it into a new file",
            where=str(path),
        )
    return conn


@contextlib.contextmanager
def transaction(db_path: Path) -> Iterator[sqlite3.Connection]:
    """The database (created if need be) inside one ``BEGIN IMMEDIATE`` transaction, committed
    when the block ends; any exception rolls it back (a SQLite error becomes VulnDBError) and
    the connection is closed either way. The writers' (importer, nvdimport) one transaction."""
    conn = connect(db_path, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        _rollback(conn)
        raise VulnDBError(f"advisory database write failed: {exc}", where=str(db_path)) from exc
    except BaseException:
        _rollback(conn)
        raise
    finally:
        conn.close()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _upgrade(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
    """Add the tables of later schemas to an older file, in one transaction (re-checked inside:
    another process may have upgraded it meanwhile)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and row[0] in _UPGRADABLE:
            for statement in filter(str.strip, _SCHEMA_2.split(";")):
                conn.execute(statement)
            conn.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),)
            )
            _logger.info("advisory database upgraded from schema %s to %s", row[0], SCHEMA_VERSION)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    result: tuple[Any, ...] | None = conn.execute(
        "SELECT value FROM meta WHERE key='schema_version'"
    ).fetchone()
    return result


class VulnDB:
    """Read access to the advisory database, as the matcher and ``db status`` use it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, create=False)

    @classmethod
    def open(cls, explicit: str | os.PathLike[str] | None = None) -> VulnDB:
        """Open the database named by ``--db``/``$KUBEGATE_DB``/the cache dir."""
        return cls(resolve_db_path(explicit))

    def close(self) -> None:
        """Release the connection."""
        self._conn.close()

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise VulnDBError(
                f"advisory database query failed: {exc}", where=str(self.path)
            ) from exc

    def affecting(self, ecosystem: str, name: str) -> list[AffectRow]:
        """Index rows for one (index ecosystem, normalised name)."""
        rows = self._query(
            "SELECT a.id, r.affected FROM affects a JOIN records r ON r.id = a.id "
            "WHERE a.ecosystem=? AND a.name=?",
            (ecosystem, name),
        )
        return [
            AffectRow(
                record_id,
                [
                    {"ranges": ranges, "versions": versions}
                    for eco, pkg, ranges, versions in json.loads(affected)
                    if eco == ecosystem and pkg == name
                ],
            )
            for record_id, affected in rows
        ]

    def records(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Full parsed records by id (ids not in the database are absent)."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            for record_id, data in self._query(
                f"SELECT id, data FROM records WHERE id IN ({marks})",  # noqa: S608 - only '?'s
                chunk,
            ):
                found[record_id] = json.loads(data)
        return found

    def referencing(self, refs: Iterable[str]) -> dict[str, list[str]]:
        """For each given id (a CVE...), the ids of records that alias it or name it upstream."""
        found: dict[str, list[str]] = {}
        for chunk in chunks(sorted(set(refs))):
            marks = ",".join("?" * len(chunk))
            for ref, record_id in self._query(
                f"SELECT ref, id FROM refs WHERE ref IN ({marks}) AND kind != 'related'",  # noqa: S608
                chunk,
            ):
                found.setdefault(ref, []).append(record_id)
        return found

    def meta(self, prefix: str) -> dict[str, str]:
        """``meta`` rows whose key starts with ``prefix`` (the update cursors, local sources)."""
        rows = self._query(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        )
        return {str(key): str(value) for key, value in rows}

    def nvd(self, ids: Iterable[str]) -> dict[str, NvdCve]:
        """NVD's data for each given CVE id (ids not in the database are absent)."""
        found: dict[str, NvdCve] = {}
        for chunk in chunks(sorted({i for i in ids if i.startswith("CVE-")})):
            marks = ",".join("?" * len(chunk))
            for cve_id, modified, data in self._query(
                f"SELECT id, modified, data FROM nvd WHERE id IN ({marks})",  # noqa: S608
                chunk,
            ):
                found[cve_id] = decode(cve_id, modified, data)
        return found

    def nvd_status(self) -> NvdStatus | None:
        """CVE count and freshness of the NVD data; None when no NVD feed was ever imported."""
        held = self.meta("nvd:")
        last = held.get(NVD_LAST_IMPORT)
        if last is None:
            return None
        newest = held.get(NVD_NEWEST)
        full = held.get(NVD_LAST_FULL)
        return NvdStatus(
            cves=int(held.get(NVD_COUNT, "0")),
            newest_modified=_parse_time(newest) if newest else None,
            last_import=_parse_time(last),
            last_full=_parse_time(full) if full else None,
        )

    def debian_urgency(self, cve_id: str, source_package: str, release: str) -> str | None:
        """The Debian security tracker's raw urgency (``low``, ``medium**``, ``not yet
        assigned``...) of a CVE in a source package for a Debian release number (``12``);
        None when the tracker has no entry for it."""
        codename = DEBIAN_CODENAMES.get(release, release)
        rows = self._query(
            "SELECT urgencies FROM debian_urgency WHERE cve=? AND package=?",
            (cve_id, source_package),
        )
        if not rows:
            return None
        urgency = json.loads(rows[0][0]).get(codename)
        return urgency if isinstance(urgency, str) else None

    def debian_tracker_status(self) -> datetime | None:
        """When the Debian security tracker was last imported (None: never)."""
        last = self.meta(TRACKER_LAST_IMPORT).get(TRACKER_LAST_IMPORT)
        return _parse_time(last) if last else None

    def ecosystem_statuses(self) -> tuple[EcosystemStatus, ...]:
        """Freshness and size of each base ecosystem held (one small table: no record scan)."""
        return tuple(
            EcosystemStatus(
                ecosystem=eco,
                records=int(count),
                last_import=_parse_time(last),
                newest_modified=_parse_time(newest) if newest else None,
            )
            for eco, last, newest, count in self._query(
                "SELECT ecosystem, last_import, newest_modified, records FROM ecosystems "
                "ORDER BY ecosystem"
            )
        )

    def status(self) -> DBStatus:
        """Schema version, size, record counts and freshness per base ecosystem."""
        (total,) = self._query("SELECT COUNT(*) FROM records")[0]
        held = self.meta(TRACKER)
        tracker_time = held.get(TRACKER_LAST_IMPORT)
        tracker = None
        if tracker_time:
            tracker = TrackerStatus(
                last_import=_parse_time(tracker_time),
                entries=int(held.get(TRACKER_ENTRIES, "0")),
            )
        return DBStatus(
            path=self.path,
            schema_version=SCHEMA_VERSION,
            size_bytes=self.path.stat().st_size,
            records=int(total),
            ecosystems=self.ecosystem_statuses(),
            nvd=self.nvd_status(),
            debian_tracker=tracker,
        )

    def check_fresh(
        self, ecosystems: Iterable[str], max_age: timedelta, now: datetime | None = None
    ) -> None:
        """Raise VulnDBError when a needed ecosystem has no data or its feed is too old.

        ``ecosystems`` are release-qualified index keys (``Debian:12``, ``Alpine:v3.19``,
        ``PyPI``): the base feed (``Debian``) must have been imported within ``max_age`` and at
        least one record must speak of the release itself. An image whose os-release names a
        release the feed does not cover (``Debian:99``) would otherwise match nothing and pass.
        """
        now = now or datetime.now(UTC)
        known = {status.ecosystem: status for status in self.ecosystem_statuses()}
        for ecosystem in sorted(set(ecosystems)):
            base = base_ecosystem(ecosystem)
            status = known.get(base)
            if status is None:
                raise VulnDBError(
                    f"the advisory database holds no {base} data; import or update it",
                    where=str(self.path),
                )
            age = now - status.last_import
            if age > max_age:
                raise VulnDBError(
                    f"{base} advisories are {_hours(age)} old "
                    f"(last import {status.last_import:%Y-%m-%d %H:%M} UTC), "
                    f"more than --db-max-age {_hours(max_age)}; update the database",
                    where=str(self.path),
                )
            if not self.covers(ecosystem):
                raise VulnDBError(
                    f"the advisory database holds no advisories for {ecosystem} "
                    f"(a release the {base} feed does not cover?): its packages cannot be "
                    "proven clean",
                    where=str(self.path),
                )

    def covers(self, ecosystem: str) -> bool:
        """Whether any record speaks of the release-qualified index ``ecosystem``."""
        # One probe of the (ecosystem, name) index per ecosystem: no table scan.
        return bool(self._query("SELECT 1 FROM affects WHERE ecosystem=? LIMIT 1", (ecosystem,)))


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f}h"


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices small enough to bind as one ``IN (?, ...)`` list."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
