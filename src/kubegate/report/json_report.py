"""``kubegate image --format json``: the stable document described in docs/image.md.

``schemaVersion`` 1. One finding object per (package, flaw, platform); keys are camelCase and
only ever added within a schema version. Called through :func:`kubegate.report.render_image_report`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kubegate.decide.policy import JudgedFinding
from kubegate.models import Severity
from kubegate.report.interface import ImageInfo, OutputFormat, RenderOptions

SCHEMA_VERSION = 1


def finding_object(judged: JudgedFinding) -> dict[str, Any]:
    """The JSON object of one judged finding."""
    finding = judged.finding
    package = finding.package
    return {
        "id": finding.id,
        "ids": list(finding.record_ids),
        "aliases": list(finding.aliases),
        "severity": finding.severity.name,
        "severitySource": finding.severity_source,
        "cvss": (
            {"vector": finding.cvss.vector, "score": finding.cvss.score} if finding.cvss else None
        ),
        "package": {
            "name": package.name,
            "version": package.version,
            "ecosystem": finding.ecosystem,
            "purl": package.purl,
            "source": {
                "name": package.source_name or package.name,
                "version": package.source_version or package.version,
            },
        },
        "fixedVersions": list(finding.fixed_versions),
        "platform": finding.platform,
        "blocking": judged.blocking,
        "title": finding.title,
    }


def summary(judged: Sequence[JudgedFinding]) -> dict[str, int]:
    """Findings per severity, worst first, every severity present."""
    counts = {severity.name: 0 for severity in sorted(Severity, reverse=True)}
    for item in judged:
        counts[item.finding.severity.name] += 1
    return counts


class JSONWriter:
    """Writes the schemaVersion 1 document."""

    format = OutputFormat.JSON

    def render(
        self, image: ImageInfo, judged: Sequence[JudgedFinding], options: RenderOptions
    ) -> str:
        """The document, indented, with a trailing newline."""
        document = {
            "schemaVersion": SCHEMA_VERSION,
            "image": {
                "reference": image.reference,
                "digest": image.digest,
                "os": image.os,
                "platforms": [
                    {"platform": p.platform, "digest": p.digest} for p in image.platforms
                ],
            },
            "findings": [finding_object(item) for item in judged],
            "summary": summary(judged),
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
