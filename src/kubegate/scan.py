"""The one pipeline shared by the CLI commands and (later) the in-cluster controller.

Data flows one way (DESIGN.md section 1). :class:`ImageInspector` takes an image reference to
its digest, selected platforms and their package inventories (registry -> inventory, with the
per-layer / per-image caches); :func:`match_image` turns inventories into findings against the
advisory database. ``kubegate image`` runs them for one reference; ``kubegate scan`` for every
image a rendered revision would run.

Warm path: a tag is always resolved anew (one ``HEAD``; tag -> digest is never cached across
runs), but the platform manifests an image digest selects and their inventories are cached, so a
warm run makes no other request.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Protocol

from kubegate.decide.gate import (
    GateResult,
    ImageFacts,
    InspectedImage,
    PlatformInventory,
    Revision,
    Unseen,
    UnseenKind,
    decide,
)
from kubegate.decide.ignorefile import IgnoreFile
from kubegate.decide.policy import DEFAULT_DB_MAX_AGE, Policy, RatingData, RatingState
from kubegate.decide.vex import VexSet
from kubegate.errors import KubegateError, VulnDBError
from kubegate.images.reference import parse_reference
from kubegate.inventory import InventoryCache, cached_inventory, inventory_gap, inventory_image
from kubegate.models import (
    Digest,
    Finding,
    ImageRef,
    ImageUse,
    NotSeen,
    Origin,
)
from kubegate.registry import PLATFORM_RULES, RegistryClient, is_local_reference, open_image
from kubegate.transfer import DEADLINE_REASON

if TYPE_CHECKING:
    from kubegate.images.find import ImagePath
    from kubegate.match.matcher import Matcher
    from kubegate.render.fetch import HelmOptions, SourceFetcher
    from kubegate.source import Checkout, SourceSpec
    from kubegate.vulndb import VulnDB

_logger = logging.getLogger(__name__)

#: The ``kind`` of the not-seen item an image with an empty inventory becomes (``notSeen``
#: exceptions of this kind name the image reference).
IMAGE_KIND: Final = "Image"


@dataclass(frozen=True, slots=True)
class ImageMatch:
    """Findings of every platform of one image, and what could not be matched."""

    findings: tuple[Finding, ...]
    #: Release-qualified ecosystems the verdict relied on (``Debian:12``: each must be covered
    #: by the database and younger than ``--db-max-age``).
    ecosystems: tuple[str, ...]
    #: One line per package that could not be matched (the image is then unproven).
    problems: tuple[str, ...] = ()
    #: ``(platform, reason)`` per platform whose inventory proves nothing (no layers, no OS and
    #: no package, an OS without its package database): unproven unless a ``notSeen``
    #: exception of kind ``Image`` accepts the image.
    gaps: tuple[tuple[str, str], ...] = ()


@dataclass
class ImageInspector:
    """Resolve and inventory images; safe to call from several threads at once."""

    client: RegistryClient
    cache: InventoryCache | None
    #: Canonical reference -> local image (config ``imageSources``), used instead of a pull.
    image_sources: Mapping[str, str] = field(default_factory=dict)
    #: Layers walked at once per image (None: the inventory's default).
    workers: int | None = None

    def inspect(self, reference: str) -> InspectedImage:
        """Resolve ``reference`` to a digest and inventory each selected platform."""
        if is_local_reference(reference):
            return self._inventory_all(reference, reference, substituted=None)
        ref = parse_reference(reference)
        canonical = str(ref)
        local = self.image_sources.get(canonical)
        if local is not None:
            _logger.info("%s: using the local image %s (imageSources)", canonical, local)
            return self._inventory_all(local, canonical, substituted=local)
        digest = self.client.resolve_digest(ref)
        warm = self._from_cache(canonical, digest)
        if warm is not None:
            return warm
        # Pull by the digest just resolved, so a tag moved meanwhile cannot swap the image.
        pinned = ImageRef(ref.registry, ref.repository, ref.tag, digest)
        return self._inventory_all(str(pinned), canonical, substituted=None)

    def _selection(self) -> str:
        chosen = ",".join(sorted(str(p) for p in self.client.options.platforms)) or "linux/*"
        return f"{chosen}|{PLATFORM_RULES}"

    def _from_cache(self, canonical: str, digest: Digest) -> InspectedImage | None:
        if self.cache is None:
            return None
        selected = self.cache.get_platforms(digest, self._selection())
        if not selected:
            return None
        platforms: list[PlatformInventory] = []
        for entry in selected:
            manifest_digest = Digest(entry["manifest"])
            # One read of the per-image entry (a separate existence check read it twice).
            layers = tuple(Digest(digest) for _, digest, _ in entry["layers"])
            inventory = cached_inventory(manifest_digest, self.cache, layers)
            if inventory is None:
                return None
            platforms.append(PlatformInventory(entry["platform"], manifest_digest, inventory))
        _logger.debug("%s@%s: inventory from the cache", canonical, digest)
        return InspectedImage(canonical, digest, tuple(platforms), warm=True)

    def _inventory_all(
        self, pull: str, reported: str, *, substituted: str | None
    ) -> InspectedImage:
        image = open_image(pull, self.client)
        platforms = tuple(
            PlatformInventory(
                str(platform.platform),
                platform.manifest_digest,
                inventory_image(
                    platform.manifest_digest,
                    platform.layers,
                    image.open_blob,
                    cache=self.cache,
                    workers=self.workers,
                ),
            )
            for platform in image.platforms
        )
        if self.cache is not None and substituted is None and not is_local_reference(pull):
            self.cache.put_platforms(
                image.digest,
                self._selection(),
                [
                    {
                        "platform": str(p.platform),
                        "manifest": p.manifest_digest,
                        "layers": [[d.media_type, d.digest, d.size] for d in p.layers],
                    }
                    for p in image.platforms
                ],
            )
        return InspectedImage(reported, image.digest, platforms, substituted=substituted)


def match_image(matcher: Matcher, image: InspectedImage) -> ImageMatch:
    """Match every platform's inventory; one finding per (package, flaw, platform)."""
    findings: list[Finding] = []
    ecosystems: dict[str, None] = {}
    problems: list[str] = []
    gaps: list[tuple[str, str]] = []
    for platform in image.platforms:
        gap = inventory_gap(platform.inventory)
        if gap is not None:
            gaps.append((platform.platform, gap))
        result = matcher.match(
            platform.inventory.packages, platform.inventory.os, platform=platform.platform
        )
        findings.extend(result.findings)
        ecosystems.update(dict.fromkeys(result.ecosystems))
        problems.extend(
            f"{platform.platform}: {skip.package.name} {skip.package.version}: {skip.reason}"
            for skip in result.problems
        )
    return ImageMatch(tuple(findings), tuple(ecosystems), tuple(problems), tuple(gaps))


