"""A generated OSV corpus shaped like the Debian feed, for benchmarks and the kill -9 test.

Per source package the record count follows a log-normal law with median ~20 and a long tail
capped at 1,500 (as for ``linux``); records look like DEBIAN-CVE-* (three releases, urgency, an
unfixed share), DSA-* (several upstream CVEs) and NVD-style CVE-* records (a CVSS vector, no
packages). Deterministic for a given seed. Used by ``bench/match.py`` and tests/integration.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RELEASES = ("Debian:11", "Debian:12", "Debian:13")
_URGENCY = ("unimportant", "low", "medium", "high", "not yet assigned")
_VECTORS = (
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N",
)
_DETAILS = (
    "A flaw was found in the parser of {pkg}: a crafted input can trigger an out-of-bounds read "
    "or an integer overflow, leading to a crash or, in some configurations, code execution. "
    "Remote attackers may exploit this through files or network data processed by {pkg}."
)


@dataclass(frozen=True, slots=True)
class Source:
    """A generated source package with the version installed in the benchmark inventory."""

    name: str
    installed: str
    records: int


def _version(major: int, minor: int, rev: int) -> str:
    return f"{major}.{minor}-{rev}"


def sources(total_records: int, rng: random.Random) -> list[Source]:
    """Source packages whose record counts add up to about ``total_records``."""
    result = [Source("linux", _version(6, 1, 50), 1500)]
    count = 1500
    index = 0
    while count < total_records:
        records = max(1, min(1500, round(rng.lognormvariate(3.0, 1.0))))
        records = min(records, total_records - count)
        result.append(Source(f"pkg{index:05d}", _version(rng.randint(1, 9), 5, 3), records))
        count += records
        index += 1
    return result


def records(total_records: int, seed: int = 1) -> Iterator[dict[str, object]]:
    """The corpus, one OSV record at a time."""
    rng = random.Random(seed)
    serial = 0
    for source in sources(total_records, rng):
        major = int(source.installed.split(".", 1)[0])
        for _ in range(source.records):
            serial += 1
            cve = f"CVE-{2000 + serial % 25}-{100000 + serial}"
            kind = rng.random()
            # As in a stable release: most flaws fixed before the installed version, ~5% fixed
            # by a newer update, ~10% open (unfixed, usually minor).
            roll = rng.random()
            fixed_major = major + (1 if roll < 0.05 else -rng.randint(1, 3))
            fixed = _version(max(fixed_major, 0), rng.randint(0, 9), rng.randint(1, 5))
            events: list[dict[str, str]] = [{"introduced": "0"}]
            if roll < 0.05 or roll >= 0.15:
                events.append({"fixed": fixed})
            affected = [
                {
                    "package": {
                        "ecosystem": release,
                        "name": source.name,
                        "purl": f"pkg:deb/debian/{source.name}?arch=source",
                    },
                    "ranges": [{"type": "ECOSYSTEM", "events": events}],
                    "ecosystem_specific": {"urgency": rng.choice(_URGENCY)},
                }
                for release in RELEASES
            ]
            if kind < 0.7:
                yield {
                    "schema_version": "1.6.0",
                    "id": f"DEBIAN-{cve}",
                    "modified": f"2025-{1 + serial % 12:02d}-{1 + serial % 28:02d}T00:00:00Z",
                    "published": "2024-01-01T00:00:00Z",
                    "details": _DETAILS.format(pkg=source.name),
                    "upstream": [cve],
                    "affected": affected,
                }
            elif kind < 0.8:
                yield {
                    "schema_version": "1.6.0",
                    "id": f"DSA-{serial}-1",
                    "modified": "2025-06-01T00:00:00Z",
                    "summary": f"{source.name} - security update",
                    "details": _DETAILS.format(pkg=source.name),
                    "upstream": [cve, *(f"CVE-2024-{200000 + serial + i}" for i in range(3))],
                    "affected": [{**affected[1], "ecosystem_specific": {}}],
                }
            else:
                yield {
                    "schema_version": "1.6.0",
                    "id": cve,
                    "modified": "2025-03-01T00:00:00Z",
                    "details": _DETAILS.format(pkg=source.name),
                    "severity": [{"type": "CVSS_V3", "score": rng.choice(_VECTORS)}],
                    "affected": [],
                }


def write_zip(path: Path, total_records: int, seed: int = 1) -> int:
    """Write the corpus as the OSV bucket serves it (``<ID>.json`` members); returns its size."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for record in records(total_records, seed):
            zf.writestr(f"{record['id']}.json", json.dumps(record))
    return path.stat().st_size
