"""A generated NVD CVE API 2.0 corpus shaped like the real yearly feeds (bench/nvd.py, tests).

Deterministic (seeded). Each CVE has what real feed entries have (compare CVE-2022-1292 in
fkie-cad/nvd-json-data-feeds or any ``nvdcve-2.0-YYYY.json.gz``): ``sourceIdentifier``,
``published``/``lastModified``/``vulnStatus``, ``cveTags``, an English and often a Spanish
description of a few hundred characters, 1-4 CVSS metrics (v3.1 Primary from NVD, often a
Secondary v3.1 or v4.0 from the CNA or CISA-ADP, v2 on older CVEs, full ``cvssData`` with every
component), sometimes an ``ssvcV203`` entry, weaknesses, CPE ``configurations`` (mostly 1-6
``cpeMatch`` entries, a tail of large ones up to a few hundred, some AND nodes with platform
CPEs) and 3-12 references with tags. The feed document is pretty-printed like NVD's.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from isal import igzip

_WORDS = (
    "buffer overflow heap use-after-free out-of-bounds read write null pointer dereference "
    "integer underflow race condition improper validation input sanitization authentication "
    "bypass privilege escalation remote attackers local users crafted request packet file "
    "allows cause denial service execute arbitrary code obtain sensitive information via "
    "component function parameter module plugin library kernel driver server client web "
    "interface administrator cross-site scripting SQL injection path traversal memory leak "
    "infinite loop exhaustion certificate signature verification header cookie session token"
).split()
_VENDORS = [f"vendor{i}" for i in range(400)]
_PRODUCTS = [f"product_{i}" for i in range(1500)]
_CNAS = [
    "cve@mitre.org",
    "secalert@redhat.com",
    "security@android.com",
    "psirt@cisco.com",
    "cna@vuldb.com",
    "security-advisories@github.com",
    "openssl-security@openssl.org",
    "product-security@apple.com",
]
_ADP = "134c704f-9b21-4f2e-91b3-4a467353bcc0"
_SEVERITY = ((9.0, "CRITICAL"), (7.0, "HIGH"), (4.0, "MEDIUM"), (0.1, "LOW"))
#: Share of CVEs per year (rough shape of the real feeds: few early, many recent).
_YEAR_WEIGHTS = {year: max(1, (year - 1999) ** 2) for year in range(2002, 2026)}


def _severity(score: float) -> str:
    for floor, name in _SEVERITY:
        if score >= floor:
            return name
    return "NONE"


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _v31(rng: random.Random, source: str, primary: bool) -> dict[str, Any]:
    av, ac, pr, ui = rng.choice("NALP"), rng.choice("LH"), rng.choice("NLH"), rng.choice("NR")
    s, c, i, a = rng.choice("UC"), rng.choice("NLH"), rng.choice("NLH"), rng.choice("NLH")
    score = round(rng.uniform(2.0, 10.0), 1)
    return {
        "source": source,
        "type": "Primary" if primary else "Secondary",
        "cvssData": {
            "version": "3.1",
            "vectorString": f"CVSS:3.1/AV:{av}/AC:{ac}/PR:{pr}/UI:{ui}/S:{s}/C:{c}/I:{i}/A:{a}",
            "baseScore": score,
            "baseSeverity": _severity(score),
            "attackVector": "NETWORK",
            "attackComplexity": "LOW",
            "privilegesRequired": "NONE",
            "userInteraction": "NONE",
            "scope": "UNCHANGED",
            "confidentialityImpact": "HIGH",
            "integrityImpact": "HIGH",
            "availabilityImpact": "HIGH",
        },
        "exploitabilityScore": 3.9,
        "impactScore": 5.9,
    }


def _v40(rng: random.Random, source: str) -> dict[str, Any]:
    score = round(rng.uniform(2.0, 10.0), 1)
    vector = (
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:X/CR:X/IR:X/AR:X/"
        "MAV:X/MAC:X/MAT:X/MPR:X/MUI:X/MVC:X/MVI:X/MVA:X/MSC:X/MSI:X/MSA:X/S:X/AU:X/R:X/V:X/RE:X/U:X"
    )
    data: dict[str, Any] = {
        "version": "4.0",
        "vectorString": vector,
        "baseScore": score,
        "baseSeverity": _severity(score),
    }
    for key in (
        "attackVector attackComplexity attackRequirements privilegesRequired userInteraction "
        "vulnConfidentialityImpact vulnIntegrityImpact vulnAvailabilityImpact "
        "subConfidentialityImpact subIntegrityImpact subAvailabilityImpact exploitMaturity "
        "confidentialityRequirement integrityRequirement availabilityRequirement Safety "
        "Automatable Recovery valueDensity vulnerabilityResponseEffort providerUrgency"
    ).split():
        data[key] = "NOT_DEFINED"
    return {"source": source, "type": "Secondary", "cvssData": data}


def _v2(rng: random.Random) -> dict[str, Any]:
    score = round(rng.uniform(1.0, 10.0), 1)
    return {
        "source": "nvd@nist.gov",
        "type": "Primary",
        "cvssData": {
            "version": "2.0",
            "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "baseScore": score,
            "accessVector": "NETWORK",
            "accessComplexity": "LOW",
            "authentication": "NONE",
            "confidentialityImpact": "PARTIAL",
            "integrityImpact": "PARTIAL",
            "availabilityImpact": "PARTIAL",
        },
        "baseSeverity": "HIGH" if score >= 7 else ("MEDIUM" if score >= 4 else "LOW"),
        "exploitabilityScore": 10.0,
        "impactScore": 6.4,
        "acInsufInfo": False,
        "obtainAllPrivilege": False,
        "obtainUserPrivilege": False,
        "obtainOtherPrivilege": False,
        "userInteractionRequired": False,
    }


def _cpe_match(rng: random.Random, part: str = "a", vulnerable: bool = True) -> dict[str, Any]:
    vendor, product = rng.choice(_VENDORS), rng.choice(_PRODUCTS)
    match: dict[str, Any] = {
        "vulnerable": vulnerable,
        "criteria": f"cpe:2.3:{part}:{vendor}:{product}:*:*:*:*:*:*:*:*",
        "matchCriteriaId": str(uuid.UUID(int=rng.getrandbits(128))).upper(),
    }
    if rng.random() < 0.7:
        match["versionEndExcluding"] = f"{rng.randint(1, 20)}.{rng.randint(0, 30)}"
    if rng.random() < 0.3:
        match["versionStartIncluding"] = f"{rng.randint(0, 5)}.0"
    return match


def _configurations(rng: random.Random) -> list[dict[str, Any]]:
    roll = rng.random()
    if roll < 0.05:
        return []
    # A heavy tail: most CVEs name a handful of CPEs, a few name hundreds.
    matches = rng.randint(1, 6) if roll < 0.85 else rng.randint(7, 40)
    if roll > 0.99:
        matches = rng.randint(100, 400)
    configs: list[dict[str, Any]] = [
        {
            "nodes": [
                {
                    "operator": "OR",
                    "negate": False,
                    "cpeMatch": [_cpe_match(rng) for _ in range(matches)],
                }
            ]
        }
    ]
    if rng.random() < 0.15:
        configs.append(
            {
                "operator": "AND",
                "nodes": [
                    {
                        "operator": "OR",
                        "negate": False,
                        "cpeMatch": [_cpe_match(rng, "o")],
                    },
                    {
                        "operator": "OR",
                        "negate": False,
                        "cpeMatch": [_cpe_match(rng, "h", vulnerable=False)],
                    },
                ],
            }
        )
    return configs


def cve(rng: random.Random, year: int, number: int, modified: str | None = None) -> dict[str, Any]:
    """One ``vulnerabilities[]`` element."""
    cve_id = f"CVE-{year}-{number:05d}"
    cna = rng.choice(_CNAS)
    metrics: dict[str, Any] = {}
    roll = rng.random()
    status = "Analyzed" if roll < 0.75 else ("Modified" if roll < 0.9 else "Awaiting Analysis")
    if rng.random() < 0.01:
        status = "Rejected"
    v31: list[dict[str, Any]] = []
    if status in {"Analyzed", "Modified"}:
        v31.append(_v31(rng, "nvd@nist.gov", True))
    if rng.random() < 0.5:
        v31.append(_v31(rng, rng.choice((cna, _ADP)), False))
    if v31:
        metrics["cvssMetricV31"] = v31
    if year >= 2023 and rng.random() < 0.3:
        metrics["cvssMetricV40"] = [_v40(rng, cna)]
    if year < 2016 or rng.random() < 0.1:
        metrics["cvssMetricV2"] = [_v2(rng)]
    if year >= 2021 and rng.random() < 0.2:
        metrics["ssvcV203"] = [
            {
                "source": _ADP,
                "type": "Secondary",
                "ssvcData": {"version": "2.0.3", "options": [{"Exploitation": "none"}]},
            }
        ]
    descriptions = [{"lang": "en", "value": _sentence(rng, rng.randint(25, 70))}]
    if rng.random() < 0.6:
        descriptions.append({"lang": "es", "value": _sentence(rng, rng.randint(25, 70))})
    published = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:15:09.623"
    return {
        "cve": {
            "id": cve_id,
            "sourceIdentifier": cna,
            "published": published,
            "lastModified": modified or f"2025-{rng.randint(1, 12):02d}-01T17:19:56.250",
            "vulnStatus": status,
            "cveTags": [],
            "descriptions": descriptions,
            "metrics": metrics,
            "weaknesses": [
                {
                    "source": "nvd@nist.gov",
                    "type": "Primary",
                    "description": [{"lang": "en", "value": f"CWE-{rng.randint(20, 1300)}"}],
                }
            ],
            "configurations": _configurations(rng),
            "references": [
                {
                    "url": f"https://{rng.choice(_VENDORS)}.example/advisories/{cve_id}/{n}",
                    "source": cna,
                    "tags": rng.sample(["Patch", "Vendor Advisory", "Third Party Advisory"], 2),
                }
                for n in range(rng.randint(3, 12))
            ],
        }
    }


def _write_feed(path: Path, items: Iterator[dict[str, Any]]) -> tuple[int, int]:
    """Write a gzipped feed and its ``.meta``; returns (CVE count, uncompressed bytes)."""
    digest = hashlib.sha256()
    size = 0
    count = 0
    encoder = json.JSONEncoder(indent=2)
    with igzip.open(path, "wb", compresslevel=2) as out:

        def emit(text: str) -> None:
            nonlocal size
            data = text.encode()
            digest.update(data)
            size += len(data)
            out.write(data)

        emit(
            '{\n  "resultsPerPage": 0,\n  "startIndex": 0,\n  "totalResults": 0,\n'
            '  "format": "NVD_CVE",\n  "version": "2.0",\n'
            '  "timestamp": "2025-12-01T03:00:00.000",\n  "vulnerabilities": [\n'
        )
        for item in items:
            emit(("    ,\n" if count else "") + encoder.encode(item))
            count += 1
        emit("\n  ]\n}\n")
    meta = path.with_name(path.name.removesuffix(".json.gz") + ".meta")
    meta.write_text(
        f"lastModifiedDate:2025-12-01T03:00:00-05:00\r\nsize:{size}\r\n"
        f"zipSize:{path.stat().st_size}\r\ngzSize:{path.stat().st_size}\r\n"
        f"sha256:{digest.hexdigest().upper()}\r\n"
    )
    return count, size


def write_corpus(directory: Path, total: int, *, seed: int = 11) -> dict[str, int]:
    """Yearly feeds holding ``total`` CVEs in all; returns uncompressed bytes per file name."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = sum(_YEAR_WEIGHTS.values())
    rng = random.Random(seed)
    sizes: dict[str, int] = {}
    left = total
    years = sorted(_YEAR_WEIGHTS)
    for index, year in enumerate(years):
        count = left if index == len(years) - 1 else total * _YEAR_WEIGHTS[year] // weights
        left -= count
        name = f"nvdcve-2.0-{year}.json.gz"
        _, size = _write_feed(directory / name, (cve(rng, year, n) for n in range(1, count + 1)))
        sizes[name] = size
    return sizes


def write_modified(directory: Path, changed: int, new: int, *, seed: int = 12) -> int:
    """``nvdcve-2.0-modified`` with ``changed`` CVEs of 2025 modified again and ``new`` new ones."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stamp = "2025-12-02T08:00:00.000"
    items = [cve(rng, 2025, n, stamp) for n in range(1, changed + 1)]
    items += [cve(rng, 2026, n, stamp) for n in range(1, new + 1)]
    count, _ = _write_feed(directory / "nvdcve-2.0-modified.json.gz", iter(items))
    return count
