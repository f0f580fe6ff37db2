"""Packages x advisories -> findings: one finding per (package, flaw), with its severity.

The scan pipeline (and ``kubegate image``) calls :func:`match_packages` or a
long-lived :class:`Matcher` with an image's inventory. For each package the database index gives
the records naming its (ecosystem, source name); only their affected entries are evaluated and
only matched records are parsed whole. Matched records are grouped by flaw (one CVE; the GHSA or
the record's own id when there is none) and never across packages; the finding's severity
follows the precedence of :func:`kubegate.vulndb.severity.resolve_severity` (docs/image.md), fed
with the flaw's NVD entry and Debian's tracker urgency when the database holds them. A CVE that
NVD lists as Rejected yields no finding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubegate.match.ecosystems import MatchTarget, Skip, target_for
from kubegate.match.evaluate import EvaluationError, evaluate
from kubegate.match.versions import VersionComparator, comparator_for
from kubegate.models import CVSS, Finding, OSInfo, Package, Severity
from kubegate.vulndb.severity import SeverityEvidence, resolve_severity, source_of
from kubegate.vulndb.store import VulnDB

if TYPE_CHECKING:
    from kubegate.vulndb.nvd import NvdCve

_logger = logging.getLogger(__name__)
_TITLE_MAX = 160
#: The end of a sentence in a description: a full stop before a capital (not "1.1.1l.").
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")
#: NVD's ``vulnStatus`` of a CVE withdrawn by its CNA: it is no flaw at all.
_REJECTED = "Rejected"
#: Id prefixes of distro update bulletins (one advisory per package update, any number of flaws).
_BULLETINS = ("DSA-", "DLA-", "DTSA-", "USN-", "LSN-", "RHSA-", "RHBA-", "RHEA-", "ALSA-", "RLSA-")


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Findings of one inventory, what was not matched and which feeds the verdict relied on."""

    findings: tuple[Finding, ...]
    #: Release-qualified index ecosystems queried (``Debian:12``, ``PyPI``): each must be
    #: covered by the database and its feed younger than ``--db-max-age``
    #: (:meth:`kubegate.vulndb.store.VulnDB.check_fresh`).
    ecosystems: tuple[str, ...]
    skipped: tuple[Skip, ...]

    @property
    def problems(self) -> tuple[Skip, ...]:
        """Packages that could not be matched at all: the scan cannot prove them clean."""
        return tuple(skip for skip in self.skipped if skip.problem)


def flaw_ids(record: dict[str, Any]) -> tuple[str, ...]:
    """The flaws a record speaks of: its CVEs, else the GHSA, else its own id (OSV.md 7)."""
    record_id = str(record["id"])
    own = [record_id, *(record.get("aliases") or ()), *(record.get("upstream") or ())]
    cves = [ref for ref in own if ref.startswith("CVE-")]
    if not cves:
        # An advisory naming its CVEs only as ``related`` (some USNs) still joins each of them.
        cves = [ref for ref in record.get("related") or () if ref.startswith("CVE-")]
    if cves:
        return tuple(dict.fromkeys(cves))
    ghsa = sorted(ref for ref in own if ref.startswith("GHSA-"))
    return (ghsa[0],) if ghsa else (record_id,)


def _text(record: dict[str, Any] | None, key: str) -> str | None:
    text = (record or {}).get(key)
    if isinstance(text, str) and text.strip():
        return text.strip().splitlines()[0][:_TITLE_MAX]
    return None


def _first_sentence(text: str | None) -> str | None:
    """A title from a CVE description: NVD's are one paragraph, so its first sentence, cut at
    a word (with an ellipsis) when even that is longer than a title."""
    if not text or not text.strip():
        return None
    line = " ".join(text.split())
    found = _SENTENCE_END.search(line)
    sentence = line[: found.start() + 1] if found else line
    if len(sentence) <= _TITLE_MAX:
        return sentence
    return sentence[: _TITLE_MAX - 1].rsplit(" ", 1)[0] + "…"


def _title(
    matched: Sequence[dict[str, Any]], nvd: dict[str, Any] | None, description: str | None
) -> str | None:
    """A one-line title: a summary about this flaw alone, else the CVE's own description
    (the OSV CVE record's, else NVD's English description).

    Update bulletins (a DSA, a USN) carry one summary for the whole update ("openssl - security
    update"), whatever flaws it fixes: they come last.
    """
    single = [r for r in matched if not str(r["id"]).startswith(_BULLETINS)]
    multi = [r for r in matched if str(r["id"]).startswith(_BULLETINS)]
    candidates = (
        *(_text(r, "summary") for r in single),
        _text(nvd, "summary"),
        _text(nvd, "details"),
        _first_sentence(description),
        *(_text(r, "details") for r in single),
        *(_text(r, "summary") for r in multi),
        *(_text(r, "details") for r in multi),
    )
    return next((text for text in candidates if text), None)


_Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class _FlawInfo:
    """Everything about one flaw of one (ecosystem, source, version): shared by its binaries."""

    id: str
    record_ids: tuple[str, ...]
    aliases: tuple[str, ...]
    severity: Severity
    source: str
    fixed: tuple[str, ...]
    cvss: CVSS | None
    title: str | None


class Matcher:
    """Matches inventories against one open database; caches survive between calls (warm)."""

    def __init__(self, db: VulnDB, *, tracker: bool = True) -> None:
        """``tracker`` False: Debian tracker urgencies are not read (older than --db-max-age:
        like an absent tracker, the next source in the precedence decides)."""
        self.db = db
        self._use_tracker = tracker
        self._flaws: dict[_Key, tuple[_FlawInfo, ...]] = {}
        self._undecided: dict[_Key, str] = {}
        self._records: dict[str, dict[str, Any] | None] = {}
        self._refs: dict[str, list[str]] = {}
        self._compare_cache: dict[tuple[str, str, str], int] = {}
        self._nvd: dict[str, NvdCve | None] = {}

    # -- lookups -------------------------------------------------------------------------
    def _comparator(self, target: MatchTarget) -> VersionComparator | None:
        return comparator_for(target.ecosystem)

    def _matched(
        self, target: MatchTarget, comparator: VersionComparator
    ) -> list[tuple[str, tuple[str, ...]]]:
        cache = self._compare_cache
        scheme = comparator.name

        valid = getattr(comparator, "valid", None)

        def compare(a: str, b: str) -> int:
            # A warm scan repeats the same pairs: compare (and validate) each pair once.
            pair = (scheme, a, b)
            result = cache.get(pair)
            if result is None:
                if valid is not None:
                    for version in (a, b):
                        if not valid(version):
                            raise EvaluationError(f"invalid {scheme} version {version!r}")
                result = cache[pair] = comparator.compare(a, b)
            return result

        matched: list[tuple[str, tuple[str, ...]]] = []
        for row in self.db.affecting(target.index_ecosystem, target.name):
            try:
                verdict = evaluate(row.entries, target.version, compare)
            except EvaluationError as exc:
                # One unorderable record must not hide the others: the package is reported as
                # undecided (a problem) and every other record still yields its findings.
                key = (target.index_ecosystem, target.name, target.version)
                self._undecided.setdefault(key, f"{row.id}: {exc}")
                _logger.warning("%s %s %s: %s", row.id, target.name, target.version, exc)
                continue
            if verdict.affected:
                matched.append((row.id, verdict.fixed))
        return matched

    def _load(self, ids: Iterable[str]) -> None:
        missing = [record_id for record_id in ids if record_id not in self._records]
        if missing:
            found = self.db.records(missing)
            for record_id in missing:
                self._records[record_id] = found.get(record_id)

    def _referencing(self, flaws: Iterable[str]) -> None:
        missing = [flaw for flaw in flaws if flaw not in self._refs]
        if missing:
            found = self.db.referencing(missing)
            for flaw in missing:
                self._refs[flaw] = sorted(found.get(flaw, ()))

    def _record(self, record_id: str) -> dict[str, Any] | None:
        return self._records.get(record_id)

    def _load_nvd(self, flaws: Iterable[str]) -> None:
        missing = [f for f in flaws if f.startswith("CVE-") and f not in self._nvd]
        if missing:
            found = self.db.nvd(missing)
            for flaw in missing:
                self._nvd[flaw] = found.get(flaw)

    def _rejected(self, flaw: str) -> bool:
        entry = self._nvd.get(flaw)
        return entry is not None and entry.status == _REJECTED

    # -- severity ------------------------------------------------------------------------
    def _tracker_urgency(self, flaw: str, package: tuple[str, str]) -> str | None:
        ecosystem, name = package
        base, _, release = ecosystem.partition(":")
        if not self._use_tracker or base != "Debian" or not release or not flaw.startswith("CVE-"):
            return None
        return self.db.debian_urgency(flaw, name, release)

    def _severity(
        self, flaw: str, matched: Sequence[dict[str, Any]], package: tuple[str, str]
    ) -> tuple[Severity, str, CVSS | None]:
        related = [r for r in map(self._record, self._refs.get(flaw, ())) if r is not None]
        vendor_sources = {source_of(str(record["id"])) for record in matched}
        decided = resolve_severity(
            SeverityEvidence(
                matched=matched,
                same_distro=[
                    r for r in related if source_of(str(r["id"])) in vendor_sources - {"ghsa"}
                ],
                tracker_urgency=self._tracker_urgency(flaw, package),
                ghsa=[r for r in related if source_of(str(r["id"])) == "ghsa"],
                nvd=self._nvd.get(flaw),
                osv_cve=self._record(flaw) if flaw.startswith("CVE-") else None,
                package=package,
            )
        )
        return decided.severity, decided.source, decided.cvss

    # -- the one entry point -------------------------------------------------------------
    def match(
        self,
        packages: Sequence[Package],
        os_info: OSInfo | None,
        *,
        platform: str | None = None,
    ) -> MatchResult:
        """Findings of ``packages`` (one image platform's inventory) on ``os_info``."""
        skipped: list[Skip] = []
        ecosystems: dict[str, None] = {}
        targets: list[tuple[Package, MatchTarget, _Key]] = []
        fresh: dict[_Key, list[tuple[str, tuple[str, ...]]]] = {}
        for package in packages:
            target = target_for(package, os_info)
            if isinstance(target, Skip):
                skipped.append(target)
                continue
            comparator = self._comparator(target)
            if comparator is None:
                skipped.append(Skip(package, f"no version comparator for {target.ecosystem}", True))
                continue
            ecosystems[target.index_ecosystem] = None
            key = (target.index_ecosystem, target.name, target.version)
            if key not in self._flaws and key not in fresh:
                fresh[key] = self._matched(target, comparator)
            targets.append((package, target, key))
            if key in self._undecided:
                skipped.append(Skip(package, f"cannot evaluate {self._undecided[key]}", True))
        self._resolve(fresh)
        findings = [
            Finding(
                id=info.id,
                record_ids=info.record_ids,
                aliases=info.aliases,
                severity=info.severity,
                severity_source=info.source,
                package=package,
                ecosystem=target.ecosystem,
                fixed_versions=info.fixed,
                cvss=info.cvss,
                title=info.title,
                platform=platform,
            )
            for package, target, key in targets
            for info in self._flaws[key]
        ]
        findings.sort(key=lambda f: (-f.severity, f.package.name, f.id))
        return MatchResult(tuple(findings), tuple(ecosystems), tuple(skipped))

    def _resolve(self, fresh: dict[_Key, list[tuple[str, tuple[str, ...]]]]) -> None:
        """Group newly matched records by flaw and judge each flaw once per (source, version)."""
        self._load(record_id for matched in fresh.values() for record_id, _ in matched)
        grouped: dict[_Key, dict[str, tuple[list[str], list[str]]]] = {}
        for key, matched in fresh.items():
            by_flaw = grouped[key] = {}
            for record_id, fixed in matched:
                record = self._record(record_id)
                if record is None:
                    continue
                for flaw in flaw_ids(record):
                    ids, fixes = by_flaw.setdefault(flaw, ([], []))
                    ids.append(record_id)
                    fixes.extend(fixed)
        flaws = {flaw for by_flaw in grouped.values() for flaw in by_flaw}
        self._load_nvd(flaws)
        self._referencing(flaws)
        self._load([*flaws, *(ref for flaw in flaws for ref in self._refs[flaw])])
        for key, by_flaw in grouped.items():
            self._flaws[key] = tuple(
                self._flaw(flaw, ids, fixes, (key[0], key[1]))
                for flaw, (ids, fixes) in by_flaw.items()
                if not self._rejected(flaw)
            )

    def _flaw(
        self, flaw: str, ids: list[str], fixes: list[str], package: tuple[str, str]
    ) -> _FlawInfo:
        matched = [r for r in map(self._record, ids) if r is not None]
        severity, source, cvss = self._severity(flaw, matched, package)
        record_ids = (*sorted(set(ids) - {flaw}), flaw)
        aliases: set[str] = set(self._refs.get(flaw, ()))
        for record in matched:
            aliases.update(record.get("aliases") or ())
            aliases.update(record.get("upstream") or ())
        # Other CVEs a multi-CVE advisory names are other findings, not aliases of this one.
        aliases = {a for a in aliases if not a.startswith("CVE-")} - set(record_ids)
        osv_cve = self._record(flaw)
        entry = self._nvd.get(flaw)
        return _FlawInfo(
            id=flaw,
            record_ids=record_ids,
            aliases=tuple(sorted(aliases)),
            severity=severity,
            source=source,
            fixed=tuple(sorted(set(fixes))),
            cvss=cvss,
            title=_title(matched, osv_cve, entry.description if entry else None),
        )


def match_packages(
    db: VulnDB,
    packages: Sequence[Package],
    os_info: OSInfo | None,
    *,
    platform: str | None = None,
) -> MatchResult:
    """One-shot :meth:`Matcher.match` (a scan of several images should keep one Matcher)."""
    return Matcher(db).match(packages, os_info, platform=platform)
