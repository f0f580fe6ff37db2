"""OSV record validation and the index keys derived from a record.

Called by :mod:`kubegate.vulndb.importer` for every record it reads and by the matcher to turn an
inventory's ecosystem and package name into the same keys. A record that fails validation is
reported with a reason (the importer counts it and skips it); nothing here touches the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubegate.errors import VulnDBError

#: Event kinds the OSV schema defines for ``ranges[].events[]``.
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_EVENT_KINDS = frozenset(EVENT_KINDS)
#: One encoder for every record: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER", "GIT"})
_PEP503 = re.compile(r"[-_.]+")
#: Ecosystems whose package names compare case-insensitively (PEP 503, NuGet).
_CASE_FOLDED = frozenset({"PyPI", "NuGet"})


class InvalidRecord(VulnDBError):
    """One OSV record does not follow the schema; the importer skips and counts it."""


@dataclass(frozen=True, slots=True)
class IndexedRecord:
    """What the importer stores for one valid record."""

    id: str
    modified: str
    withdrawn: bool
    #: ``(index ecosystem, normalised name)`` of every package the record names.
    affects: tuple[tuple[str, str], ...]
    #: JSON ``[[index ecosystem, name, ranges, versions], ...]``: all that evaluation reads.
    affected: str
    #: ``(referenced id, kind)`` with kind ``alias``, ``upstream`` or ``related``.
    refs: tuple[tuple[str, str], ...]
    #: Base ecosystems (``Debian``, ``PyPI``) the record speaks of, for per-ecosystem metadata.
    base_ecosystems: tuple[str, ...]


def base_ecosystem(ecosystem: str) -> str:
    """The ecosystem cut at its first ``:`` (``Debian:12`` -> ``Debian``), as the bucket has it."""
    return ecosystem.split(":", 1)[0]


def index_ecosystem(ecosystem: str) -> str:
    """The ecosystem without variant suffixes: the key records are indexed (and queried) by.

    Ubuntu's ``:LTS`` and ``:Pro`` qualifiers name support offerings of one release, so
    ``Ubuntu:Pro:18.04:LTS`` and ``Ubuntu:18.04`` are the same key. Red Hat's CPE-derived strings
    keep product and release but lose the repository (``::baseos``), which images do not record.
    """
    parts = ecosystem.split(":")
    if parts[0] == "Ubuntu":
        return ":".join(p for p in parts if p not in {"LTS", "Pro"})
    if parts[0] == "Red Hat" and "" in parts:
        return ":".join(parts[: parts.index("")])
    return ecosystem


def normalise_name(ecosystem: str, name: str) -> str:
    """A package name as the index stores it (PEP 503 for PyPI, case-folded for NuGet)."""
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in _CASE_FOLDED:
        return name.lower()
    return name


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"{what} must be a non-empty string")
    return value


def _str_list(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRecord(f"{key} must be a list of strings")
    return value


def _check_time(value: object, what: str) -> str:
    text = _require_str(value, what)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRecord(f"{what} {text!r} is not an RFC 3339 time") from exc
    return utc_text(moment)


def utc_text(moment: datetime) -> str:
    """A time as fixed-width UTC text, so that text order is time order in SQL."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_affected(entry: object, index: int) -> tuple[str, str] | None:
    """Validate one ``affected[]`` entry; its (ecosystem, name) or None when it names no package.

    Runs for every entry of every imported record: messages are only formatted on failure.
    """
    if not isinstance(entry, dict):
        raise InvalidRecord(f"affected[{index}] must be an object")
    ranges = entry.get("ranges") or ()
    if not isinstance(ranges, list | tuple):
        raise InvalidRecord(f"affected[{index}].ranges must be a list")
    for r_index, rng in enumerate(ranges):
        if not isinstance(rng, dict) or rng.get("type") not in _RANGE_TYPES:
            raise InvalidRecord(
                f"affected[{index}].ranges[{r_index}].type must be one of ECOSYSTEM, SEMVER, GIT"
            )
        events = rng.get("events")
        if not isinstance(events, list) or not events:
            raise InvalidRecord(f"affected[{index}].ranges[{r_index}].events must be a list")
        for event in events:
            if not isinstance(event, dict) or len(event) != 1:
                raise InvalidRecord(
                    f"affected[{index}].ranges[{r_index}] has an invalid event {event!r}"
                )
            for kind, value in event.items():
                if kind not in _EVENT_KINDS or value.__class__ is not str:
                    raise InvalidRecord(
                        f"affected[{index}].ranges[{r_index}] has an invalid event {event!r}"
                    )
    versions = entry.get("versions")
    if versions:
        if not isinstance(versions, list):
            raise InvalidRecord(f"affected[{index}].versions must be a list of strings")
        for version in versions:
            if version.__class__ is not str:
                raise InvalidRecord(f"affected[{index}].versions must be a list of strings")
    package = entry.get("package")
    if package is None:
        return None
    if not isinstance(package, dict):
        raise InvalidRecord(f"affected[{index}].package must be an object")
    ecosystem = package.get("ecosystem")
    name = package.get("name")
    if ecosystem.__class__ is not str or not ecosystem:
        raise InvalidRecord(f"affected[{index}].package.ecosystem must be a non-empty string")
    if name.__class__ is not str or not name:
        raise InvalidRecord(f"affected[{index}].package.name must be a non-empty string")
    return ecosystem, name


def index_record(record: object) -> IndexedRecord:
    """Validate one parsed OSV record and derive its index rows; raises :class:`InvalidRecord`."""
    if not isinstance(record, dict):
        raise InvalidRecord("a record must be a JSON object")
    record_id = _require_str(record.get("id"), "id")
    modified = _check_time(record.get("modified"), "modified")
    withdrawn = record.get("withdrawn")
    if withdrawn is not None:
        _check_time(withdrawn, "withdrawn")
    refs: list[tuple[str, str]] = []
    for field_name, kind in (
        ("aliases", "alias"),
        ("upstream", "upstream"),
        ("related", "related"),
    ):
        refs.extend((ref, kind) for ref in _str_list(record, field_name) if ref != record_id)
    severity = record.get("severity") or []
    if not isinstance(severity, list):
        raise InvalidRecord("severity must be a list of {type, score} strings")
    for entry in severity:
        if (
            not isinstance(entry, dict)
            or entry.get("type").__class__ is not str
            or entry.get("score").__class__ is not str
        ):
            raise InvalidRecord("severity must be a list of {type, score} strings")
    affected = record.get("affected", [])
    if not isinstance(affected, list):
        raise InvalidRecord("affected must be a list")
    keys: dict[tuple[str, str], None] = {}
    compact: list[list[object]] = []
    bases: dict[str, None] = {}
    for index, entry in enumerate(affected):
        package = _check_affected(entry, index)
        if package is None:
            continue
        ecosystem, name = package
        bases[base_ecosystem(ecosystem)] = None
        indexed = (index_ecosystem(ecosystem), normalise_name(ecosystem, name))
        keys[indexed] = None
        compact.append([*indexed, entry.get("ranges") or [], entry.get("versions") or []])
    return IndexedRecord(
        id=record_id,
        modified=modified,
        withdrawn=withdrawn is not None,
        affects=tuple(keys),
        affected=_ENCODER.encode(compact),
        refs=tuple(refs),
        base_ecosystems=tuple(bases),
    )
