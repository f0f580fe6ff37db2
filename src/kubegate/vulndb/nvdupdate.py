"""The severity sources' part of ``kubegate db update``: NVD 2.0 feeds and the Debian tracker.

Called by :mod:`kubegate.vulndb.update` (inside its lock and private temp dir, after the OSV
feeds). NVD: the ``.meta`` of each feed is read first; a feed whose sha256 equals the one last
imported is not downloaded. Every yearly feed (``nvdcve-2.0-2002`` .. the current year) is
checked when the last full check is 7 days old or more (or never happened), otherwise only
``nvdcve-2.0-modified`` (NVD's modified feed covers the last 8 days). Every changed feed is
downloaded into the temp dir first, then all are imported in **one transaction** with their
sha256 cursors and the run's timestamps (the importer checks the sha256 of each uncompressed
JSON before committing): a run applies whole or not at all. The Debian tracker is one JSON
document, downloaded and imported as a full snapshot.

Sources (:class:`SeveritySources`): explicit ones (flag, environment, config) are mandatory;
those derived from an OSV mirror (``<mirror>/nvd/``, ``<mirror>/debian-tracker.json``) may be
absent from it (the source is then skipped, not failed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from kubegate.errors import VulnDBError
from kubegate.vulndb.feeds import DEFAULT_SOURCE
from kubegate.vulndb.fetch import Bucket, FetchOptions, NotInBucket, check_source, open_bucket
from kubegate.vulndb.nvd import MAX_META_BYTES, parse_meta
from kubegate.vulndb.nvdimport import (
    NvdFeedFile,
    NvdImportStats,
    TrackerImportStats,
    import_nvd,
    import_tracker,
)
from kubegate.vulndb.store import NVD_SHA, VulnDB

_logger = logging.getLogger(__name__)

#: NVD's data feeds (https://nvd.nist.gov/vuln/data-feeds): ``nvdcve-2.0-YYYY.json.gz`` + ``.meta``.
DEFAULT_NVD_SOURCE = "https://nvd.nist.gov/feeds/json/cve/2.0/"
#: The Debian security tracker's whole-database JSON.
DEFAULT_TRACKER_SOURCE = "https://security-tracker.debian.org/tracker/data/json"
#: Every yearly feed is checked again after this (the modified feed covers 8 days).
FULL_INTERVAL = timedelta(days=7)
FIRST_YEAR = 2002
MODIFIED_FEED = "nvdcve-2.0-modified"
#: Inside an OSV mirror (air-gapped): where the severity sources are looked for by default.
MIRROR_NVD_DIR = "nvd/"
MIRROR_TRACKER_FILE = "debian-tracker.json"


@dataclass(frozen=True, slots=True)
class SeveritySources:
    """Where ``db update`` gets NVD feeds and the Debian tracker (None: not updated)."""

    nvd: str | None
    tracker: str | None
    #: Derived from an OSV mirror: a mirror without NVD feeds skips them instead of failing.
    nvd_derived: bool = False
    #: Derived from an OSV mirror: a mirror without the tracker JSON skips it silently.
    tracker_derived: bool = False


def _join(base: str, name: str) -> str:
    if urlsplit(base).scheme in {"http", "https"}:
        return base.rstrip("/") + "/" + name
    return str(Path(base.removeprefix("file://")) / name.rstrip("/"))


def severity_sources(
    osv_source: str,
    *,
    nvd: str | None = None,
    tracker: str | None = None,
) -> SeveritySources:
    """Explicit sources win; else the public ones with the public OSV bucket; else the OSV
    mirror's ``nvd/`` and ``debian-tracker.json`` (docs/db.md "Where they come from")."""
    if osv_source == DEFAULT_SOURCE:
        return SeveritySources(nvd or DEFAULT_NVD_SOURCE, tracker or DEFAULT_TRACKER_SOURCE)
    return SeveritySources(
        nvd or _join(osv_source, MIRROR_NVD_DIR),
        tracker or _join(osv_source, MIRROR_TRACKER_FILE),
        nvd_derived=not nvd,
        tracker_derived=not tracker,
    )


def check_sources(sources: SeveritySources) -> None:
    """Refuse explicit sources that can never work (exit 3), before anything is fetched."""
    if not sources.nvd_derived and sources.nvd is not None:
        check_source(sources.nvd, "--nvd-source")
    if not sources.tracker_derived and sources.tracker is not None:
        check_source(sources.tracker, "--debian-tracker-source", kind="file")


@dataclass(slots=True)
class NvdOutcome:
    """What an NVD run did: ``full``/``incremental`` (feeds checked), or ``absent``."""

    mode: str
    stats: NvdImportStats = field(default_factory=NvdImportStats)
    downloaded: int = 0
    fetched: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


#: ``(label, stage, total)``: a stage begins (``file`` download, ``import``) or a download is
#: ``done``; amounts follow a beginning.
OnStage = Callable[[str, str, int | None], None]
OnAmount = Callable[[str, int], None]


def nvd_held(db_path: Path) -> tuple[datetime | None, dict[str, str]]:
    """The last full check and the sha256 cursor of each feed (empty for a missing database)."""
    if not db_path.is_file():
        return None, {}
    with VulnDB(db_path) as db:
        status = db.nvd_status()
        return (status.last_full if status else None), _cursors(db)


def nvd_cursors(db_path: Path) -> dict[str, str]:
    """The sha256 cursor of each feed alone (empty for a missing database)."""
    if not db_path.is_file():
        return {}
    with VulnDB(db_path) as db:
        return _cursors(db)