@dataclass(frozen=True, slots=True)
class RevisionRequest:
    """Which revision to read and how to render it (the source and render options)."""

    source: SourceSpec
    path: str = ""
    kustomization: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    image_paths: tuple[ImagePath, ...] = ()
    #: ``--cluster`` selections (none: every cluster of the revision).
    clusters: tuple[str, ...] = ()
    #: Other GitRepositories (``namespace/name``) supplied by the user (``--source``).
    sources: Mapping[str, SourceSpec] = field(default_factory=dict)
    #: Fetch remote kustomize resources (``--allow-remote-bases``) instead of refusing them.
    allow_remote_bases: bool = False
    #: ``time.monotonic()`` by which rendering must be done (the command's ``--timeout``).
    deadline: float | None = None
    #: How HelmReleases are rendered (``--kube-version``, ..., config ``helm:``; None: defaults).
    helm: HelmOptions | None = None
    #: Fetches charts and OCIRepository sources (None: what needs one is not seen). Owned by
    #: the caller, which closes it after ``read_revision``.
    fetcher: SourceFetcher | None = field(default=None, compare=False)


def read_revision(
    request: RevisionRequest, *, on_checkout: Callable[[Checkout], None] | None = None
) -> Revision:
    """source -> render -> images, collecting every problem instead of stopping at the first.

    ``on_checkout`` sees the materialised tree before it is removed (``--publish`` keeps a
    copy of exactly what was judged).
    """
    # Imported here: ``kubegate image``/``sbom`` use this module without rendering anything,
    # and start-up time counts (STYLE.md).
    from kubegate.images.find import find_images
    from kubegate.render import render
    from kubegate.source import open_source

    with open_source(request.source) as checkout, ExitStack() as others:
        checkout.resolve_path(request.path)
        # Only sources the user named are read: a URL found in the revision is never fetched.
        supplied = {
            key: others.enter_context(open_source(spec)).root
            for key, spec in request.sources.items()
        }
        if on_checkout is not None:
            on_checkout(checkout)
        result = render(
            checkout.root,
            request.path,
            kustomization=request.kustomization,
            variables=dict(request.variables),
            clusters=request.clusters,
            sources=supplied,
            allow_remote_bases=request.allow_remote_bases,
            deadline=request.deadline,
            fetcher=request.fetcher,
            helm=request.helm,
        )
        images = find_images(result.objects, request.image_paths)
        info = checkout.info
    problems = sorted(
        (*result.problems, *images.problems),
        key=lambda p: (p.origin.file or "", p.origin.line or 0, p.message),
    )
    not_seen = sorted(
        result.not_seen,
        key=lambda n: (n.origin.file or "", n.origin.line or 0, n.kind, n.namespace or "", n.name),
    )
    return Revision(
        info, images, tuple(not_seen), tuple(problems), result.remote_bases, result.notes
    )


