"""The policy core: which findings block, and the exit code of a verdict.

Called by the CLI commands that judge images (``kubegate image``, ``kubegate scan``) after
matching, before reporting. Mirrors Trivy's flags: ``--severity`` is the *set* of severities that
block (default ``CRITICAL,HIGH``), ``--severity-threshold X`` is shorthand for X and above,
``--ignore-unfixed`` keeps findings without a fixed version from blocking (they are still
reported). ``--db-max-age`` durations are parsed here too; the check itself is the database's.
Exceptions, VEX and registry rules come later and compose in :func:`judge`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from kubegate.errors import EXIT_BLOCKED, EXIT_OK, EXIT_UNPROVEN, UsageError
from kubegate.models import Finding, Severity

DEFAULT_BLOCKING = frozenset({Severity.CRITICAL, Severity.HIGH})
DEFAULT_DB_MAX_AGE = timedelta(hours=120)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_severity(text: str, *, option: str = "--severity") -> Severity:
    """One severity name (case-insensitive)."""
    try:
        return Severity[text.strip().upper()]
    except KeyError:
        names = ",".join(s.name for s in Severity)
        raise UsageError(
            f"unknown severity {text.strip()!r} (one of {names})", where=option
        ) from None


def parse_severities(text: str) -> frozenset[Severity]:
    """``--severity``: a comma-separated set (``HIGH,CRITICAL``)."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise UsageError("no severity given", where="--severity")
    return frozenset(parse_severity(part) for part in parts)


def parse_duration(text: str, *, option: str = "--db-max-age") -> timedelta:
    """``120h``, ``5d``, ``90m``, ``1w``, ``30s``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"invalid duration {text!r} (e.g. 120h, 5d, 90m)", where=option)
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True, slots=True)
class Policy:
    """What blocks: the severities in ``blocking``, unless unfixed and ``ignore_unfixed``."""

    blocking: frozenset[Severity] = DEFAULT_BLOCKING
    ignore_unfixed: bool = False

    @classmethod
    def from_options(
        cls,
        severity: str | None = None,
        severity_threshold: str | None = None,
        *,
        ignore_unfixed: bool = False,
    ) -> Policy:
        """Build from the CLI options; both severity options at once is a usage error."""
        if severity is not None and severity_threshold is not None:
            raise UsageError(
                "give either --severity or --severity-threshold, not both", where="--severity"
            )
        if severity_threshold is not None:
            floor = parse_severity(severity_threshold, option="--severity-threshold")
            blocking = frozenset(s for s in Severity if s >= floor)
        elif severity is not None:
            blocking = parse_severities(severity)
        else:
            blocking = DEFAULT_BLOCKING
        return cls(blocking=blocking, ignore_unfixed=ignore_unfixed)


@dataclass(frozen=True, slots=True)
class JudgedFinding:
    """A finding with the policy's decision and the reason, as reports show it."""

    finding: Finding
    blocking: bool
    reason: str


def judge_one(finding: Finding, policy: Policy) -> JudgedFinding:
    """Decide one finding."""
    if finding.severity not in policy.blocking:
        return JudgedFinding(finding, False, f"severity {finding.severity.name} does not block")
    if policy.ignore_unfixed and not finding.fixable:
        return JudgedFinding(finding, False, "no fixed version and --ignore-unfixed")
    return JudgedFinding(finding, True, f"severity {finding.severity.name} blocks")


def judge(findings: Iterable[Finding], policy: Policy) -> tuple[JudgedFinding, ...]:
    """Decide every finding; order is kept."""
    return tuple(judge_one(finding, policy) for finding in findings)


def exit_code(judged: Sequence[JudgedFinding], *, undecided: bool = False) -> int:
    """0 nothing blocks, 1 a finding blocks, 2 something could not be decided.

    A blocking finding is a definite "no" and wins over "could not prove": both refuse the
    deployment, and 1 tells the user a fix is needed rather than a retry.
    """
    if any(j.blocking for j in judged):
        return EXIT_BLOCKED
    if undecided:
        return EXIT_UNPROVEN
    return EXIT_OK
