"""Publish a passing revision: keep the judged tree, build the Flux artifact, push it.

``kubegate scan --publish`` and ``kubegate watch`` call :class:`Snapshot` around the source stage
(``read_revision(..., on_checkout=snapshot.capture)`` copies exactly the tree that is rendered
and judged, before the checkout is removed), then :func:`publish_result` once the verdict is
known. Only a clean PASS publishes: exit 0 with nothing unproven, even under ``--fail-open``
(:func:`refusal` says why anything else does not). ``--publish-pin`` edits the copy, never the
judged tree (:mod:`kubegate.publish.pin`). Documented in docs/publish.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kubegate.decide.gate import GateResult, Verdict
from kubegate.errors import PublishError
from kubegate.models import Digest, SourceInfo
from kubegate.publish.archive import build_tarball
from kubegate.publish.artifact import (
    DB_UPDATED_ANNOTATION,
    VERDICT_ANNOTATION,
    build_artifact,
)
from kubegate.publish.push import push_artifact
from kubegate.publish.target import PublishTarget, revision_tag
from kubegate.registry.verify import sha256_digest
from kubegate.source.location import is_url

if TYPE_CHECKING:
    from kubegate.registry import RegistryClient
    from kubegate.source import Checkout

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """``--publish``, ``--publish-tag``, ``--publish-source``, ``--publish-pin``."""

    target: PublishTarget
    revision_tag: str | None = None
    #: ``org.opencontainers.image.source`` when the revision has no Git URL (default: the
    #: OCI repository itself).
    source: str | None = None
    pin: bool = False


@dataclass(frozen=True, slots=True)
class Published:
    """What was pushed, as the CLI prints it and ``watch`` records it."""

    target: PublishTarget
    digest: Digest
    revision_tag: str
    revision: str
    #: One line per ``spec.images`` pin written (``--publish-pin``).
    pins: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        """``oci://HOST/REPO@sha256:...``."""
        return f"{self.target.url}@{self.digest}"


class Snapshot:
    """A private copy of the judged tree (removed on :meth:`close`)."""

    def __init__(self) -> None:
        self._base = Path(tempfile.mkdtemp(prefix="kubegate-publish-"))
        self.root = self._base / "tree"
        self.info: SourceInfo | None = None
        # Removed at close() or, whatever happens in between, when the process exits.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._base, True)

    def capture(self, checkout: Checkout) -> None:
        """Copy the checkout's tree (regular files and directories only, as judged)."""
        shutil.copytree(checkout.root, self.root, symlinks=True)
        self.info = checkout.info

    def close(self) -> None:
        """Remove the copy."""
        self._cleanup()


def refusal(result: GateResult) -> str | None:
    """Why ``result`` must not be published (None: it may)."""
    if result.verdict is not Verdict.PASS:
        if result.verdict is Verdict.UNPROVEN and result.fail_open:
            return "verdict UNPROVEN (let through by --fail-open, which never publishes)"
        return f"verdict {result.verdict.value}"
    if result.exit_code != 0 or result.blocking_unseen:
        return "not everything was proven clean"
    return None


def publish_result(
    result: GateResult,
    snapshot: Snapshot,
    options: PublishOptions,
    client: RegistryClient,
    *,
    database_updated: str | None,
    now: dt.datetime | None = None,
) -> Published:
    """Push the judged tree of a passing ``result`` (:class:`PublishError` otherwise)."""
    reason = refusal(result)
    if reason is not None:
        raise PublishError(f"not published: {reason}", where=str(options.target))
    info = snapshot.info
    if info is None or not snapshot.root.is_dir():
        raise PublishError("the judged tree was not kept", where=str(options.target))
    pins: tuple[str, ...] = ()
    if options.pin:
        from kubegate.publish.pin import pin_tree

        pins = pin_tree(snapshot.root, result)
    tarball, tar = build_tarball(snapshot.root)
    tarball_digest = sha256_digest(tarball)
    source, revision = _provenance(info, tarball_digest, options)
    from kubegate.report.gate import render_gate_report
    from kubegate.report.interface import GateFormat

    report = render_gate_report(result, GateFormat.JSON).encode()
    extra = {VERDICT_ANNOTATION: result.verdict.value}
    if database_updated:
        extra[DB_UPDATED_ANNOTATION] = database_updated
    artifact = build_artifact(
        tarball=tarball,
        tar=tar,
        report=report,
        source=source,
        revision=revision,
        created=now or dt.datetime.now(dt.UTC),
        extra=extra,
        tarball_digest=tarball_digest,
    )
    tag = revision_tag(info, tarball_digest, options.revision_tag)
    pushed = push_artifact(client, options.target, artifact, tag)
    _logger.info("published %s@%s as %s and %s", options.target.url, pushed.digest, tag, pushed.tag)
    return Published(options.target, pushed.digest, tag, revision, pins)


def _provenance(info: SourceInfo, tarball: Digest, options: PublishOptions) -> tuple[str, str]:
    """``org.opencontainers.image.source`` and ``.revision`` as Flux writes them."""
    if info.kind == "git" and info.revision:
        url = info.location if is_url(info.location) else None
        return url or options.source or options.target.url, info.revision
    return options.source or options.target.url, tarball
