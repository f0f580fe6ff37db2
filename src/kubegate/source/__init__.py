"""Get the files of a revision exactly as Flux's source-controller would hand them over.

``open_source(spec)`` yields a :class:`Checkout` whose ``root`` is a private directory (mode 0700,
removed when the context exits) holding only what Flux would see (``.git``, ``.sourceignore``
patterns and source-controller's default exclusions removed), whatever the origin:

- ``dir``: a local directory without ``--ref``, its working tree as it is (:mod:`.tree`);
- ``git``: a URL, or a local path with ``--ref``, fetched at that ref (:mod:`.git`);
- ``artifact``: a Flux artifact tarball, digest-verified and safely extracted (:mod:`.artifact`).

Every later stage (render, images) reads only from ``root``; paths reported to users are relative
to it, and :meth:`Checkout.resolve_path` turns a ``--path`` option into a directory beneath it.
Bad options raise :class:`~kubegate.errors.UsageError` (exit 3) before anything is fetched; a
source that cannot be read raises :class:`~kubegate.errors.SourceError` (exit 2).
"""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from kubegate.errors import SourceError, UsageError
from kubegate.models import SourceInfo
from kubegate.source.artifact import (
    artifact_revision,
    check_digest,
    check_url,
    download,
    extract,
)
from kubegate.source.git import fetch_git, remote_head
from kubegate.source.ignore import IgnoreRules
from kubegate.source.limits import SourceLimits
from kubegate.source.location import (
    check_git_url,
    is_scp_like,
    is_url,
    url_without_credentials,
)
from kubegate.source.tree import copy_tree, is_within

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What the user asked for: a location plus an optional git ref or artifact URL/digest."""

    location: str = "."
    ref: str | None = None
    artifact_url: str | None = None
    artifact_digest: str | None = None
    limits: SourceLimits = field(default_factory=SourceLimits)


@dataclass(frozen=True, slots=True)
class Checkout:
    """A materialised revision: ``root`` on disk plus what to report about it."""

    root: Path
    info: SourceInfo

    def resolve_path(self, rel: str) -> Path:
        """The directory or file ``rel`` (``--path``: ``""``, ``.``, ``./x``, ``x/y``) in root.

        A path leaving the root is a :class:`UsageError`; a missing one a :class:`SourceError`.
        """
        if rel in ("", "."):
            return self.root
        if posixpath.isabs(rel) or rel.startswith("\\"):
            raise UsageError(f"{rel!r} must be relative to the source root", where="--path")
        norm = posixpath.normpath(rel)
        if norm == ".." or norm.startswith("../"):
            raise UsageError(f"{rel!r} leaves the source root", where="--path")
        target = self.root / norm
        if not is_within(target.resolve(), self.root.resolve()):
            raise UsageError(f"{rel!r} leaves the source root", where="--path")
        if not target.exists():
            raise SourceError(f"path {rel!r} not found in the source", where=self.info.location)
        return target


@dataclass(frozen=True, slots=True)
class _Plan:
    kind: Literal["dir", "git", "artifact"]
    target: str
    label: str
    local: bool = False


def _plan(spec: SourceSpec) -> _Plan:
    """Decide the source kind and validate the options, before anything is read or fetched."""
    if spec.artifact_url is not None or spec.artifact_digest is not None:
        if spec.artifact_url is None or spec.artifact_digest is None:
            raise UsageError("--artifact-url and --artifact-digest must be given together")
        if spec.ref is not None:
            raise UsageError("--ref cannot be combined with --artifact-url")
        if spec.location not in ("", "."):
            raise UsageError("a SOURCE location cannot be combined with --artifact-url")
        check_url(spec.artifact_url)
        check_digest(spec.artifact_digest)
        return _Plan("artifact", spec.artifact_url, url_without_credentials(spec.artifact_url))
    location = spec.location or "."
    if location.startswith("-"):
        raise UsageError(f"invalid source {location!r}")
    if is_url(location):
        scheme = check_git_url(location)
        return _Plan("git", location, url_without_credentials(location), local=scheme == "file")
    path = Path(location)
    if path.exists():
        if not path.is_dir():
            raise SourceError("not a directory", where=location)
        if spec.ref is None:
            return _Plan("dir", location, location)
        return _Plan("git", str(path.resolve()), location, local=True)
    if is_scp_like(location):
        return _Plan("git", location, location)
    raise SourceError("no such directory (and not a git URL)", where=location)


@contextmanager
def open_source(spec: SourceSpec) -> Iterator[Checkout]:
    """Materialise ``spec``; raise :class:`SourceError` (exit 2) when it cannot be read."""
    plan = _plan(spec)
    limits = spec.limits
    with tempfile.TemporaryDirectory(prefix="kubegate-source-") as tmp:
        base = Path(tmp)  # mkdtemp: mode 0700, private to this process's user
        root = base / "root"
        root.mkdir(mode=0o700)
        revision: str | None = None
        fetched = None
        if plan.kind == "dir":
            staging = Path(plan.target).resolve()
        elif plan.kind == "git":
            staging = base / "git"
            staging.mkdir(mode=0o700)
            fetched = fetch_git(
                plan.target,
                spec.ref,
                staging,
                label=plan.label,
                timeout=limits.git_timeout,
                local=plan.local,
            )
            revision = fetched.revision
        else:
            digest = spec.artifact_digest or ""
            tarball = base / "artifact.tar.gz"
            download(plan.target, digest, tarball, limits=limits, label=plan.label)
            staging = base / "extract"
            staging.mkdir(mode=0o700)
            extract(tarball, staging, limits=limits, label=plan.label)
            tarball.unlink()
            revision = artifact_revision(plan.target, digest)
        rules = IgnoreRules.load(staging)
        copy_tree(
            staging,
            root,
            rules,
            max_entries=limits.max_entries,
            max_bytes=limits.max_extracted_bytes,
            label=plan.label,
        )
        info = SourceInfo(
            kind=plan.kind,
            location=plan.label,
            revision=revision,
            ref_kind=fetched.kind if fetched else None,
            commit=fetched.commit if fetched else None,
        )
        _logger.debug("source %s ready in %s", plan.label, root)
        yield Checkout(root=root.resolve(), info=info)


def local_root(spec: SourceSpec) -> Path | None:
    """The judged source as it lies on this machine (a real path), or None when it is fetched.

    A directory source is that directory; a local git source (a path with ``--ref``, or a
    ``file://`` URL) is the repository, work tree included. A remote git URL or a Flux artifact
    has no local copy but kubegate's private checkout. Options are validated as for
    :func:`open_source` (UsageError, exit 3).
    """
    plan = _plan(spec)
    if plan.kind == "dir":
        return Path(os.path.realpath(plan.target))
    if plan.kind == "git" and plan.local:
        target = unquote(urlsplit(plan.target).path) if is_url(plan.target) else plan.target
        return Path(os.path.realpath(target))
    return None


@dataclass(frozen=True, slots=True)
class PolicyCheckout:
    """``--config-ref``: another ref of the judged git source, checked out for its policy files."""

    root: Path
    ref: str
    commit: str


@contextmanager
def open_policy_ref(spec: SourceSpec, ref: str) -> Iterator[PolicyCheckout]:
    """Check out ``ref`` of the same git repository as ``spec`` into a private directory.

    For a directory source, the repository is the git work tree that holds it (its ``.git`` is
    read, so a local ref such as ``origin/main`` works). A Flux artifact has no other ref: exit 3.
    """
    plan = _plan(spec)
    if plan.kind == "artifact":
        raise UsageError(
            "a Flux artifact has no other ref to read policy from", where="--config-ref"
        )
    target, local = plan.target, plan.local
    if plan.kind == "dir":
        repository = _enclosing_repository(Path(plan.target))
        if repository is None:
            raise UsageError(
                f"{plan.label} is not inside a git repository: no ref to read policy from",
                where="--config-ref",
            )
        target, local = str(repository), True
    with tempfile.TemporaryDirectory(prefix="kubegate-policy-") as tmp:
        workdir = Path(tmp) / "policy"
        workdir.mkdir(mode=0o700)
        fetched = fetch_git(
            target,
            ref,
            workdir,
            label=plan.label,
            timeout=spec.limits.git_timeout,
            local=local,
        )
        _logger.info("policy files from %s (%s)", ref, fetched.commit)
        yield PolicyCheckout(root=workdir.resolve(), ref=ref, commit=fetched.commit)


def _enclosing_repository(directory: Path) -> Path | None:
    for candidate in (directory.resolve(), *directory.resolve().parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def head_commit(spec: SourceSpec) -> str:
    """The commit the git source's ``ref`` points to now (``git ls-remote``, nothing fetched).

    ``kubegate watch`` polls this; only git sources have a head to poll (UsageError otherwise).
    """
    plan = _plan(spec)
    if plan.kind != "git":
        raise UsageError("expected a git repository URL (or a local repository with --ref)")
    return remote_head(
        plan.target, spec.ref, label=plan.label, timeout=spec.limits.git_timeout, local=plan.local
    )


__all__ = [
    "Checkout",
    "PolicyCheckout",
    "SourceLimits",
    "SourceSpec",
    "head_commit",
    "local_root",
    "open_policy_ref",
    "open_source",
]
