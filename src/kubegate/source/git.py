"""Fetch one revision of a git repository with the ``git`` CLI into a private work tree.

The ref is resolved against the remote's advertised refs (``git ls-remote``): a branch first,
then a tag (peeled to its commit), then a commit SHA. Branches and tags are fetched shallow
(``--depth=1``); a full 40-hex commit is tried shallow too and, when the server refuses an
unadvertised object (protocol v0 servers without ``uploadpack.allowReachableSHA1InWant``), all
branches and tags are fetched and the commit looked up locally; an abbreviated SHA always needs
that full fetch. The revision string follows Flux's artifact revisions: ``main@sha1:<hex>``,
``v1.2.3@sha1:<hex>``, ``refs/pull/1/head@sha1:<hex>`` or ``sha1:<hex>`` for a bare commit.

git runs with prompts disabled (``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode``), hooks and remote
helpers (``ext::``) disabled, the ``file`` protocol allowed only for local repositories, and a
timeout on every command. Its messages are passed on with credentials stripped.

Called by :func:`kubegate.source.open_source`; the caller copies the work tree (minus ``.git``
and ignored files) into the checkout root.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kubegate.errors import SourceError, UsageError
from kubegate.source.location import redact_url

_logger = logging.getLogger(__name__)

_HEX_RE = re.compile(r"^[0-9a-f]{4,40}$")
_FULL_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_MAX_STDERR_LINE = 300
_REPO_ENV = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_QUARANTINE_PATH",
    }
)


@dataclass(frozen=True, slots=True)
class GitRevision:
    """What was checked out: the commit and Flux's revision string for it."""

    commit: str
    revision: str
    #: What the ref named: ``branch``, ``tag``, ``commit`` or another ``ref`` (``refs/pull/...``).
    kind: Literal["branch", "tag", "commit", "ref"] = "branch"


@dataclass(frozen=True, slots=True)
class _Target:
    """A resolved ``--ref``: the remote ref to fetch (``None`` for a bare commit) and its name."""

    refname: str | None
    display: str | None
    commit_hint: str


def check_ref(ref: str) -> None:
    """Refuse refs git would read as options or that no ref name can be (exit 3)."""
    if (
        not ref
        or ref.startswith("-")
        or ".." in ref
        or any(c.isspace() or ord(c) < 32 or c in "~^:?*[\\" for c in ref)
    ):
        raise UsageError(f"invalid git ref {ref!r}", where="--ref")


