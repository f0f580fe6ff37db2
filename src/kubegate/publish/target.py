"""Where a passing revision is published and under which tags (``--publish oci://...``).

``oci://HOST/REPO[:TAG]`` names the repository and the moving tag (default ``approved``) the
cluster's OCIRepository follows. The per-revision tag, pushed first and never moved, is
``<branch>-<12 hex of the commit>`` for a branch, ``sha1-<12 hex>`` for a tag or a commit, and
``sha256-<12 hex of the tarball digest>`` for a directory or a Flux artifact; ``--publish-tag``
overrides it. Bad values are usage errors (exit 3) raised before anything is scanned.
Called by ``kubegate.cli.publish_options`` and :mod:`kubegate.publish.publisher`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubegate.errors import KubegateError, UsageError
from kubegate.images.reference import parse_reference
from kubegate.models import Digest, ImageRef, SourceInfo

DEFAULT_TAG = "approved"
PREFIX = "oci://"
#: The distribution spec's tag grammar.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_NOT_TAG_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class PublishTarget:
    """A repository in a registry and the moving tag that marks the approved revision."""

    repository: ImageRef
    tag: str = DEFAULT_TAG

    @property
    def url(self) -> str:
        """``oci://HOST/REPO`` (what an OCIRepository's ``spec.url`` says)."""
        return f"{PREFIX}{self.repository.name}"

    def __str__(self) -> str:
        return f"{self.url}:{self.tag}"


def check_tag(tag: str, where: str) -> str:
    """``tag`` if the distribution spec allows it, else a :class:`UsageError`."""
    if not _TAG.fullmatch(tag):
        raise UsageError(f"invalid tag {tag!r} ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})", where=where)
    return tag


def parse_target(text: str, where: str = "--publish") -> PublishTarget:
    """Parse ``oci://HOST/REPO[:TAG]``."""
    if not text.startswith(PREFIX):
        raise UsageError(f"expected oci://HOST/REPO[:TAG], got {text!r}", where=where)
    rest = text[len(PREFIX) :]
    host = rest.split("/", 1)[0]
    if "/" not in rest or not ("." in host or ":" in host or host == "localhost"):
        # Flux's OCIRepository URLs always name the registry; no Docker Hub shorthand.
        raise UsageError(f"expected oci://HOST/REPO[:TAG], got {text!r}", where=where)
    try:
        ref = parse_reference(rest)
    except KubegateError as exc:
        raise UsageError(exc.diagnostics(), where=where) from exc
    if ref.digest is not None:
        raise UsageError("a digest cannot be published to; name a tag", where=where)
    # parse_reference says "latest" when no tag is written; here no tag means "approved".
    written = ":" in rest.rsplit("/", 1)[-1]
    tag = check_tag(ref.tag, where) if written and ref.tag else DEFAULT_TAG
    return PublishTarget(ImageRef(ref.registry, ref.repository), tag)


def revision_tag(info: SourceInfo, tarball: Digest, override: str | None) -> str:
    """The immutable per-revision tag (see the module docstring)."""
    if override:
        return check_tag(override, "--publish-tag")
    commit = info.commit
    if info.kind == "git" and commit:
        if info.ref_kind == "branch" and info.revision and "@" in info.revision:
            branch = info.revision.rsplit("@", 1)[0]
            name = _NOT_TAG_CHARS.sub("-", branch).lstrip(".-")[: 128 - 13]
            if name:
                return f"{name}-{commit[:12]}"
        return f"sha1-{commit[:12]}"
    return f"sha256-{tarball.split(':', 1)[1][:12]}"
