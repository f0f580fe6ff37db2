"""What publishing and ``watch`` need of the advisory database, read once per change of its file.

:class:`DatabaseView` keeps one :class:`DBSummary` (its import times and a content fingerprint)
and reads it again only when ``os.stat`` of the file changes (``st_mtime_ns``, ``st_size``,
``st_ino``): an import or update writes the file (journal mode DELETE) or replaces it, so a
changed database always changes its stat. ``watch`` asks on every poll, per new head and per
``/readyz`` or ``/metrics`` scrape; without the cache each asked SQLite for a full ``COUNT(*)``.

Used by ``kubegate.cli.scan.judge_revision`` (the published artifact's ``dev.kubegate.db.updated``)
and by ``kubegate.cli.watch`` (re-judging on a database change, readiness, the age metric).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import stat as stat_mode
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kubegate.errors import KubegateError
from kubegate.publish.artifact import rfc3339

if TYPE_CHECKING:
    from kubegate.vulndb import VulnDB

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DBSummary:
    """The database's import times and a digest of everything that changes with an import."""

    #: Last import of each base ecosystem (Debian, PyPI, ...).
    imports: tuple[dt.datetime, ...]
    #: Digest of every import time and count: ecosystems, the NVD data, the Debian tracker.
    fingerprint: str

    @property
    def updated(self) -> str | None:
        """When the database was last imported or updated (its newest ecosystem), RFC 3339."""
        return rfc3339(max(self.imports)) if self.imports else None


def summarize(db: VulnDB) -> DBSummary:
    """The summary of an open database (runs ``status()``: a ``COUNT(*)`` of the records)."""
    status = db.status()
    text = ";".join(
        f"{e.ecosystem},{e.last_import.isoformat()},{e.records}" for e in status.ecosystems
    )
    if status.nvd is not None:
        nvd = status.nvd
        text += f";nvd,{nvd.last_import.isoformat()},{nvd.newest_modified},{nvd.cves}"
    if status.debian_tracker is not None:
        tracker = status.debian_tracker
        text += f";tracker,{tracker.last_import.isoformat()},{tracker.entries}"
    fingerprint = hashlib.sha256(f"{status.records};{text}".encode()).hexdigest()[:32]
    return DBSummary(tuple(e.last_import for e in status.ecosystems), fingerprint)


class DatabaseView:
    """The :class:`DBSummary` of the database at ``path``, cached by the file's stat."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The loop and the HTTP thread both ask.
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._value: DBSummary | KubegateError | None = None

    def summary(self) -> DBSummary | None:
        """The summary (None: no database file); KubegateError when it cannot be read."""
        from kubegate.vulndb import VulnDB

        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        if not stat_mode.S_ISREG(stat.st_mode):
            return None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key != self._key:
                try:
                    with VulnDB.open(self.path) as db:
                        self._value = summarize(db)
                except KubegateError as exc:
                    self._value = exc
                self._key = key
                _logger.debug("advisory database %s read again", self.path)
            value = self._value
        if isinstance(value, KubegateError):
            raise value.with_traceback(None)  # the same error each time, not a growing trace
        return value
