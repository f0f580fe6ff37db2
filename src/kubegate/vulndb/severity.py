"""Severities: what one record (OSV, NVD, Debian's tracker) states, and the precedence between them.

The matcher gathers, for one flaw of one package, every piece of evidence the database holds
(:class:`SeverityEvidence`) and calls :func:`resolve_severity`, which applies the precedence of
DESIGN.md section 5 and docs/image.md: the matched record's vendor rating, the same distro's
rating of the flaw (its CVE record, Debian's security tracker urgency), the GHSA, NVD's own
(Primary) CVSS, a Secondary CVSS (the CNA's, else an ADP's), the OSV ``CVE-*`` record, else
UNKNOWN. Vendor vocabularies follow Trivy's mapping: Debian ``unimportant`` and Ubuntu
``negligible`` are LOW; "not yet assigned", ``end-of-life`` and ``untriaged`` state nothing, and
neither does a starred urgency (``medium**``: the tracker's estimate, not Debian's rating), so
the next source in the precedence decides.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from kubegate.models import CVSS, Severity
from kubegate.vulndb.records import index_ecosystem, normalise_name

if TYPE_CHECKING:
    from kubegate.vulndb.nvd import NvdCve, NvdMetric

_logger = logging.getLogger(__name__)

_DEBIAN_URGENCY = {
    "unimportant": Severity.LOW,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
}
_UBUNTU_PRIORITY = {
    "negligible": Severity.LOW,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
_GHSA_SEVERITY = {
    "LOW": Severity.LOW,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "HIGH": Severity.HIGH,
    "CRITICAL": Severity.CRITICAL,
}
#: Record id prefixes -> the source named in reports.
_SOURCES = (
    ("DEBIAN-", "debian"),
    ("DSA-", "debian"),
    ("DLA-", "debian"),
    ("DTSA-", "debian"),
    ("UBUNTU-", "ubuntu"),
    ("USN-", "ubuntu"),
    ("LSN-", "ubuntu"),
    ("ALPINE-", "alpine"),
    ("RHSA-", "redhat"),
    ("RHBA-", "redhat"),
    ("RHEA-", "redhat"),
    ("ALSA-", "almalinux"),
    ("RLSA-", "rocky"),
    ("SUSE-", "suse"),
    ("openSUSE-", "suse"),
    ("GHSA-", "ghsa"),
    ("PYSEC-", "pysec"),
    ("GO-", "go"),
    ("RUSTSEC-", "rustsec"),
    # An OSV record named after the CVE itself (osv.dev's own CVE-* records): not NVD's rating.
    ("CVE-", "osv-cve"),
)
#: NVD 2.0 metric versions, preferred first (the newest scoring system the source published).
CVSS_VERSIONS = ("4.0", "3.1", "3.0", "2.0")
#: Authorized Data Publishers by the ``source`` NVD publishes for them (a UUID): readable names.
#: CISA's Vulnrichment container names its orgId and shortName in the CVE records
#: (``providerMetadata``: orgId 134c704f-9b21-4f2e-91b3-4a467353bcc0, shortName CISA-ADP).
ADP_SOURCES = {"134c704f-9b21-4f2e-91b3-4a467353bcc0": "CISA-ADP"}


@dataclass(frozen=True, slots=True)
class StatedSeverity:
    """A severity one record states, the source it speaks for and the CVSS behind it if any."""

    severity: Severity
    source: str
    cvss: CVSS | None = None


def source_of(record_id: str) -> str:
    """The source a record speaks for, from its id prefix (``DSA-...`` -> ``debian``)."""
    for prefix, source in _SOURCES:
        if record_id.startswith(prefix):
            return source
    return record_id.split("-", 1)[0].lower()


def cvss_severity(score: float, version: int) -> Severity:
    """Qualitative rating of a base score (CVSS v2 has no Critical and no None)."""
    if version == 2:
        return Severity.HIGH if score >= 7 else Severity.MEDIUM if score >= 4 else Severity.LOW
    if score >= 9:
        return Severity.CRITICAL
    if score >= 7:
        return Severity.HIGH
    if score >= 4:
        return Severity.MEDIUM
    return Severity.LOW if score > 0 else Severity.UNKNOWN


@functools.lru_cache(maxsize=4096)
def score_vector(kind: str, vector: str) -> tuple[CVSS, Severity] | None:
    """Score a CVSS vector (``CVSS_V2``/``CVSS_V3``/``CVSS_V4``); None if it does not parse."""
    try:
        if kind == "CVSS_V2" or (kind.startswith("CVSS") and "CVSS:" not in vector):
            v2 = CVSS2(vector)
            score = float(v2.base_score)
            return CVSS(vector, score), cvss_severity(score, 2)
        if vector.startswith("CVSS:4"):
            v4 = CVSS4(vector)
            score = float(v4.base_score)
            return CVSS(vector, score), cvss_severity(score, 4)
        v3 = CVSS3(vector)
        score = float(v3.base_score)
        return CVSS(vector, score), cvss_severity(score, 3)
    except (CVSSError, ValueError, KeyError, IndexError) as exc:
        _logger.debug("unparseable CVSS vector %r: %s", vector, exc)
        return None


def best_cvss(record: dict[str, Any]) -> tuple[CVSS, Severity] | None:
    """The highest-scoring CVSS vector of a record's ``severity[]`` (v4 preferred on ties)."""
    best: tuple[CVSS, Severity] | None = None
    for entry in record.get("severity") or ():
        kind = entry.get("type", "")
        if not kind.startswith("CVSS"):
            continue
        scored = score_vector(kind, entry.get("score", ""))
        if scored is not None and (best is None or scored[0].score > best[0].score):
            best = scored
    return best


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` when it is an object: feeds put free-form data in ``*_specific``."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _for_package(record: dict[str, Any], package: tuple[str, str] | None) -> list[dict[str, Any]]:
    entries = [a for a in record.get("affected") or () if isinstance(a, dict)]
    if package is None:
        return entries
    mine = [
        a
        for a in entries
        if (
            index_ecosystem(str(_obj(a, "package").get("ecosystem", ""))),
            normalise_name(
                str(_obj(a, "package").get("ecosystem", "")),
                str(_obj(a, "package").get("name", "")),
            ),
        )
        == package
    ]
    # A DEBIAN-CVE record rates each (release, package) on its own: read the package's rating.
    return mine or entries


def _urgency(record: dict[str, Any], package: tuple[str, str] | None) -> Severity | None:
    values: list[object] = [_obj(record, "database_specific").get("urgency")]
    for affected in _for_package(record, package):
        values.append(_obj(affected, "ecosystem_specific").get("urgency"))
        values.append(_obj(affected, "database_specific").get("urgency"))
    found = [rating for value in values if (rating := urgency_severity(value)) is not None]
    return max(found) if found else None


def urgency_severity(urgency: object) -> Severity | None:
    """A Debian urgency as a severity; None for "not yet assigned", ``end-of-life``, estimates.

    The tracker stars the urgencies it estimated itself (``medium**``: taken from NVD's score
    when Debian has not rated the issue): they are not Debian's rating, so they state nothing.
    """
    if not isinstance(urgency, str):
        return None
    text = urgency.strip().lower()
    if text.endswith("*"):
        return None
    return _DEBIAN_URGENCY.get(text)


def stated_severity(
    record: dict[str, Any], package: tuple[str, str] | None = None
) -> StatedSeverity | None:
    """The severity a record states about itself, or None when it states none.

    ``package`` is the (index ecosystem, normalised name) the finding is about: per-package
    ratings (Debian's urgency per release and package) are read for it when present.

    Order within one record: the vendor's own rating (Debian urgency, Ubuntu priority, GHSA
    ``database_specific.severity``) before a CVSS vector it carries, because the rating is the
    vendor's judgement for its own build while the vector is often copied from NVD.
    """
    record_id = str(record.get("id", ""))
    source = source_of(record_id)
    scored = best_cvss(record)
    cvss = scored[0] if scored else None
    urgency = _urgency(record, package)
    if urgency is not None:
        return StatedSeverity(urgency, source, cvss)
    for entry in record.get("severity") or ():
        if entry.get("type") == "Ubuntu":
            priority = _UBUNTU_PRIORITY.get(str(entry.get("score", "")).lower())
            if priority is not None:
                return StatedSeverity(priority, source, cvss)
    rating = _obj(record, "database_specific").get("severity")
    if isinstance(rating, str) and rating.upper() in _GHSA_SEVERITY:
        return StatedSeverity(_GHSA_SEVERITY[rating.upper()], source, cvss)
    if scored is not None and scored[1] is not Severity.UNKNOWN:
        return StatedSeverity(scored[1], source, cvss)
    return None


def source_name(source: str) -> str:
    """A metric's ``source`` as reports show it (an ADP's UUID becomes its short name)."""
    return ADP_SOURCES.get(source, source)


def _version_rank(metric: NvdMetric) -> int:
    try:
        return CVSS_VERSIONS.index(metric.version)
    except ValueError:
        return len(CVSS_VERSIONS)


def pick_metric(metrics: Iterable[NvdMetric], *, primary: bool) -> NvdMetric | None:
    """The metric that rates a CVE among NVD's own (``primary``) or the other sources'.

    Order: the newest CVSS version (4.0, 3.1, 3.0, 2.0); among Secondary metrics of that version
    a CNA's before an ADP's (the CNA assigned the CVE and knows the product; CISA-ADP scores
    many CVEs with worst-case vectors), then the highest score, then the source's name, so the
    choice never depends on feed order. Metrics without a rating (score 0) are skipped.
    """
    candidates = [m for m in metrics if m.primary is primary and m.severity is not Severity.UNKNOWN]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda m: (_version_rank(m), m.source in ADP_SOURCES, -m.score, m.source, m.vector),
    )


def nvd_severity(cve: NvdCve) -> StatedSeverity | None:
    """NVD's own CVSS rating of a CVE, else a Secondary source's (``secondary:<source>``)."""
    metric = pick_metric(cve.metrics, primary=True)
    if metric is not None:
        return StatedSeverity(metric.severity, "nvd", CVSS(metric.vector, metric.score))
    metric = pick_metric(cve.metrics, primary=False)
    if metric is not None:
        return StatedSeverity(
            metric.severity,
            f"secondary:{source_name(metric.source)}",
            CVSS(metric.vector, metric.score),
        )
    return None


#: The source a finding names when nothing rated it.
NO_SOURCE = "none"


@dataclass(frozen=True, slots=True)
class SeverityEvidence:
    """Everything the database says about the severity of one flaw of one package."""

    #: The records that matched the package (a DSA, a DEBIAN-CVE, a GHSA, a USN...).
    matched: Sequence[dict[str, Any]] = ()
    #: Records of the same distro about the flaw that did not match (a DSA's DEBIAN-CVE).
    same_distro: Sequence[dict[str, Any]] = ()
    #: Debian's security tracker urgency, raw (``low``, ``medium**``, ``not yet assigned``).
    tracker_urgency: str | None = None
    #: GitHub advisories of the flaw.
    ghsa: Sequence[dict[str, Any]] = ()
    #: The flaw's NVD entry (CVE API 2.0 feeds), if the database holds one.
    nvd: NvdCve | None = None
    #: The OSV record named after the CVE itself, if any.
    osv_cve: dict[str, Any] | None = None
    #: (index ecosystem, normalised name) the finding is about: per-package ratings use it.
    package: tuple[str, str] | None = None


def _worst(candidates: Iterable[StatedSeverity | None]) -> StatedSeverity | None:
    best: StatedSeverity | None = None
    for candidate in candidates:
        if candidate is not None and (best is None or candidate.severity > best.severity):
            best = candidate
    return best


def resolve_severity(evidence: SeverityEvidence) -> StatedSeverity:
    """The severity of a finding by the precedence of docs/image.md; UNKNOWN/``none`` if unrated.

    Within one step the worst rating wins (two matched advisories of one flaw). ``cvss`` is the
    vector of the rating that decided, None when a word rating (an urgency) decided.
    """
    package = evidence.package
    tracker = urgency_severity(evidence.tracker_urgency)
    # The record of a CVE id: stated_severity names its source osv-cve (from the id prefix).
    osv_cve = stated_severity(evidence.osv_cve) if evidence.osv_cve is not None else None
    steps: tuple[Iterable[StatedSeverity | None], ...] = (
        # 1. the matched records' own vendor rating
        (stated_severity(record, package) for record in evidence.matched),
        # 2. the same distro's rating of the flaw: its CVE record, the tracker's urgency
        (
            *(stated_severity(record, package) for record in evidence.same_distro),
            StatedSeverity(tracker, "debian") if tracker is not None else None,
        ),
        # 3. the GHSA
        (stated_severity(record) for record in evidence.ghsa),
        # 4-5. NVD's own CVSS, else a Secondary source's
        (nvd_severity(evidence.nvd) if evidence.nvd is not None else None,),
        # 6. the OSV record of the CVE
        (osv_cve,),
    )
    for step in steps:
        decided = _worst(step)
        if decided is not None:
            return decided
    return StatedSeverity(Severity.UNKNOWN, NO_SOURCE)
