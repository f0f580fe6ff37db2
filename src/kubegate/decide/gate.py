"""The gate's decision over a whole revision, and the data every scan report is written from.

``kubegate.scan`` gathers the facts (the revision's image uses, each image's inventory and
findings, what could not be seen); :func:`decide` applies the policy (severities, the registry
allow-list), the exceptions file, VEX statements and ``--fail-open`` and returns a
:class:`GateResult` with the verdict and exit code. Report writers
(``kubegate.report``) read only these values. Invariant (DESIGN.md 3.1): a revision passes only
if every use was resolved, inventoried and matched against a fresh database and no finding
violates the policy; anything unknown makes it UNPROVEN (exit 2), unless ``fail_open``: this
includes findings that cannot be rated because the database lacks fresh NVD data
(:func:`kubegate.decide.policy.missing_severity`).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubegate.decide.ignorefile import IgnoreFile, NotSeenException, VulnerabilityException
from kubegate.decide.policy import (
    JudgedFinding,
    Policy,
    RatingData,
    judge_one,
    missing_severity,
    missing_severity_message,
)
from kubegate.decide.vex import ImageSubject, VexSet, VexStatement
from kubegate.errors import EXIT_BLOCKED, EXIT_OK, EXIT_UNPROVEN
from kubegate.models import (
    Digest,
    Finding,
    ImageRef,
    ImageUse,
    NotSeen,
    Origin,
    Problem,
    RemoteBase,
    SourceInfo,
)

if TYPE_CHECKING:
    from kubegate.images.find import ImageScan
    from kubegate.inventory import ImageInventory


@dataclass(frozen=True, slots=True)
class Revision:
    """What a revision would run: image uses with provenance, what was not seen, problems."""

    info: SourceInfo
    images: ImageScan
    not_seen: tuple[NotSeen, ...]
    problems: tuple[Problem, ...]
    #: Remote resources fetched with ``--allow-remote-bases``: part of what was judged.
    remote_bases: tuple[RemoteBase, ...] = ()
    #: Rendered with a remark (a chart calling ``lookup``, ``spec.kubeConfig``, suspended).
    notes: tuple[NotSeen, ...] = ()


@dataclass(frozen=True, slots=True)
class PlatformInventory:
    """One platform of an image: its own manifest digest and what is installed."""

    platform: str
    manifest_digest: Digest
    inventory: ImageInventory


@dataclass(frozen=True, slots=True)
class InspectedImage:
    """An image reference resolved to a digest and inventoried on every selected platform."""

    #: The reference as reported: canonical (``docker.io/library/nginx:1.21.0``) or local.
    reference: str
    #: The top-level manifest or index digest: what was scanned and what gets pinned.
    digest: Digest
    platforms: tuple[PlatformInventory, ...]
    #: The local image (``imageSources``) that stood in for a registry reference, if any.
    substituted: str | None = None
    #: Whether everything came from the caches (only the tag was resolved).
    warm: bool = False

    @property
    def os(self) -> str | None:
        """``"debian 10"`` from the first platform that knows its OS."""
        for platform in self.platforms:
            os_info = platform.inventory.os
            if os_info is not None:
                return f"{os_info.id} {os_info.version_id or ''}".strip()
        return None


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the scan learned about one distinct image of the revision."""

    #: The reference as it would be deployed (after overrides and substitution).
    reference: str
    ref: ImageRef
    uses: tuple[ImageUse, ...]
    inspected: InspectedImage | None = None
    findings: tuple[Finding, ...] = ()
    #: Why the image could not be seen (resolve, pull, inventory, match), one line each.
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Suppression:
    """An exception that covered a finding or a not-seen item, as reports show it."""

    id: str
    reason: str
    #: None: permanent (a Trivy ignore entry without expiry, or a VEX statement).
    expires: dt.date | None
    where: str
    #: ``exception`` (an ignore file entry) or ``vex`` (a VEX statement).
    source: str = "exception"
    #: The VEX status justification, when a VEX statement suppressed it.
    justification: str | None = None


