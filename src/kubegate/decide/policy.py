"""The policy core: which findings block, and the exit code of a verdict.

Called by the CLI commands that judge images (``kubegate image``, ``kubegate scan``) after
matching, before reporting. Mirrors Trivy's flags: ``--severity`` is the *set* of severities that
block (default ``CRITICAL,HIGH``), ``--severity-threshold X`` is shorthand for X and above,
``--ignore-unfixed`` keeps findings without a fixed version from blocking (they are still
reported). ``--db-max-age`` durations are parsed here too; the check itself is the database's.
``allowed_registries`` (``--allowed-registries``, ``registry.allowedRegistries``) blocks every
image from another registry; ``kubegate.scan`` checks it before anything is pulled.

Severities need data: OSV's Debian and Alpine records rate nothing, so a finding of a CVE is
rated by NVD's feeds when no vendor did. :func:`missing_severity` names the findings whose
verdict rests on NVD data the database does not have (never imported, or older than
``--db-max-age``): the gate cannot prove them harmless (exit 2), whatever the policy, unless the
policy already blocks them (docs/scan.md "Severities need data").
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from kubegate.errors import EXIT_BLOCKED, EXIT_OK, EXIT_UNPROVEN, UsageError
from kubegate.models import Finding, ImageRef, Severity

DEFAULT_BLOCKING = frozenset({Severity.CRITICAL, Severity.HIGH})
DEFAULT_DB_MAX_AGE = timedelta(hours=120)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Docker Hub's other names, as the reference grammar normalises them (reference.py).
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HOST = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-f:]+\](:[0-9]{1,5})?$"
)


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


def parse_registries(
    values: Iterable[str], *, option: str = "--allowed-registries"
) -> frozenset[str]:
    """Registry hosts (``HOST[:PORT]``, ``*.example.org``); Docker Hub's aliases -> docker.io."""
    hosts: set[str] = set()
    for value in values:
        host = value.strip().lower().rstrip("/")
        if not host:
            continue
        if not _HOST.match(host):
            raise UsageError(f"invalid registry host {value.strip()!r} (HOST[:PORT])", where=option)
        hosts.add("docker.io" if host in _HUB_ALIASES else host)
    if not hosts:
        raise UsageError("no registry given", where=option)
    return frozenset(hosts)


@dataclass(frozen=True, slots=True)
class Policy:
    """What blocks: the severities in ``blocking``, unless unfixed and ``ignore_unfixed``;
    and, when ``allowed_registries`` is set, every image from another registry."""

    blocking: frozenset[Severity] = DEFAULT_BLOCKING
    ignore_unfixed: bool = False
    allowed_registries: frozenset[str] = field(default_factory=frozenset)

    def registry_allowed(self, ref: ImageRef) -> bool:
        """Whether ``ref``'s registry may be used (always, without an allow-list)."""
        if not self.allowed_registries:
            return True
        host = ref.registry.lower()
        return any(fnmatch.fnmatchcase(host, allowed) for allowed in self.allowed_registries)

    def registry_violation(self, ref: ImageRef) -> str | None:
        """Why ``ref`` is blocked by the allow-list, or None."""
        if self.registry_allowed(ref):
            return None
        allowed = ", ".join(sorted(self.allowed_registries))
        return f"registry {ref.registry} is not allowed (allowed: {allowed}); not pulled"

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


class RatingState(enum.StrEnum):
    """The state of the data that rates CVEs no vendor rated (NVD's feeds in the database)."""

    FRESH = "fresh"
    ABSENT = "absent"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class RatingData:
    """Whether the database can rate findings; ``problem`` says why not, as a clause."""

    state: RatingState = RatingState.FRESH
    problem: str | None = None


def rests_on_nvd(finding: Finding) -> bool:
    """Whether NVD data decided the finding's severity (``nvd``, ``secondary:<source>``)."""
    source = finding.severity_source
    return source == "nvd" or source.startswith("secondary:")


def missing_severity(
    judged: Iterable[JudgedFinding], policy: Policy, sources: RatingData
) -> tuple[Finding, ...]:
    """Findings whose verdict rests on severity data the database lacks or holds too old.

    A CVE finding left UNKNOWN without NVD data, or rated by NVD data older than
    ``--db-max-age``, could be CRITICAL: unless it blocks anyway (the policy blocks its
    severity, UNKNOWN included) or no severity could make it block (unfixed under
    ``--ignore-unfixed``), it cannot be proven harmless.
    """
    if sources.state is RatingState.FRESH:
        return ()
    missing: list[Finding] = []
    for item in judged:
        finding = item.finding
        if item.blocking or (policy.ignore_unfixed and not finding.fixable):
            continue
        unrated = finding.severity is Severity.UNKNOWN and finding.id.startswith("CVE-")
        if unrated or (sources.state is RatingState.STALE and rests_on_nvd(finding)):
            missing.append(finding)
    return tuple(missing)


def missing_severity_message(count: int, sources: RatingData) -> str:
    """The one line that says why ``count`` findings are not proven, and the fix."""
    return (
        f"{count} finding(s) cannot be rated: {sources.problem}; "
        "run `kubegate db update` (or import NVD feeds with `--nvd-source URL|DIR`)"
    )
