"""``kubegate scan`` reports: table, JSON, SARIF, JUnit and Markdown, from a :class:`GateResult`.

One writer per :class:`GateFormat`, listed once in :data:`GATE_WRITERS` (a test checks the
mapping is exhaustive). The JSON document is ``schemaVersion`` 1, documented in docs/scan.md; its
finding objects are those of ``kubegate image`` (``json_report.finding_object``) plus the uses
they block and the exceptions that suppress them. SARIF 2.1.0: ``report.sarif``; JUnit XML:
``report.junit``; a pull-request comment in Markdown: ``report.markdown``. Every format lists the
permanent exceptions (entries without expiry) in force.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from kubegate.decide.gate import GateFinding, GateResult, ImageResult, Suppression, Unseen
from kubegate.display import visible
from kubegate.errors import redact_urls
from kubegate.report.interface import GateFormat
from kubegate.report.json_report import finding_object
from kubegate.report.junit import junit_document
from kubegate.report.markdown import markdown_comment
from kubegate.report.revision import (
    not_seen_object,
    problem_object,
    remote_base_object,
    source_object,
    use_object,
)
from kubegate.report.sarif import sarif_document
from kubegate.report.summary import (
    policy_source_line,
    policy_source_object,
    summary,
    until,
    use_line,
    without_severity,
)
from kubegate.report.table import HEADERS, aligned, finding_row

SCHEMA_VERSION: Final = 1


def _suppression_object(suppression: Suppression) -> dict[str, Any]:
    return {
        "id": suppression.id,
        "source": suppression.source,
        "reason": suppression.reason,
        "justification": suppression.justification,
        "expires": suppression.expires.isoformat() if suppression.expires else None,
        "where": suppression.where,
    }


def _gate_finding_object(item: GateFinding) -> dict[str, Any]:
    document = finding_object(item.judged)
    document["blocking"] = item.blocking
    document["policy"] = item.judged.reason
    document["blockingUses"] = [use_object(use) for use in item.blocking_uses]
    document["suppressed"] = [
        {"use": use_object(use), "exception": _suppression_object(s)} for use, s in item.suppressed
    ]
    return document


def _image_object(image: ImageResult) -> dict[str, Any]:
    facts = image.facts
    inspected = facts.inspected
    return {
        "image": facts.reference,
        "digest": inspected.digest if inspected else None,
        "os": inspected.os if inspected else None,
        "substitutedBy": inspected.substituted if inspected else None,
        "platforms": [
            {"platform": p.platform, "digest": p.manifest_digest}
            for p in (inspected.platforms if inspected else ())
        ],
        "uses": [use_object(use) for use in facts.uses],
        "findings": [_gate_finding_object(item) for item in image.findings],
        "errors": list(facts.errors),
        "policyViolations": list(image.violations),
    }


def _unseen_object(item: Unseen) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "message": item.message,
        "file": item.origin.file if item.origin else None,
        "line": item.origin.line if item.origin else None,
        "image": item.image,
        "accepted": _suppression_object(item.accepted) if item.accepted else None,
    }


def gate_json(result: GateResult) -> str:
    """The ``--format json`` document (docs/scan.md)."""
    info = result.revision.info
    document = {
        "schemaVersion": SCHEMA_VERSION,
        "verdict": result.verdict.value,
        "exitCode": result.exit_code,
        "failOpen": result.fail_open,
        "source": source_object(info),
        "policy": {
            "severities": [s.name for s in sorted(result.policy.blocking, reverse=True)],
            "ignoreUnfixed": result.policy.ignore_unfixed,
        },
        "database": result.database,
        "policySource": policy_source_object(result.policy_source),
        "summary": summary(result),
        "images": [_image_object(image) for image in result.images],
        "notSeen": [not_seen_object(item) for item in result.revision.not_seen],
        "notes": [not_seen_object(item) for item in result.revision.notes],
        "unseen": [_unseen_object(item) for item in result.unseen],
        "errors": [problem_object(p) for p in result.revision.problems],
        "remoteBases": [remote_base_object(item) for item in result.revision.remote_bases],
        "exceptionProblems": list(result.exception_problems),
        "permanentExceptions": list(result.permanent_exceptions),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def gate_table(result: GateResult, width: int | None = None) -> str:
    """Verdict line, then per image its digest, the workloads using it and its findings."""
    counts = summary(result)
    severities = ", ".join(f"{name} {n}" for name, n in counts["findings"].items() if n)
    lines = [
        f"{result.verdict.value}: {counts['images']} image(s), {counts['uses']} use(s), "
        f"findings: {severities or 'none'}; {counts['blocking']} blocking, "
        f"{counts['suppressed']} suppressed, {counts['unseen']} not proven"
        + (
            f", {counts['policyViolations']} from a registry not allowed"
            if counts["policyViolations"]
            else ""
        )
        + (" (--fail-open: not proven does not block)" if result.fail_open else "")
        + without_severity(counts["withoutSeverity"])
    ]
    if (policy := policy_source_line(result.policy_source)) is not None:
        lines.append(policy)
    for image in result.images:
        lines.append("")
        inspected = image.facts.inspected
        head = image.facts.reference
        if inspected is not None:
            head += f" @ {inspected.digest}" + (f" ({inspected.os})" if inspected.os else "")
            if inspected.substituted:
                head += f" [substituted by {inspected.substituted}]"
        lines.append(head)
        lines.extend(f"  used by {use_line(use)}" for use in image.facts.uses)
        lines.extend(f"  BLOCKED {violation}" for violation in image.violations)
        lines.extend(f"  ERROR {message}" for message in image.facts.errors)
        rows = [
            finding_row(item.judged) if item.blocking else _not_blocking_row(item)
            for item in sorted(
                image.findings,
                key=lambda f: (-f.finding.severity, f.finding.id, f.finding.package.name),
            )
        ]
        if rows:
            lines.extend("  " + line for line in aligned(HEADERS, rows, width))
        elif inspected is not None:
            lines.append("  no vulnerabilities found")
        elif not image.facts.errors and not image.violations:
            lines.append("  not scanned")
    suppressed = [
        (item, use, s)
        for image in result.images
        for item in image.findings
        for use, s in item.suppressed
    ]
    if suppressed:
        lines += ["", "Suppressed (exceptions and VEX statements):"]
        lines.extend(
            f"  {item.finding.id} in {item.finding.package.name} for {use_line(use)}: "
            f"{s.reason} ({until(s)}, {s.where})"
            for item, use, s in suppressed
        )
    if result.unseen:
        lines += ["", "Not proven (could not see):"]
        for item in result.unseen:
            where = (
                f" ({item.origin.file}:{item.origin.line})"
                if item.origin and item.origin.file
                else ""
            )
            accepted = (
                f" -- accepted: {item.accepted.reason} ({until(item.accepted)})"
                if item.accepted
                else ""
            )
            lines.append(f"  [{item.kind.value}] {item.message}{where}{accepted}")
    if result.revision.notes:
        lines += ["", "Notes (rendered, with a remark; they do not block):"]
        for note in result.revision.notes:
            name = f"{note.namespace}/{note.name}" if note.namespace else note.name
            where = f" ({note.origin.where})" if note.origin.where else ""
            lines.append(f"  {note.kind} {name}: {note.reason}{where}")
    if result.revision.remote_bases:
        lines += ["", "Remote bases fetched (--allow-remote-bases), judged as fetched:"]
        lines.extend(
            f"  {item.url} sha256 {item.digest.removeprefix('sha256:')} "
            f"({item.origin.file} {item.field})"
            for item in result.revision.remote_bases
        )
    if result.exception_problems:
        lines += ["", "Exception problems (these entries suppress nothing):"]
        lines.extend(f"  {problem}" for problem in result.exception_problems)
    if result.permanent_exceptions:
        lines += ["", "Permanent exceptions (no expiry):"]
        lines.extend(f"  {entry}" for entry in result.permanent_exceptions)
    # Every line holds names from the revision or the image: one escape pass, so that no
    # control character, newline or bidi override reaches a terminal or a CI log raw.
    return "\n".join(visible(line) for line in lines) + "\n"


def _finding_order(item: GateFinding) -> tuple[int, str, str]:
    return (-item.finding.severity, item.finding.id, item.finding.package.name)


def _not_blocking_row(item: GateFinding) -> tuple[str, ...]:
    row = finding_row(item.judged)
    if item.judged.blocking and not item.blocking_uses:
        return (row[0], row[1], f"{item.finding.severity.name} (suppressed)", *row[3:])
    return row


#: Every format's writer, once each.
GATE_WRITERS: Final[dict[GateFormat, Callable[[GateResult, int | None], str]]] = {
    GateFormat.TABLE: gate_table,
    GateFormat.JSON: lambda result, _width: gate_json(result),
    GateFormat.SARIF: lambda result, _width: sarif_document(result),
    GateFormat.JUNIT: lambda result, _width: junit_document(result),
    GateFormat.MARKDOWN: lambda result, _width: markdown_comment(result),
}


def render_gate_report(result: GateResult, fmt: GateFormat, width: int | None = None) -> str:
    """The report of ``result`` in ``fmt``, with URL credentials and query strings redacted.

    Redacting the finished text covers every field that may echo a URL (messages of registries,
    git, kustomize) whoever produced it; the placeholder needs no escaping in any format.
    """
    return redact_urls(GATE_WRITERS[fmt](result, width))


__all__ = ["GATE_WRITERS", "GateFormat", "render_gate_report", "summary"]
