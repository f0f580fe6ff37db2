"""``kubegate scan --format markdown``: the gate's answer as a pull-request comment.

A heading with the verdict and counts, a table of the blocking findings (severity, flaw, package,
installed and fixed versions, image, where it is used), then everything else collapsed in
``<details>`` blocks: per image its digest, uses and every finding; suppressions with their
reasons and VEX justifications; what could not be proven; exception problems and permanent
exceptions. Cell text is escaped so a title cannot break the table or inject HTML: control and
bidi characters made visible (:func:`kubegate.display.visible`), ``&<>`` as entities, ``|``
backslashed, backticks replaced.
"""

from __future__ import annotations

from kubegate.decide.gate import GateFinding, GateResult, ImageResult, Verdict
from kubegate.display import visible
from kubegate.models import ImageUse
from kubegate.report.summary import (
    policy_source_line,
    rated,
    summary,
    until,
    use_line,
    without_severity,
)

_ICON = {Verdict.PASS: "✅", Verdict.BLOCKED: "❌", Verdict.UNPROVEN: "⚠️"}


def _cell(text: str) -> str:
    escaped = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _order(item: GateFinding) -> tuple[int, str, str]:
    return (-item.finding.severity, item.finding.id, item.finding.package.name)


def _blocking_rows(result: GateResult) -> list[str]:
    rows: list[str] = []
    for image in result.images:
        rows.extend(
            _row(
                [
                    "registry",
                    violation,
                    "",
                    "",
                    "",
                    image.facts.reference,
                    ", ".join(_where(use) for use in image.facts.uses),
                ]
            )
            for violation in image.violations
        )
        for item in sorted(image.blocking, key=_order):
            finding = item.finding
            rows.append(
                _row(
                    [
                        rated(finding),
                        finding.id,
                        finding.package.name,
                        finding.package.version,
                        ", ".join(finding.fixed_versions) or "none",
                        image.facts.reference,
                        ", ".join(_where(use) for use in item.blocking_uses),
                    ]
                )
            )
    return rows


def _where(use: ImageUse) -> str:
    place = f"{use.origin.file}:{use.origin.line}" if use.origin.file else "?"
    return f"{use.kind} {use.name} ({place})"


def _image_details(image: ImageResult) -> list[str]:
    inspected = image.facts.inspected
    head = f"<details><summary><code>{_cell(image.facts.reference)}</code>"
    blocking = len(image.blocking) + len(image.violations)
    head += f": {len(image.findings)} finding(s), {blocking} blocking</summary>"
    lines = [head, ""]
    if inspected is not None:
        lines.append(
            f"Digest `{inspected.digest}`" + (f" ({_cell(inspected.os)})" if inspected.os else "")
        )
        if inspected.substituted:
            lines.append(f"substituted by `{_cell(inspected.substituted)}`")
        lines.append("")
    lines.extend(f"- used by {_cell(use_line(use))}" for use in image.facts.uses)
    lines.extend(f"- **blocked**: {_cell(v)}" for v in image.violations)
    lines.extend(f"- **error**: {_cell(message)}" for message in image.facts.errors)
    if image.findings:
        lines += [
            "",
            _row(["Severity", "Vulnerability", "Package", "Installed", "Fixed", "Policy"]),
            "|---|---|---|---|---|---|",
        ]
        for item in sorted(image.findings, key=_order):
            finding = item.finding
            if item.blocking:
                policy = "blocks"
            elif item.suppressed and not item.blocking_uses:
                policy = "suppressed"
            else:
                policy = item.judged.reason
            lines.append(
                _row(
                    [
                        rated(finding),
                        finding.id,
                        finding.package.name,
                        finding.package.version,
                        ", ".join(finding.fixed_versions) or "none",
                        policy,
                    ]
                )
            )
    lines += ["", "</details>", ""]
    return lines


def markdown_comment(result: GateResult) -> str:
    """The Markdown text of ``result``."""
    counts = summary(result)
    severities = ", ".join(f"{name} {n}" for name, n in counts["findings"].items() if n)
    lines = [
        f"## {_ICON[result.verdict]} kubegate: {result.verdict.value}",
        "",
        f"**{result.verdict.value}** (exit {result.exit_code}) for "
        f"`{_cell(result.revision.info.location)}`: {counts['images']} image(s), "
        f"{counts['uses']} use(s); findings: {severities or 'none'}; "
        f"**{counts['blocking']} blocking**, {counts['suppressed']} suppressed, "
        f"{counts['unseen']} not proven"
        + (
            f", **{counts['policyViolations']} from a registry not allowed**"
            if counts["policyViolations"]
            else ""
        )
        + (" (`--fail-open`: not proven does not block)" if result.fail_open else "")
        + without_severity(counts["withoutSeverity"]),
        "",
    ]
    if (policy := policy_source_line(result.policy_source)) is not None:
        lines += [_cell(policy), ""]
    rows = _blocking_rows(result)
    if rows:
        lines += [
            "### Blocking",
            "",
            _row(
                ["Severity", "Vulnerability", "Package", "Installed", "Fixed", "Image", "Used by"]
            ),
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    if result.blocking_unseen:
        lines += ["### Not proven", ""]
        lines.extend(
            f"- [{item.kind.value}] {_cell(item.message)}" for item in result.blocking_unseen
        )
        lines.append("")
    for image in result.images:
        lines.extend(_image_details(image))
    suppressed = [
        f"- {_cell(item.finding.id)} in {_cell(item.finding.package.name)} for "
        f"{_cell(use_line(use))}: {_cell(s.reason)} ({until(s)}, {_cell(s.where)})"
        for image in result.images
        for item in image.findings
        for use, s in item.suppressed
    ]
    accepted = [
        f"- [{item.kind.value}] {_cell(item.message)}: accepted, {_cell(item.accepted.reason)} "
        f"({until(item.accepted)})"
        for item in result.unseen
        if item.accepted is not None
    ]
    _section(lines, "Suppressed and accepted", [*suppressed, *accepted])
    _section(
        lines,
        "Exception problems (these entries suppress nothing)",
        [f"- {_cell(p)}" for p in result.exception_problems],
    )
    _section(
        lines,
        "Permanent exceptions (no expiry)",
        [f"- {_cell(p)}" for p in result.permanent_exceptions],
        open_=True,
    )
    # Each piece of data went through _cell; this pass catches any that did not.
    return "\n".join(visible(line) for line in lines).rstrip("\n") + "\n"


def _section(lines: list[str], title: str, items: list[str], *, open_: bool = False) -> None:
    if not items:
        return
    lines += [
        f"<details{' open' if open_ else ''}><summary>{title} ({len(items)})</summary>",
        "",
        *items,
        "",
        "</details>",
        "",
    ]
