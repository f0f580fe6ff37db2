"""Severities an OSV record states itself, and CVSS vectors scored into numbers.

Used by the matcher's severity precedence (DESIGN.md "Severity precedence"): this module only
reads one record at a time; choosing between records is the matcher's job. Vendor vocabularies
follow Trivy's mapping: Debian ``unimportant`` and Ubuntu ``negligible`` are LOW; "not yet
assigned" / ``untriaged`` state nothing, so the next source in the precedence decides.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from kubegate.models import CVSS, Severity
from kubegate.vulndb.records import index_ecosystem, normalise_name

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
    ("CVE-", "nvd"),
)


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
    found = [
        _DEBIAN_URGENCY[key]
        for value in values
        if isinstance(value, str) and (key := value.strip().rstrip("*").lower()) in _DEBIAN_URGENCY
    ]
    return max(found) if found else None


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
