"""Copy a directory tree into a private root, keeping only what Flux would see.

Every source kind ends here: a local directory directly, a git checkout and an extracted artifact
from their own private staging directories. The copy leaves out ``.git`` and ignored files
(:mod:`kubegate.source.ignore`) and every symlink, sockets, fifos and devices: source-controller
archives only regular files and directories, so that is all Flux renders (a symlink pointing
outside the tree is reported with a warning; none is ever followed). An artifact's links were
already checked when it was extracted (:mod:`kubegate.source.artifact`). File count and total size
are bounded.

Called by :func:`kubegate.source.open_source`.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from kubegate.errors import SourceError
from kubegate.source.ignore import IgnoreRules

_logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Budget:
    """Running totals checked against the limits while copying."""

    max_entries: int
    max_bytes: int
    label: str
    entries: int = 0
    size: int = 0

    def take(self, rel: str, size: int) -> None:
        self.entries += 1
        self.size += size
        if self.entries > self.max_entries:
            raise SourceError(f"more than {self.max_entries} files (at {rel!r})", where=self.label)
        if self.size > self.max_bytes:
            raise SourceError(
                f"files larger than {self.max_bytes} bytes in all (at {rel!r})", where=self.label
            )


def check_link_target(rel: str, target: str, label: str) -> None:
    """Reject a symlink at ``rel`` (POSIX, relative to root) whose ``target`` leaves the tree.

    A lexical check only; :func:`verify_links` resolves chains once every link exists.
    """
    if not target or posixpath.isabs(target) or target.startswith("\\"):
        raise SourceError(
            f"entry {rel!r}: symlink target {target!r} is absolute or empty", where=label
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if joined == ".." or joined.startswith("../"):
        raise SourceError(
            f"entry {rel!r}: symlink points outside the tree (-> {target})", where=label
        )


def is_within(path: Path, root: Path) -> bool:
    """True when resolved ``path`` is ``root`` or beneath it (``root`` already resolved)."""
    return path == root or root in path.parents


def verify_links(root: Path, links: list[str], label: str) -> None:
    """Every symlink in ``links`` (relative to ``root``) must resolve inside ``root``."""
    real_root = root.resolve()
    for rel in links:
        resolved = Path(os.path.realpath(root / rel))
        if not is_within(resolved, real_root):
            raise SourceError(
                f"entry {rel!r}: symlink resolves outside the tree (-> {os.readlink(root / rel)})",
                where=label,
            )


def copy_tree(
    src: Path,
    dest: Path,
    rules: IgnoreRules,
    *,
    max_entries: int,
    max_bytes: int,
    label: str,
) -> int:
    """Copy what Flux would see of ``src`` into the existing empty ``dest``; return files copied.

    ``label`` is the user-facing name of the source (a path or a URL without credentials).
    """
    budget = _Budget(max_entries=max_entries, max_bytes=max_bytes, label=label)
    skip = dest.resolve()
    try:
        _copy_dir(src, dest, "", rules, budget, skip)
    except OSError as exc:
        name = exc.filename if isinstance(exc.filename, str) else ""
        raise SourceError(f"cannot copy {name}: {exc.strerror or exc}", where=label) from exc
    _logger.debug("%s: %d entries, %d bytes copied", label, budget.entries, budget.size)
    return budget.entries


def _drop_link(rel: str, target: str, label: str) -> None:
    # source-controller archives only regular files and directories ("Ignore anything that is
    # not a file or directories e.g. symlinks", internal/storage Archive): Flux never sees a
    # symlink, so neither does the render. One that points outside the tree is worth a warning.
    try:
        check_link_target(rel, target, label)
    except SourceError:
        _logger.warning(
            "%s: symlink %s -> %s dropped (points outside the tree)", label, rel, target
        )
        return
    _logger.info("%s: symlink %s dropped, as source-controller drops symlinks", label, rel)


def _copy_dir(
    src: Path, dest: Path, prefix: str, rules: IgnoreRules, budget: _Budget, skip: Path
) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name == ".git":
            continue
        rel = f"{prefix}{entry.name}"
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            if Path(entry.path).resolve() == skip:
                continue  # our own private root, when TMPDIR lies inside the source
            _copy_dir(Path(entry.path), dest, f"{rel}/", rules, budget, skip)
        elif stat.S_ISLNK(st.st_mode):
            if rules.ignored(rel):
                continue
            _drop_link(rel, os.readlink(entry.path), budget.label)
        elif stat.S_ISREG(st.st_mode):
            if rules.ignored(rel):
                continue
            budget.take(rel, st.st_size)
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(entry.path, out, follow_symlinks=False)
        else:
            _logger.debug("%s: skipping special file %s", budget.label, rel)
