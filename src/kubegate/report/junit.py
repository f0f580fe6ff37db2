"""``kubegate scan --format junit``: JUnit XML, so CI test dashboards show the gate.

One ``<testcase>`` per image use (classname: the image reference; name: the workload, container
and manifest line). A use fails (``<failure>``) when a finding blocks it or its registry is not
allowed; the failure lists those findings. A use whose image could not be seen is an
``<error>``. What is not proven outside any image (render errors, HelmReleases, the database)
gets a test case of its own, ``<skipped>`` when an exception accepts it. Suppressed findings and
permanent exceptions are written to ``<system-out>`` and ``<properties>``. No timings are written:
the document depends only on the result, so it can be compared with a golden file.

Names come from the judged revision and the image: every piece of text is escaped with
:func:`kubegate.display.visible` (a line of a failure body is one piece, so a newline inside a
name cannot forge a line), and a last pass over the tree guarantees the document is XML 1.0:
no C0 character but the structural newlines, no surrogate, no U+FFFE/U+FFFF.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from kubegate.decide.gate import GateFinding, GateResult, ImageResult, Unseen
from kubegate.display import visible
from kubegate.models import ImageUse
from kubegate.report.summary import summary, until


def _finding_line(item: GateFinding) -> str:
    finding = item.finding
    fixed = ", ".join(finding.fixed_versions) or "no fixed version"
    title = f": {finding.title}" if finding.title else ""
    return visible(
        f"{finding.severity.name} {finding.id} in {finding.package.name} "
        f"{finding.package.version} (fixed: {fixed}){title}"
    )


def _case_name(use: ImageUse) -> str:
    namespace = f"{use.namespace}/" if use.namespace else ""
    where = f" ({use.origin.file}:{use.origin.line})" if use.origin.file else ""
    return f"{use.kind} {namespace}{use.name} container {use.container}{where}"


def _use_case(image: ImageResult, use: ImageUse) -> tuple[ET.Element, str]:
    case = ET.Element("testcase", classname=image.facts.reference, name=_case_name(use))
    blocking = [item for item in image.findings if item.blocking and use in item.blocking_uses]
    blocking.sort(key=lambda f: (-f.finding.severity, f.finding.id, f.finding.package.name))
    outcome = "passed"
    if image.violations or blocking:
        outcome = "failure"
        count = len(blocking)
        message = "; ".join(
            [*image.violations, *([f"{count} blocking finding(s)"] if count else [])]
        )
        failure = ET.SubElement(case, "failure", message=message, type="kubegate.blocked")
        failure.text = "\n".join(
            [*(visible(v) for v in image.violations), *(_finding_line(f) for f in blocking)]
        )
    elif image.facts.errors:
        outcome = "error"
        error = ET.SubElement(
            case, "error", message="image not proven clean", type="kubegate.unproven"
        )
        error.text = "\n".join(visible(message) for message in image.facts.errors)
    suppressed = [
        visible(
            f"suppressed {item.finding.id} in {item.finding.package.name}: {s.reason} "
            f"({until(s)}, {s.where})"
        )
        for item in image.findings
        for suppressed_use, s in item.suppressed
        if suppressed_use == use
    ]
    digest = image.facts.inspected.digest if image.facts.inspected else "not scanned"
    out = ET.SubElement(case, "system-out")
    out.text = "\n".join([f"digest {digest}", *suppressed])
    return case, outcome


def _unseen_case(item: Unseen) -> tuple[ET.Element, str]:
    where = f" ({item.origin.file}:{item.origin.line})" if item.origin and item.origin.file else ""
    case = ET.Element(
        "testcase", classname=f"kubegate.{item.kind.value}", name=item.message + where
    )
    if item.accepted is not None:
        ET.SubElement(
            case,
            "skipped",
            message=f"accepted: {item.accepted.reason} ({until(item.accepted)})",
        )
        return case, "skipped"
    error = ET.SubElement(case, "error", message="not proven", type="kubegate.unproven")
    error.text = visible(item.message)
    return case, "error"


def _properties(result: GateResult) -> ET.Element:
    properties = ET.Element("properties")
    pairs: list[tuple[str, str]] = [
        ("verdict", result.verdict.value),
        ("exitCode", str(result.exit_code)),
        ("source", result.revision.info.location),
    ]
    if result.revision.info.revision:
        pairs.append(("revision", result.revision.info.revision))
    if result.policy_source.ref is not None:
        pairs.append(("policyRef", result.policy_source.ref))
        pairs.append(("policyCommit", result.policy_source.commit or ""))
    unrated = summary(result)["withoutSeverity"]
    if unrated:
        pairs.append(("withoutSeverity", str(unrated)))
    pairs.extend(("permanentException", entry) for entry in result.permanent_exceptions)
    pairs.extend(("exceptionProblem", problem) for problem in result.exception_problems)
    for name, value in pairs:
        ET.SubElement(properties, "property", name=name, value=value)
    return properties


def junit_document(result: GateResult) -> str:
    """The JUnit XML document of ``result`` (one suite, UTF-8, trailing newline)."""
    cases: list[tuple[ET.Element, str]] = [
        _use_case(image, use) for image in result.images for use in image.facts.uses
    ]
    cases.extend(_unseen_case(item) for item in result.unseen if item.image is None)
    suite = ET.Element(
        "testsuite",
        name=f"kubegate scan {result.revision.info.location}",
        tests=str(len(cases)),
        failures=_count(cases, "failure"),
        errors=_count(cases, "error"),
        skipped=_count(cases, "skipped"),
    )
    suite.append(_properties(result))
    suite.extend(case for case, _ in cases)
    root = ET.Element(
        "testsuites",
        name="kubegate",
        tests=suite.get("tests", "0"),
        failures=suite.get("failures", "0"),
        errors=suite.get("errors", "0"),
    )
    root.append(suite)
    _make_safe(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _make_safe(root: ET.Element) -> None:
    """Escape every attribute and every line of text (the newlines joined above stay)."""
    for element in root.iter():
        for name, value in element.attrib.items():
            element.set(name, visible(value))
        if element.text:
            element.text = "\n".join(visible(line) for line in element.text.split("\n"))


def _count(cases: Sequence[tuple[ET.Element, str]], outcome: str) -> str:
    return str(sum(1 for _, o in cases if o == outcome))
