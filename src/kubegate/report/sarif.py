"""SARIF 2.1.0 for ``kubegate scan --format sarif`` (code-scanning dashboards).

One result per blocking finding per image use, located at the manifest file and line of the
use's ``image:`` field (exactly one ``physicalLocation``, path relative to the source root), one
rule per vulnerability id carrying ``security-severity``, and ``partialFingerprints`` derived only
from stable facts (flaw, package, image reference, workload, container), so the same finding
keeps its fingerprint across runs. Validated against the 2.1.0 schema by the tests.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from kubegate import __version__
from kubegate.decide.gate import GateFinding, GateResult, ImageResult
from kubegate.display import visible
from kubegate.models import Finding, ImageUse, Severity
from kubegate.report.revision import chart_object

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI: Final = "https://osv.dev/"
#: A representative CVSS-like score per severity when no vector of that band is known
#: (code-scanning ranks by ``security-severity``: >= 9 critical, 7-8.9 high, 4-6.9 medium).
_BAND_SCORE: Final = {
    Severity.CRITICAL: 9.0,
    Severity.HIGH: 7.0,
    Severity.MEDIUM: 4.0,
    Severity.LOW: 0.1,
    Severity.UNKNOWN: 0.0,
}
_BANDS: Final = {
    Severity.CRITICAL: (9.0, 10.0),
    Severity.HIGH: (7.0, 8.9),
    Severity.MEDIUM: (4.0, 6.9),
    Severity.LOW: (0.1, 3.9),
    Severity.UNKNOWN: (0.0, 0.0),
}
_LEVEL: Final = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}


def security_severity(finding: Finding) -> str:
    """The finding's CVSS score when it agrees with the decided severity, else its band's."""
    low, high = _BANDS[finding.severity]
    if finding.cvss is not None and low <= finding.cvss.score <= high:
        return f"{finding.cvss.score:.1f}"
    return f"{_BAND_SCORE[finding.severity]:.1f}"


def fingerprint(finding: Finding, image: str, use: ImageUse) -> str:
    """Stable across runs: no digest, time or line number (a line moves with unrelated edits)."""
    package = finding.package
    parts = (
        finding.id,
        package.name,
        package.version,
        finding.platform or "",
        image,
        use.origin.file or "",
        use.kind,
        use.namespace or "",
        use.name,
        use.container,
        # Only with several clusters: single-cluster fingerprints stay as they were.
        *((use.cluster,) if use.cluster else ()),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _rule(item: GateFinding) -> dict[str, Any]:
    finding = item.finding
    title = finding.title or finding.id
    return {
        "id": finding.id,
        "name": "ContainerImageVulnerability",
        "shortDescription": {"text": f"{finding.id}: {title}"[:1000]},
        "fullDescription": {"text": title},
        "helpUri": f"https://osv.dev/vulnerability/{finding.id}",
        "help": {
            "text": f"{finding.id} ({', '.join(finding.record_ids)}): {title}",
            "markdown": f"**{finding.id}** ({', '.join(finding.record_ids)}): {title}",
        },
        "defaultConfiguration": {"level": _LEVEL[finding.severity]},
        "properties": {
            "security-severity": security_severity(finding),
            "tags": ["security", "vulnerability", finding.severity.name],
        },
    }


def _location(use: ImageUse) -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": use.origin.file or ".", "uriBaseId": "SRCROOT"}
    }
    if use.origin.file and use.origin.line:
        physical["region"] = {"startLine": use.origin.line}
    return {"physicalLocation": physical}


def _result(
    item: GateFinding, image: ImageResult, use: ImageUse, rule_id: str, rule_index: int
) -> dict[str, Any]:
    finding = item.finding
    inspected = image.facts.inspected
    fixed = ", ".join(finding.fixed_versions) or "no fixed version"
    at = f"@{inspected.digest}" if inspected else ""
    return {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        # The message is what code-scanning UIs render: escaped (properties stay exact).
        "message": {
            "text": visible(
                f"{finding.severity.name} {finding.id} in {finding.package.name} "
                f"{finding.package.version} ({finding.ecosystem}; fixed: {fixed}) in image "
                f"{image.facts.reference}{at}, used by {use.kind} "
                f"{use.namespace or ''}/{use.name} container {use.container}"
            )
        },
        "locations": [_location(use)],
        "partialFingerprints": {
            "kubegateFinding/v1": fingerprint(finding, image.facts.reference, use)
        },
        "properties": {
            "image": image.facts.reference,
            "digest": inspected.digest if inspected else None,
            "package": finding.package.purl,
            "platform": finding.platform,
            "cluster": use.cluster,
            "helmRelease": use.helm_release,
            "chart": chart_object(use.chart),
        },
    }


REGISTRY_RULE: Final = "kubegate/registry-not-allowed"


def _registry_rule() -> dict[str, Any]:
    text = "The image comes from a registry outside the allow-list (--allowed-registries)"
    return {
        "id": REGISTRY_RULE,
        "name": "RegistryNotAllowed",
        "shortDescription": {"text": "Image from a registry that is not allowed"},
        "fullDescription": {"text": text},
        "help": {"text": text, "markdown": text},
        "defaultConfiguration": {"level": "error"},
        "properties": {"security-severity": "9.0", "tags": ["security", "supply-chain"]},
    }


def _violation_result(
    violation: str, image: ImageResult, use: ImageUse, rule_index: int
) -> dict[str, Any]:
    ident = "\x1f".join(
        (REGISTRY_RULE, image.facts.reference, use.origin.file or "", use.kind, use.name)
    )
    return {
        "ruleId": REGISTRY_RULE,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {
            "text": visible(
                f"image {image.facts.reference}: {violation}, used by {use.kind} "
                f"{use.namespace or ''}/{use.name} container {use.container}"
            )
        },
        "locations": [_location(use)],
        "partialFingerprints": {"kubegateFinding/v1": hashlib.sha256(ident.encode()).hexdigest()},
        "properties": {
            "image": image.facts.reference,
            "cluster": use.cluster,
            "helmRelease": use.helm_release,
            "chart": chart_object(use.chart),
        },
    }


def sarif_document(result: GateResult) -> str:
    """The SARIF log of ``result`` (indented JSON with a trailing newline)."""
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for image in result.images:
        for item in image.blocking:
            rule = rules.setdefault(item.finding.id, _rule(item))
            rule_index = list(rules).index(item.finding.id)
            results.extend(
                _result(item, image, use, rule["id"], rule_index) for use in item.blocking_uses
            )
    for image in result.images:
        for violation in image.violations:
            rule = rules.setdefault(REGISTRY_RULE, _registry_rule())
            rule_index = list(rules).index(REGISTRY_RULE)
            results.extend(
                _violation_result(violation, image, use, rule_index) for use in image.facts.uses
            )
    info = result.revision.info
    properties: dict[str, Any] = {"verdict": result.verdict.value, "revision": info.revision}
    if result.permanent_exceptions:
        properties["permanentExceptions"] = list(result.permanent_exceptions)
    if result.policy_source.ref is not None:
        properties["policyRef"] = result.policy_source.ref
        properties["policyCommit"] = result.policy_source.commit
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kubegate",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": list(rules.values()),
                    }
                },
                "automationDetails": {"id": f"kubegate/{info.location}/"},
                "results": results,
                "properties": properties,
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