@dataclass(frozen=True, slots=True)
class GateFinding:
    """A finding of one image, judged for every use of that image."""

    judged: JudgedFinding
    #: Uses for which the finding blocks (the policy blocks it and no exception covers the use).
    blocking_uses: tuple[ImageUse, ...]
    #: Uses an exception covers, with the exception.
    suppressed: tuple[tuple[ImageUse, Suppression], ...] = ()

    @property
    def finding(self) -> Finding:
        """The finding itself."""
        return self.judged.finding

    @property
    def blocking(self) -> bool:
        """Blocks the revision: the policy blocks it for at least one uncovered use."""
        return self.judged.blocking and bool(self.blocking_uses)


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One distinct image with its judged findings."""

    facts: ImageFacts
    findings: tuple[GateFinding, ...]
    #: Policy rules the image breaks by itself (a registry not allowed); each blocks.
    violations: tuple[str, ...] = ()

    @property
    def blocking(self) -> tuple[GateFinding, ...]:
        """The findings that block."""
        return tuple(f for f in self.findings if f.blocking)

    @property
    def blocks(self) -> bool:
        """Whether this image blocks the revision (a blocking finding or a violation)."""
        return bool(self.violations) or any(f.blocking for f in self.findings)


class UnseenKind(enum.StrEnum):
    """Why something could not be proven clean."""

    RENDER = "render"
    IMAGE = "image"
    NOT_SEEN = "notSeen"
    DATABASE = "database"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Unseen:
    """Something kubegate could not see; it blocks (exit 2) unless accepted or ``fail_open``."""

    kind: UnseenKind
    message: str
    origin: Origin | None = None
    #: The image reference concerned, if any.
    image: str | None = None
    #: The not-seen object (a HelmRelease, ...) for ``NOT_SEEN``.
    item: NotSeen | None = None
    #: A ``notSeen`` exception that accepts it for now (then it does not block).
    accepted: Suppression | None = None


class Verdict(enum.StrEnum):
    """The answer to "may this revision be deployed?"."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    BLOCKED = "BLOCKED"
    UNPROVEN = "UNPROVEN"


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Where the policy that judged the revision was read; every report names it."""

    #: The configuration file read (None: flags and defaults only).
    config: str | None = None
    #: The exceptions file read, if any.
    exceptions: str | None = None
    #: ``--config-ref``: the ref of the judged git source both were read from, and its commit.
    ref: str | None = None
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class GateResult:
    """Everything a scan report shows."""

    revision: Revision
    images: tuple[ImageResult, ...]
    unseen: tuple[Unseen, ...]
    verdict: Verdict
    exit_code: int
    fail_open: bool = False
    #: Exceptions that are malformed or expired (they suppress nothing), one line each.
    exception_problems: tuple[str, ...] = ()
    #: The advisory database the findings were matched against.
    database: str | None = None
    policy: Policy = field(default_factory=Policy)
    #: Exceptions without expiry (Trivy ignore entries), one line each: every report lists them.
    permanent_exceptions: tuple[str, ...] = ()
    #: Where the configuration and exceptions came from (set by the caller of :func:`decide`).
    policy_source: PolicySource = field(default_factory=PolicySource)

    @property
    def blocking_unseen(self) -> tuple[Unseen, ...]:
        """What could not be seen and was not accepted by an exception."""
        return tuple(u for u in self.unseen if u.accepted is None)

    @property
    def uses(self) -> tuple[ImageUse, ...]:
        """Every image use of the revision."""
        return tuple(use for image in self.images for use in image.facts.uses)


def decide(
    revision: Revision,
    images: Sequence[ImageFacts],
    unseen: Sequence[Unseen],
    *,
    policy: Policy,
    ignore: IgnoreFile,
    fail_open: bool,
    today: dt.date,
    database: str | None = None,
    vex: VexSet | None = None,
    rating_data: RatingData | None = None,
) -> GateResult:
    """Judge every finding for every use, accept not-seen items, and reach the verdict.

    ``rating_data`` is the state of the database's NVD data (None: not checked, as for
    results built without a database).
    """
    vex = vex or VexSet()
    results = tuple(
        ImageResult(
            facts,
            tuple(_judge(f, facts, policy, ignore, vex, today) for f in facts.findings),
            _violations(facts, policy),
        )
        for facts in images
    )
    pending = list(unseen)
    if rating_data is not None:
        # Findings every use of which an exception or VEX statement covers need no severity.
        unrated = missing_severity(
            (item.judged for image in results for item in image.findings if item.blocking_uses),
            policy,
            rating_data,
        )
        if unrated:
            message = missing_severity_message(len(unrated), rating_data)
            pending.append(Unseen(UnseenKind.DATABASE, message))
    accepted = tuple(_accept(item, ignore, today) for item in pending)
    problems = list(ignore.problems)
    problems.extend(
        f"{entry.where}: expired on {entry.expires.isoformat()} (suppresses nothing)"
        for entry in ignore.expired(today)
        if entry.expires is not None
    )
    problems.extend(vex.problems)
    blocking = any(image.blocks for image in results)
    undecided = any(item.accepted is None for item in accepted)
    if blocking:
        verdict, code = Verdict.BLOCKED, EXIT_BLOCKED
    elif undecided:
        verdict = Verdict.UNPROVEN
        code = EXIT_OK if fail_open else EXIT_UNPROVEN
    else:
        verdict, code = Verdict.PASS, EXIT_OK
    return GateResult(
        revision=revision,
        images=results,
        unseen=accepted,
        verdict=verdict,
        exit_code=code,
        fail_open=fail_open,
        exception_problems=tuple(problems),
        database=database,
        policy=policy,
        permanent_exceptions=tuple(_permanent_line(e) for e in ignore.permanent()),
    )


def _permanent_line(entry: VulnerabilityException) -> str:
    scope = [
        f"{name} {', '.join(values)}"
        for name, values in (
            ("images", entry.images),
            ("packages", entry.packages),
            ("workloads", entry.workloads),
            ("paths", entry.paths),
        )
        if values
    ]
    within = f" ({'; '.join(scope)})" if scope else ""
    return f"{entry.id}{within}: {entry.reason} [{entry.where}, no expiry]"


def _violations(facts: ImageFacts, policy: Policy) -> tuple[str, ...]:
    violation = policy.registry_violation(facts.ref)
    return () if violation is None else (violation,)


def _judge(
    finding: Finding,
    facts: ImageFacts,
    policy: Policy,
    ignore: IgnoreFile,
    vex: VexSet,
    today: dt.date,
) -> GateFinding:
    judged = judge_one(finding, policy)
    statement = vex.suppression(finding, _subject(facts)) if vex.statements else None
    blocking: list[ImageUse] = []
    suppressed: list[tuple[ImageUse, Suppression]] = []
    for use in facts.uses:
        entry = ignore.vulnerability_exception(finding, use, facts.ref, today)
        if entry is not None:
            suppressed.append((use, _suppression(entry)))
        elif statement is not None:
            suppressed.append((use, _vex_suppression(statement)))
        else:
            blocking.append(use)
    return GateFinding(judged, tuple(blocking), tuple(suppressed))


def _accept(item: Unseen, ignore: IgnoreFile, today: dt.date) -> Unseen:
    if item.item is None:
        return item
    entry = ignore.not_seen_exception(item.item, today)
    if entry is None:
        return item
    return Unseen(item.kind, item.message, item.origin, item.image, item.item, _suppression(entry))


def _subject(facts: ImageFacts) -> ImageSubject:
    inspected = facts.inspected
    digests: tuple[Digest, ...] = ()
    if inspected is not None:
        digests = (inspected.digest, *(p.manifest_digest for p in inspected.platforms))
    return ImageSubject(facts.ref, digests)


def _vex_suppression(statement: VexStatement) -> Suppression:
    return Suppression(
        statement.vulnerability,
        statement.reason,
        None,
        statement.where,
        source="vex",
        justification=statement.justification,
    )


def _suppression(entry: VulnerabilityException | NotSeenException) -> Suppression:
    ident = entry.id if isinstance(entry, VulnerabilityException) else entry.kind
    return Suppression(ident, entry.reason, entry.expires, entry.where)
