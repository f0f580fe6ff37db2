"""Counts and one-line texts shared by every ``kubegate scan`` report format.

Called by the writers in ``report.gate``, ``report.junit`` and ``report.markdown``.
"""

from __future__ import annotations

from typing import Any

from kubegate.gate import GateResult, Suppression
from kubegate.models import ImageUse, Severity


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
    }


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
    cluster = f" in cluster {use.cluster}" if use.cluster else ""
    return f"{use.kind} {namespace}{use.name} container {use.container} at {where}{via}{cluster}"
