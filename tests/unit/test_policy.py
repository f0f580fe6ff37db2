"""The policy core: Trivy's severity semantics, --ignore-unfixed and exit codes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kubegate.decide.policy import (
    DEFAULT_BLOCKING,
    Policy,
    RatingData,
    RatingState,
    exit_code,
    judge,
    missing_severity,
    missing_severity_message,
    parse_duration,
)
from kubegate.errors import UsageError
from kubegate.models import Finding, ImageRef, Severity
from tests.fixtures.osvdb import deb


def _finding(severity: Severity, fixed: tuple[str, ...] = ("1.0-2",)) -> Finding:
    return Finding(
        id=f"CVE-2099-{severity.value}",
        record_ids=(f"CVE-2099-{severity.value}",),
        aliases=(),
        severity=severity,
        severity_source="nvd",
        package=deb("demo", "1.0-1"),
        ecosystem="Debian:12",
        fixed_versions=fixed,
    )


def test_default_blocks_high_and_critical() -> None:
    judged = judge([_finding(s) for s in Severity], Policy())
    assert {j.finding.severity for j in judged if j.blocking} == DEFAULT_BLOCKING
    assert exit_code(judged) == 1


def test_severity_is_a_set_not_a_threshold() -> None:
    policy = Policy.from_options("low, critical")
    judged = judge([_finding(s) for s in Severity], policy)
    assert {j.finding.severity for j in judged if j.blocking} == {Severity.LOW, Severity.CRITICAL}


def test_threshold_is_x_and_above() -> None:
    policy = Policy.from_options(severity_threshold="medium")
    assert policy.blocking == {Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL}
    assert Policy.from_options(severity_threshold="UNKNOWN").blocking == set(Severity)


def test_ignore_unfixed_reports_but_does_not_block() -> None:
    unfixed = _finding(Severity.CRITICAL, fixed=())
    (judged,) = judge([unfixed], Policy(ignore_unfixed=True))
    assert not judged.blocking and "ignore-unfixed" in judged.reason
    assert exit_code([judged]) == 0
    (fixed,) = judge([_finding(Severity.CRITICAL)], Policy(ignore_unfixed=True))
    assert fixed.blocking


def test_exit_codes() -> None:
    assert exit_code([]) == 0
    assert exit_code([], undecided=True) == 2
    assert exit_code(judge([_finding(Severity.LOW)], Policy())) == 0
    assert exit_code(judge([_finding(Severity.HIGH)], Policy()), undecided=True) == 1


@pytest.mark.parametrize(
    ("severity", "threshold"),
    [("HIGH,SEVERE", None), ("", None), (None, "urgent"), ("HIGH", "LOW")],
)
def test_bad_options_are_usage_errors(severity: str | None, threshold: str | None) -> None:
    with pytest.raises(UsageError) as info:
        Policy.from_options(severity, threshold)
    assert info.value.exit_code == 3


def test_durations() -> None:
    assert parse_duration("120h").total_seconds() == 120 * 3600
    assert parse_duration("5d").days == 5
    with pytest.raises(UsageError):
        parse_duration("5 days")


def test_allowed_registries() -> None:
    from kubegate.decide.policy import parse_registries

    allowed = parse_registries(["ghcr.io", "Index.Docker.io", "*.corp.example", "127.0.0.1:5000"])
    assert allowed == {"ghcr.io", "docker.io", "*.corp.example", "127.0.0.1:5000"}
    policy = Policy(allowed_registries=allowed)
    assert policy.registry_allowed(ImageRef("docker.io", "library/nginx", "1"))
    assert policy.registry_allowed(ImageRef("eu.corp.example", "team/app", "1"))
    assert not policy.registry_allowed(ImageRef("127.0.0.1:5001", "team/app", "1"))
    violation = policy.registry_violation(ImageRef("quay.io", "x/y", "1"))
    assert violation is not None and "quay.io is not allowed" in violation
    assert Policy().registry_allowed(ImageRef("quay.io", "x/y", "1"))
    for bad in (["https://ghcr.io"], ["a b"], [" "]):
        with pytest.raises(UsageError):
            parse_registries(bad)


# -- severities need data (docs/scan.md "Severities need data") ------------------------------
ABSENT = RatingData(RatingState.ABSENT, "the advisory database holds no NVD data")
STALE = RatingData(RatingState.STALE, "its NVD data is 200.0h old")


def _rated(severity: Severity, source: str, fixed: tuple[str, ...] = ("1.0-2",)) -> Finding:
    return replace(_finding(severity, fixed), severity_source=source)


@pytest.mark.parametrize(
    ("finding", "policy", "sources", "missing"),
    [
        # No NVD data: an unrated CVE could be CRITICAL.
        (_rated(Severity.UNKNOWN, "none"), Policy(), ABSENT, True),
        # ... unless the policy blocks UNKNOWN already,
        (_rated(Severity.UNKNOWN, "none"), Policy(frozenset(Severity)), ABSENT, False),
        # ... or no severity could make it block (unfixed under --ignore-unfixed).
        (_rated(Severity.UNKNOWN, "none", ()), Policy(ignore_unfixed=True), ABSENT, False),
        (_rated(Severity.UNKNOWN, "none"), Policy(ignore_unfixed=True), ABSENT, True),
        # Fresh NVD data: an UNKNOWN follows --severity, as any other severity.
        (_rated(Severity.UNKNOWN, "none"), Policy(), RatingData(), False),
        # A vendor's rating needs no NVD data, fresh or not.
        (_rated(Severity.LOW, "debian"), Policy(), STALE, False),
        # NVD's own rating from stale data is no rating.
        (_rated(Severity.LOW, "nvd"), Policy(), STALE, True),
        (_rated(Severity.MEDIUM, "secondary:CISA-ADP"), Policy(), STALE, True),
        (_rated(Severity.UNKNOWN, "none"), Policy(), STALE, True),
        # A stale rating that blocks still blocks: exit 1 says more than "not proven".
        (_rated(Severity.CRITICAL, "nvd"), Policy(), STALE, False),
    ],
)
def test_missing_severity_table(
    finding: Finding, policy: Policy, sources: RatingData, missing: bool
) -> None:
    assert bool(missing_severity(judge([finding], policy), policy, sources)) is missing


def test_a_flaw_without_cve_never_waits_for_nvd() -> None:
    finding = replace(_rated(Severity.UNKNOWN, "none"), id="DSA-9999-1")
    assert missing_severity(judge([finding], Policy()), Policy(), ABSENT) == ()


def test_missing_severity_message_names_the_fix() -> None:
    line = missing_severity_message(13, ABSENT)
    assert "\n" not in line
    assert line.startswith("13 finding(s) cannot be rated: the advisory database holds no NVD")
    assert "`kubegate db update`" in line and "--nvd-source" in line