def _cursors(db: VulnDB) -> dict[str, str]:
    return {key[len(NVD_SHA) :]: value for key, value in db.meta(NVD_SHA).items()}


def full_due(last_full: datetime | None, now: datetime) -> bool:
    """Whether every yearly feed must be checked (never, or 7 days or more ago)."""
    return last_full is None or now - last_full >= FULL_INTERVAL


def update_nvd(
    db_path: Path,
    source: str,
    *,
    derived: bool,
    workdir: Path,
    now: datetime,
    max_bytes: int,
    options: FetchOptions | None = None,
    on_stage: OnStage | None = None,
    on_amount: OnAmount | None = None,
) -> NvdOutcome:
    """Bring the NVD data up to date from ``source`` (URL or directory); VulnDBError on failure."""
    parts = urlsplit(source)
    if derived and parts.scheme not in {"http", "https"}:
        local = Path(parts.path if parts.scheme == "file" else source)
        if not local.is_dir():
            _logger.info("no NVD feeds in the mirror (%s): skipped", local)
            return NvdOutcome("absent")
    bucket = open_bucket(source, options, option="--nvd-source")
    try:
        return _NvdRun(bucket, db_path, workdir, now, max_bytes, on_stage, on_amount).run(derived)
    finally:
        bucket.close()


class _NvdRun:
    def __init__(
        self,
        bucket: Bucket,
        db_path: Path,
        workdir: Path,
        now: datetime,
        max_bytes: int,
        on_stage: OnStage | None,
        on_amount: OnAmount | None,
    ) -> None:
        self.bucket = bucket
        self.db_path = db_path
        self.workdir = workdir
        self.now = now
        self.max_bytes = max_bytes
        self.on_stage = on_stage or (lambda label, stage, total: None)
        self.on_amount = on_amount or (lambda label, amount: None)

    def _meta(self, name: str) -> str:
        data = self.bucket.read(f"{name}.meta", MAX_META_BYTES)
        return parse_meta(data.decode("utf-8", "replace"), f"{self.bucket.where}{name}.meta").sha256

    def run(self, derived: bool) -> NvdOutcome:
        last_full, held = nvd_held(self.db_path)
        full = full_due(last_full, self.now)
        try:
            modified_sha = self._meta(MODIFIED_FEED)
        except NotInBucket:
            if derived:
                _logger.info("no NVD feeds in the mirror (%s): skipped", self.bucket.where)
                return NvdOutcome("absent")
            raise
        years = range(FIRST_YEAR, self.now.year + 1) if full else range(0)
        wanted: list[tuple[str, str]] = []
        for year in years:
            name = f"nvdcve-2.0-{year}"
            try:
                wanted.append((name, self._meta(name)))
            except NotInBucket:
                # On New Year's Day the new year's feed may not exist yet; its CVEs come
                # through the modified feed meanwhile. Any other missing year is an error.
                if year != self.now.year:
                    raise
                _logger.info("%s: not published yet", name)
        wanted.append((MODIFIED_FEED, modified_sha))
        outcome = NvdOutcome("full" if full else "incremental")
        changed: list[NvdFeedFile] = []
        for name, sha in wanted:
            if held.get(name) == sha:
                outcome.unchanged.append(name)
                continue
            path = self.workdir / f"{name}.json.gz"
            label = f"NVD {name.removeprefix('nvdcve-2.0-')}"
            self.on_stage(label, "file", None)
            with path.open("wb") as handle:
                outcome.downloaded += self.bucket.download(
                    f"{name}.json.gz",
                    handle,
                    self.max_bytes,
                    lambda n, label=label: self.on_amount(label, n),  # type: ignore[misc]
                )
            self.on_stage(label, "done", None)
            changed.append(NvdFeedFile(path, name, sha))
            outcome.fetched.append(name)
        # Every changed feed in one transaction (parsed in parallel when large), with the
        # cursors and the run's timestamps: all of it applies, or none.
        self.on_stage("NVD", "import", None)
        outcome.stats = import_nvd(self.db_path, changed, now=self.now, full=full)
        for feed in changed:
            feed.path.unlink()
        return outcome


def update_tracker(
    db_path: Path,
    source: str,
    *,
    derived: bool,
    workdir: Path,
    now: datetime | None,
    max_bytes: int,
    options: FetchOptions | None = None,
    on_amount: OnAmount | None = None,
) -> tuple[TrackerImportStats | None, int]:
    """Download (or read) the tracker JSON and import it; ``(None, 0)`` when a derived source
    is absent from the mirror. VulnDBError on failure (the caller only warns)."""
    parts = urlsplit(source)
    if parts.scheme in {"http", "https"}:
        base, _, name = source.rpartition("/")
        if not name:
            raise VulnDBError("the tracker URL must name a document", where=source)
        bucket = open_bucket(base + "/", options, option="--debian-tracker-source")
        path = workdir / "debian-tracker.json"
        try:
            with path.open("wb") as handle:
                report = on_amount or (lambda label, amount: None)
                downloaded = bucket.download(
                    name, handle, max_bytes, lambda n: report("Debian tracker", n)
                )
        except NotInBucket:
            if derived:
                _logger.info("no Debian tracker JSON in the mirror (%s): skipped", source)
                return None, 0
            raise
        finally:
            bucket.close()
        return import_tracker(db_path, path, now=now or datetime.now(UTC)), downloaded
    local = Path(parts.path if parts.scheme == "file" else source)
    if not local.is_file():
        if derived:
            _logger.info("no Debian tracker JSON in the mirror (%s): skipped", local)
            return None, 0
        raise VulnDBError("no such file", where=str(local))
    return import_tracker(db_path, local, now=now or datetime.now(UTC)), 0