class GitFetcher:
    """Runs git for one remote ``url`` in ``workdir``; ``label`` is the URL without credentials."""

    def __init__(self, url: str, workdir: Path, *, label: str, timeout: float, local: bool):
        self._url = url
        self._workdir = workdir
        self._label = label
        self._timeout = timeout
        self._config = [
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "advice.detachedHead=false",
            # Flux's go-git never runs LFS filters; neither do we (they would reach the network).
            "-c",
            "filter.lfs.smudge=",
            "-c",
            "filter.lfs.process=",
            "-c",
            "filter.lfs.required=false",
        ]
        if local:
            self._config += ["-c", "protocol.file.allow=always"]
        # Variables that point git at another repository (set when kubegate runs from a git
        # hook) must not leak into our private clone.
        env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
        # No terminal prompt; credential helpers and GIT_ASKPASS (how CI hands out tokens) stay.
        env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
        if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
            env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
        self._env = env

    def _git(self, *args: str, what: str) -> str:
        cmd = ["git", *self._config, *args]
        _logger.debug("running git %s", redact_url(" ".join(args)))
        try:
            # A session of its own: on timeout the whole group (git, ssh, remote helpers) is
            # killed; killing git alone leaves helpers holding our pipes open.
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                cwd=self._workdir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise SourceError(
                "git is not installed (not found on PATH)", where=self._label
            ) from exc
        try:
            stdout, stderr = proc.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise SourceError(
                f"{what}: git timed out after {self._timeout:g}s", where=self._label
            ) from exc
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if proc.returncode != 0:
            raise SourceError(f"{what}: {_git_message(stderr)}", where=self._label)
        return stdout

    def fetch(self, ref: str | None) -> GitRevision:
        """Fetch ``ref`` (default: the remote's default branch) and check it out."""
        self._git("init", "-q", "--template=", ".", what="git init")
        target = self._resolve(ref)
        if target.refname is not None:
            self._git(
                "fetch", "-q", "--depth=1", "--no-tags", "--", self._url, target.refname,
                what=f"cannot fetch {target.display}",
            )  # fmt: skip
            commit = self._rev_parse("FETCH_HEAD")
        else:
            commit = self._fetch_commit(target.commit_hint)
        self._git("checkout", "-q", "--force", commit, what="cannot check out")
        revision = f"{target.display}@sha1:{commit}" if target.display else f"sha1:{commit}"
        _logger.info("%s: checked out %s", self._label, revision)
        return GitRevision(commit=commit, revision=revision, kind=_kind(target.refname))

    def _rev_parse(self, rev: str) -> str:
        out = self._git(
            "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}",
            what=f"commit {rev} not found",
        )  # fmt: skip
        return out.strip()

    def _fetch_commit(self, sha: str) -> str:
        if _FULL_SHA_RE.match(sha):
            try:
                self._git(
                    "fetch", "-q", "--depth=1", "--no-tags", "--", self._url, sha,
                    what=f"cannot fetch commit {sha}",
                )  # fmt: skip
                return self._rev_parse(sha)
            except SourceError as exc:
                # Servers speaking protocol v0 refuse unadvertised objects; a full fetch of every
                # branch and tag finds any commit reachable from them.
                _logger.info("shallow fetch of %s refused (%s); fetching all refs", sha, exc)
        self._git(
            "fetch", "-q", "--no-tags", "--", self._url,
            "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
            what="cannot fetch branches and tags",
        )  # fmt: skip
        try:
            return self._rev_parse(sha)
        except SourceError as exc:
            raise SourceError(
                f"ref {sha!r} not found: no branch, tag or reachable commit of that name",
                where=self._label,
            ) from exc

    def _resolve(self, ref: str | None) -> _Target:
        out = self._git("ls-remote", "--symref", "--", self._url, what="cannot list remote refs")
        refs: dict[str, str] = {}
        head_branch: str | None = None
        for line in out.splitlines():
            left, _, name = line.partition("\t")
            if left.startswith("ref: ") and name == "HEAD":
                head_branch = left[len("ref: ") :]
            elif name:
                refs[name] = left
        if ref is None:
            if head_branch is None or head_branch not in refs:
                raise SourceError(
                    "remote has no default branch (empty repository?)", where=self._label
                )
            return _Target(head_branch, _short(head_branch), refs[head_branch])
        # A remote-tracking ref (``origin/main``) is advertised by a local repository only: it
        # names the approved branch in a CI work tree (``--config-ref``, docs/config.md).
        candidates = (
            [ref]
            if ref.startswith("refs/")
            else [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/remotes/{ref}"]
        )
        for name in candidates:
            if name in refs:
                return _Target(name, _short(name), refs.get(f"{name}^{{}}", refs[name]))
        if _HEX_RE.match(ref.lower()):
            return _Target(None, None, ref.lower())
        raise SourceError(
            f"ref {ref!r} not found: no branch, tag or commit of that name", where=self._label
        )


def _kind(refname: str | None) -> Literal["branch", "tag", "commit", "ref"]:
    if refname is None:
        return "commit"
    if refname.startswith("refs/heads/"):
        return "branch"
    return "tag" if refname.startswith("refs/tags/") else "ref"


def _short(refname: str) -> str:
    # Flux writes branches and tags by their short name, any other ref in full.
    for prefix in ("refs/heads/", "refs/tags/"):
        if refname.startswith(prefix):
            return refname[len(prefix) :]
    return refname


#: git's advice after a failed remote access; it adds nothing to the line we print.
_BOILERPLATE = (
    "Could not read from remote repository.",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
)


def _git_message(stderr: str) -> str:
    """git's (and ssh's) complaint as one line, without advice and without credentials."""
    parts: list[str] = []
    for raw in stderr.splitlines():
        line = raw.strip()
        for prefix in ("fatal: ", "error: "):
            line = line.removeprefix(prefix)
        if not line or line in _BOILERPLATE or line in parts:
            continue
        parts.append(line)
    if not parts:
        return "git failed"
    text = parts[0]
    for part in parts[1:]:
        text += f" {part}" if text.endswith(":") else f"; {part}"
    return redact_url(text)[:_MAX_STDERR_LINE]


def fetch_git(
    url: str, ref: str | None, workdir: Path, *, label: str, timeout: float, local: bool
) -> GitRevision:
    """Fetch ``url`` at ``ref`` into the empty ``workdir`` and check it out.

    ``local`` (a path or ``file://`` URL) is the only case where git's file protocol is allowed.
    """
    if ref is not None:
        check_ref(ref)
    fetcher = GitFetcher(url, workdir, label=label, timeout=timeout, local=local)
    return fetcher.fetch(ref)


def remote_head(url: str, ref: str | None, *, label: str, timeout: float, local: bool) -> str:
    """The commit ``ref`` (a branch; the default branch when None) points to on the remote.

    One ``git ls-remote``, nothing fetched: what ``kubegate watch`` polls.
    """
    if ref is not None:
        check_ref(ref)
    wanted = "HEAD" if ref is None else (ref if ref.startswith("refs/") else f"refs/heads/{ref}")
    fetcher = GitFetcher(url, Path("/"), label=label, timeout=timeout, local=local)
    out = fetcher._git("ls-remote", "--", url, wanted, what="cannot list remote refs")
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == wanted and _FULL_SHA_RE.match(sha):
            return sha
    raise SourceError(f"ref {ref or 'HEAD'!r} not found on the remote", where=label)