class Progress(Protocol):
    """Where the pipeline reports its stages (the CLI draws bars on a TTY, lines elsewhere)."""

    def stage(self, name: str, total: int) -> None:
        """A stage with ``total`` items starts."""

    def advance(self, name: str, item: str) -> None:
        """One item of ``name`` is done (called from worker threads too)."""


class _Silent:
    def stage(self, name: str, total: int) -> None:
        """Nothing to show."""

    def advance(self, name: str, item: str) -> None:
        """Nothing to show."""


_SILENT: Final = _Silent()


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """How the gate judges (policy, exceptions, freshness) and how hard it works."""

    policy: Policy = field(default_factory=Policy)
    ignore: IgnoreFile = field(default_factory=IgnoreFile)
    max_age: timedelta = DEFAULT_DB_MAX_AGE
    fail_open: bool = False
    #: Images resolved and inventoried at once.
    concurrency: int = 4
    #: Seconds the image stage may take in all (None: no bound beyond per-request timeouts).
    timeout: float | None = None
    #: The day exceptions are checked against (None: today, UTC).
    today: dt.date | None = None
    #: OpenVEX statements (``--vex``).
    vex: VexSet = field(default_factory=VexSet)


def scan_revision(
    revision: Revision,
    settings: ScanSettings,
    *,
    inspector: ImageInspector,
    db: VulnDB,
    deadline: float | None = None,
    progress: Progress | None = None,
) -> GateResult:
    """Resolve, inventory and match every distinct image of ``revision``, then decide.

    Problems are collected, never raised: one run names everything it could not see.
    """
    progress = progress or _SILENT
    unseen: list[Unseen] = [
        Unseen(UnseenKind.RENDER, problem.message + _in_cluster(problem.cluster), problem.origin)
        for problem in revision.problems
    ]
    unseen.extend(
        Unseen(
            UnseenKind.NOT_SEEN,
            f"{item.kind} {item.namespace or '-'}/{item.name}: {item.reason}"
            + _in_cluster(item.cluster),
            item.origin,
            item=item,
        )
        for item in revision.not_seen
    )
    by_image: dict[str, list[ImageUse]] = {}
    for use in revision.images.uses:
        by_image.setdefault(str(use.ref), []).append(use)
    # An image from a registry outside the allow-list blocks by itself: it is never resolved
    # or pulled, so a hostile registry named by a commit is not even contacted.
    policy = settings.policy
    allowed = [ref for ref, uses in by_image.items() if policy.registry_allowed(uses[0].ref)]
    inspected, errors = _inspect_all(allowed, inspector, settings.concurrency, deadline, progress)

    from kubegate.match.matcher import Matcher

    matcher = Matcher(db, tracker=tracker_fresh(db, settings.max_age))
    progress.stage("matching", len(by_image))
    facts: list[ImageFacts] = []
    ecosystems: dict[str, None] = {}
    for reference, uses in by_image.items():
        image = inspected.get(reference)
        progress.advance("matching", reference)
        image_errors = list(errors.get(reference, ()))
        findings: tuple[Finding, ...] = ()
        if image is not None:
            matched = match_image(matcher, image)
            findings = matched.findings
            ecosystems.update(dict.fromkeys(matched.ecosystems))
            image_errors.extend(f"cannot match {problem}" for problem in matched.problems)
            unseen.extend(_gap_unseen(reference, uses[0].origin, matched.gaps))
        facts.append(
            ImageFacts(reference, uses[0].ref, tuple(uses), image, findings, tuple(image_errors))
        )
        kind = UnseenKind.TIMEOUT if _timed_out(image_errors) else UnseenKind.IMAGE
        unseen.extend(
            Unseen(kind, f"{reference}: {message}", uses[0].origin, reference)
            for message in image_errors
        )
    try:
        db.check_fresh(ecosystems, settings.max_age)
    except VulnDBError as exc:
        unseen.append(Unseen(UnseenKind.DATABASE, exc.diagnostics()))
    return decide(
        revision,
        facts,
        unseen,
        policy=settings.policy,
        ignore=settings.ignore,
        fail_open=settings.fail_open,
        today=settings.today or dt.datetime.now(dt.UTC).date(),
        database=str(db.path),
        vex=settings.vex,
        rating_data=rating_data(db, settings.max_age),
    )


