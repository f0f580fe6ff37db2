"""The gate's "severities need data" rule (docs/scan.md) and how every report counts findings
without any severity. The database side is covered by tests/integration/test_scan_severity.py.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest

from kubegate.decide.gate import GateResult, ImageFacts, Revision, UnseenKind, Verdict, decide
from kubegate.decide.ignorefile import IgnoreFile, VulnerabilityException
from kubegate.decide.policy import Policy, RatingData, RatingState
from kubegate.errors import EXIT_BLOCKED, EXIT_OK, EXIT_UNPROVEN
from kubegate.images.find import ImageScan
from kubegate.images.reference import parse_reference
from kubegate.models import CVSS, Finding, ImageUse, Origin, Severity, SourceInfo
from kubegate.report.gate import GateFormat, render_gate_report
from tests.fixtures.osvdb import deb

TODAY = dt.date(2026, 12, 3)
REF = parse_reference("registry.example/app:1.0")
USE = ImageUse(REF, Origin("apps/web.yaml", 7), "Deployment", "apps", "web", "app")
ABSENT = RatingData(RatingState.ABSENT, "the advisory database holds no NVD data")
STALE = RatingData(
    RatingState.STALE, "its NVD data is 200.0h old (last import ...), more than --db-max-age"
)


def _finding(cve: str, severity: Severity, source: str) -> Finding:
    return Finding(
        id=cve,
        record_ids=("DSA-9999-1", cve),
        aliases=(),
        severity=severity,
        severity_source=source,
        package=deb("libssl1.1", "1.1.1d-0+deb10u6", "openssl"),
        ecosystem="Debian:10",
        fixed_versions=("1.1.1d-0+deb10u7",),
        cvss=CVSS("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9)
        if source != "none"
        else None,
    )


def _decide(
    findings: list[Finding],
    sources: RatingData | None,
    *,
    policy: Policy | None = None,
    fail_open: bool = False,
    ignore: IgnoreFile | None = None,
) -> GateResult:
    revision = Revision(SourceInfo("dir", "repo"), ImageScan((USE,), ()), (), ())
    facts = ImageFacts(str(REF), REF, (USE,), None, tuple(findings))
    return decide(
        revision,
        [facts],
        [],
        policy=policy or Policy(),
        ignore=ignore or IgnoreFile(),
        fail_open=fail_open,
        today=TODAY,
        rating_data=sources,
    )


UNRATED = [_finding(f"CVE-2099-{n:04}", Severity.UNKNOWN, "none") for n in range(3)]


def test_no_nvd_data_makes_unrated_findings_unproven_with_one_line() -> None:
    result = _decide(UNRATED, ABSENT)
    assert (result.verdict, result.exit_code) == (Verdict.UNPROVEN, EXIT_UNPROVEN)
    (item,) = result.blocking_unseen
    assert item.kind is UnseenKind.DATABASE
    assert item.message.startswith("3 finding(s) cannot be rated: the advisory database holds")
    assert "`kubegate db update`" in item.message and "--nvd-source" in item.message


def test_fail_open_lets_it_through_as_a_warning() -> None:
    result = _decide(UNRATED, ABSENT, fail_open=True)
    assert (result.verdict, result.exit_code) == (Verdict.UNPROVEN, EXIT_OK)


def test_policy_blocking_unknown_already_blocks() -> None:
    result = _decide(UNRATED, ABSENT, policy=Policy(frozenset(Severity)))
    assert (result.verdict, result.exit_code) == (Verdict.BLOCKED, EXIT_BLOCKED)
    assert result.unseen == ()


def test_fresh_nvd_data_unknown_follows_the_policy_and_is_counted() -> None:
    result = _decide(UNRATED, RatingData())
    assert (result.verdict, result.exit_code) == (Verdict.PASS, EXIT_OK)
    table = render_gate_report(result, GateFormat.TABLE)
    assert table.splitlines()[0].endswith("; 3 finding(s) without any severity")
    assert (
        json.loads(render_gate_report(result, GateFormat.JSON))["summary"]["withoutSeverity"] == 3
    )
    assert "3 finding(s) without any severity" in render_gate_report(result, GateFormat.MARKDOWN)
    junit = ET.fromstring(render_gate_report(result, GateFormat.JUNIT))  # noqa: S314 - our own
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert properties["withoutSeverity"] == "3"


def test_stale_nvd_rating_is_no_rating() -> None:
    medium = [_finding("CVE-2021-4160", Severity.MEDIUM, "nvd")]
    assert _decide(medium, RatingData()).exit_code == EXIT_OK
    result = _decide(medium, STALE)
    assert result.exit_code == EXIT_UNPROVEN
    assert "its NVD data is 200.0h old" in result.blocking_unseen[0].message


def test_a_vendor_rating_needs_no_nvd_data() -> None:
    assert _decide([_finding("CVE-2021-4160", Severity.LOW, "debian")], ABSENT).exit_code == 0


def test_fully_suppressed_finding_needs_no_rating() -> None:
    entry = VulnerabilityException(
        id="CVE-2099-0000", reason="not reachable", expires=TODAY + dt.timedelta(days=30)
    )
    ignore = IgnoreFile(vulnerabilities=(entry,))
    result = _decide(UNRATED[:1], ABSENT, ignore=ignore)
    assert result.exit_code == EXIT_OK, result.unseen


@pytest.mark.parametrize("fmt", list(GateFormat))
def test_no_count_when_every_finding_is_rated(fmt: GateFormat) -> None:
    result = _decide([_finding("CVE-2021-4160", Severity.MEDIUM, "nvd")], RatingData())
    assert "without any severity" not in render_gate_report(result, fmt)
    assert 'withoutSeverity" value' not in render_gate_report(result, fmt)
