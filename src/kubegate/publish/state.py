"""``kubegate watch``'s memory: one small SQLite file in the cache directory.

One row per verdict (commit, Flux revision, verdict, published digest, finding counts, time,
and whether it judged a new head or re-judged the approved revision after an advisory update),
plus the approved revision and the fingerprint of the advisory database it was last judged
against. Each verdict is written in one transaction after its publish finished, so a watch killed
at any point restarts knowing every verdict it completed and re-judges the one it did not:
nothing is published twice under a new meaning and nothing is forgotten.

The file is named after what is watched (repository, ref, target), so two watches sharing a
cache directory do not mix. Used by :mod:`kubegate.publish.watch`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kubegate.errors import PublishError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_sha TEXT NOT NULL,
    revision TEXT NOT NULL,
    verdict TEXT NOT NULL,
    digest TEXT,
    counts TEXT NOT NULL,
    judged_at TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_commit ON verdicts (commit_sha, kind);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Approved:
    """The revision the moving tag points at, as this watch published it."""

    commit: str
    revision: str
    digest: str


@dataclass(frozen=True, slots=True)
class Record:
    """One verdict to remember."""

    commit: str
    revision: str
    verdict: str
    digest: str | None
    counts: Mapping[str, int]
    #: ``head`` (a new head commit) or ``rejudge`` (the approved revision, after a DB change).
    kind: str = "head"


def state_path(cache: Path, *parts: str) -> Path:
    """``watch-<16 hex>.sqlite3`` in ``cache``, named after what is watched."""
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return cache / f"watch-{key}.sqlite3"


class WatchState:
    """The state file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PublishError(f"cannot open the watch state: {exc}", where=str(path)) from exc

    def __enter__(self) -> WatchState:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._conn.close()

    def judged(self, commit: str, *, retry_unproven: float) -> bool:
        """Whether ``commit`` has its verdict as a head: PASS or BLOCKED, or UNPROVEN less
        than ``retry_unproven`` seconds ago."""
        rows = self._conn.execute(
            "SELECT verdict, judged_at FROM verdicts WHERE commit_sha = ? AND kind = 'head'",
            (commit,),
        ).fetchall()
        now = dt.datetime.now(dt.UTC)
        for verdict, judged_at in rows:
            if verdict != "UNPROVEN":
                return True
            age = (now - dt.datetime.fromisoformat(judged_at)).total_seconds()
            if age < retry_unproven:
                return True
        return False

    def record(self, record: Record, *, approved: bool, db_fingerprint: str | None) -> None:
        """Remember a verdict (and, when it was published, the new approved revision)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO verdicts (commit_sha, revision, verdict, digest, counts, judged_at, "
                "kind) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.commit,
                    record.revision,
                    record.verdict,
                    record.digest,
                    json.dumps(dict(record.counts), sort_keys=True),
                    now,
                    record.kind,
                ),
            )
            if approved and record.digest:
                for key, value in (
                    ("approved_commit", record.commit),
                    ("approved_revision", record.revision),
                    ("approved_digest", record.digest),
                ):
                    self._set(key, value)
            if db_fingerprint is not None:
                self._set("db_fingerprint", db_fingerprint)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise PublishError(f"cannot record a verdict: {exc}", where=str(self.path)) from exc

    def set_fingerprint(self, fingerprint: str) -> None:
        """Remember the advisory database the approved revision was last judged against."""
        self._set("db_fingerprint", fingerprint)

    def _set(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _get(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def fingerprint(self) -> str | None:
        """The advisory database fingerprint last recorded."""
        return self._get("db_fingerprint")

    @property
    def approved(self) -> Approved | None:
        """The approved revision, if this watch ever published one."""
        commit, revision, digest = (
            self._get(k) for k in ("approved_commit", "approved_revision", "approved_digest")
        )
        if commit and revision and digest:
            return Approved(commit, revision, digest)
        return None