def _gap_unseen(reference: str, origin: Origin, gaps: Sequence[tuple[str, str]]) -> list[Unseen]:
    """An image whose inventory proves nothing: unproven, acceptable by a ``notSeen``
    exception of kind ``Image`` naming the image reference (a glob)."""
    return [
        Unseen(
            UnseenKind.IMAGE,
            f"{reference}: {platform}: {reason}",
            origin,
            reference,
            item=NotSeen(IMAGE_KIND, None, reference, origin, f"{platform}: {reason}"),
        )
        for platform, reason in gaps
    ]


def rating_data(db: VulnDB, max_age: timedelta, now: dt.datetime | None = None) -> RatingData:
    """Whether the database's NVD data can rate findings: imported, and within ``max_age``.

    Stale NVD data counts as none, as a stale OSV ecosystem does (``VulnDB.check_fresh``).
    """
    status = db.nvd_status()
    if status is None:
        return RatingData(RatingState.ABSENT, "the advisory database holds no NVD data")
    age = (now or dt.datetime.now(dt.UTC)) - status.last_import
    if age > max_age:
        return RatingData(
            RatingState.STALE,
            f"its NVD data is {age.total_seconds() / 3600:.1f}h old "
            f"(last import {status.last_import:%Y-%m-%d %H:%M} UTC), "
            f"more than --db-max-age {max_age.total_seconds() / 3600:.1f}h",
        )
    return RatingData()


_TIMEOUT_MESSAGE = "not resolved and inventoried before --timeout"


def _timed_out(messages: Sequence[str]) -> bool:
    # A transfer cut by the deadline (kubegate.transfer) is a timeout too, not a registry fault.
    return any(_TIMEOUT_MESSAGE in message or DEADLINE_REASON in message for message in messages)


def _in_cluster(cluster: str | None) -> str:
    # The same file can fail, or hold a not-seen object, in several clusters of one fleet.
    return f" (cluster {cluster})" if cluster else ""


def _image_error(reference: str, exc: KubegateError) -> str:
    """The error text without the reference: every report prints it in front already."""
    text = exc.diagnostics()
    return text.removeprefix(f"{reference}: ")


def _inspect_all(
    references: Sequence[str],
    inspector: ImageInspector,
    concurrency: int,
    deadline: float | None,
    progress: Progress,
) -> tuple[dict[str, InspectedImage], dict[str, tuple[str, ...]]]:
    """Inspect every reference, ``concurrency`` at a time, until ``deadline`` (monotonic)."""
    inspected: dict[str, InspectedImage] = {}
    errors: dict[str, tuple[str, ...]] = {}
    if not references:
        return inspected, errors
    progress.stage("images", len(references))
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="kubegate-image")
    try:
        futures = {pool.submit(inspector.inspect, ref): ref for ref in references}
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            for future in as_completed(futures, timeout=remaining):
                reference = futures[future]
                try:
                    image = future.result()
                except KubegateError as exc:
                    errors[reference] = (_image_error(reference, exc),)
                    progress.advance("images", f"{reference}: {errors[reference][0]}")
                    continue
                except Exception as exc:  # a bug must not pass an image: it becomes unproven
                    _logger.debug("inspecting %s failed", reference, exc_info=True)
                    errors[reference] = (f"internal error: {type(exc).__name__}: {exc}",)
                    continue
                inspected[reference] = image
                progress.advance("images", f"{reference}@{image.digest}")
        except FuturesTimeout:
            for reference in futures.values():
                if reference not in inspected:
                    errors.setdefault(reference, (_TIMEOUT_MESSAGE,))
    finally:
        # Do not wait for images still running past the deadline; cancel what has not started.
        pool.shutdown(wait=False, cancel_futures=True)
    return inspected, errors


def tracker_fresh(db: VulnDB, max_age: timedelta, now: dt.datetime | None = None) -> bool:
    """Whether Debian tracker urgencies may rate findings: imported within ``max_age``.

    The tracker is optional: when absent or stale the matcher skips it and NVD rates instead.
    """
    last = db.debian_tracker_status()
    if last is None:
        return False
    if (now or dt.datetime.now(dt.UTC)) - last > max_age:
        _logger.warning(
            "the Debian tracker data is older than --db-max-age: its urgencies are not used"
        )
        return False
    return True
