"""Counts and one-line texts shared by every ``kubegate scan`` report format.

Called by the writers in ``report.gate``, ``report.junit`` and ``report.markdown``.
"""

from __future__ import annotations

from typing import Any

from kubegate.decide.gate import GateResult, PolicySource, Suppression
from kubegate.models import Finding, ImageUse, Severity


def policy_source_line(source: PolicySource) -> str | None:
    """``policy from --config-ref origin/main at commit <sha>: ...``; None without a ref."""
    if source.ref is None:
        return None
    files = " and ".join(f for f in (source.config, source.exceptions) if f) or "no policy files"
    return f"policy from --config-ref {source.ref} at commit {source.commit}: {files}"


def policy_source_object(source: PolicySource) -> dict[str, Any]:
    """The JSON ``policySource`` object (docs/scan.md)."""
    return {
        "config": source.config,
        "exceptions": source.exceptions,
        "ref": source.ref,
        "commit": source.commit,
    }


def summary(result: GateResult) -> dict[str, Any]:
    """Counts shown by every format."""
    findings = [f for image in result.images for f in image.findings]
    by_severity = {s.name: 0 for s in sorted(Severity, reverse=True)}
    for item in findings:
        by_severity[item.finding.severity.name] += 1
    return {
        "images": len(result.images),
        "uses": len(result.uses),
        "findings": by_severity,
        "blocking": sum(1 for f in findings if f.blocking),
        "suppressed": sum(1 for f in findings if f.suppressed and not f.blocking_uses),
        "unseen": len(result.blocking_unseen),
        "policyViolations": sum(len(image.violations) for image in result.images),
        # Findings no source rates at all (UNKNOWN): the policy's --severity decides them.
        "withoutSeverity": by_severity[Severity.UNKNOWN.name],
    }


def without_severity(count: int) -> str:
    """``; 3 findings without any severity`` when some are, else nothing."""
    return f"; {count} finding(s) without any severity" if count else ""


def until(suppression: Suppression) -> str:
    """``until 2026-12-31``, ``no expiry`` or ``VEX``: how long a suppression holds."""
    if suppression.expires is not None:
        return f"until {suppression.expires.isoformat()}"
    return "VEX statement" if suppression.source == "vex" else "permanent: no expiry"


def use_line(use: ImageUse) -> str:
    """``Deployment apps/web container web at apps/web.yaml:13 via flux-system/apps``."""
    where = f"{use.origin.file}:{use.origin.line}" if use.origin.file else "(unknown file)"
    namespace = f"{use.namespace}/" if use.namespace else ""
    via = f" via {use.kustomization}" if use.kustomization else ""
    chart = ""
    if use.helm_release:
        version = f" {use.chart.name}@{use.chart.version}" if use.chart else ""
        chart = f" (HelmRelease {use.helm_release}{', chart' + version if version else ''})"
    cluster = f" in cluster {use.cluster}" if use.cluster else ""
    return (
        f"{use.kind} {namespace}{use.name} container {use.container} at {where}{chart}{via}"
        f"{cluster}"
    )


def rated(finding: Finding) -> str:
    """``CRITICAL (nvd)``: the severity and the source that decided it."""
    return f"{finding.severity.name} ({finding.severity_source})"
