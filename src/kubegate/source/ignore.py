"""What source-controller leaves out of an artifact: default exclusions and ``.sourceignore``.

Mirrors fluxcd/pkg ``sourceignore``: the default patterns (VCS files, extension, CI and extra
excludes) come first with the lowest priority, then every ``.sourceignore`` found from the root
down (each one scoped to its own directory, its "domain"), sub-directories in name order. The last
pattern that matches a file decides, so a ``.sourceignore`` may re-include (``!pattern``) what a
default excluded. Like source-controller, only files are matched (directories are never filtered
themselves; a directory pattern excludes the files beneath it).

Called by :mod:`kubegate.source.tree` when it copies a revision into its private root.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

from kubegate.errors import SourceError

_logger = logging.getLogger(__name__)

IGNORE_FILE = ".sourceignore"

# fluxcd/pkg sourceignore ExcludeVCS, ExcludeExt, ExcludeCI, ExcludeExtra (in that order).
EXCLUDE_VCS: tuple[str, ...] = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
EXCLUDE_EXT: tuple[str, ...] = (
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
)
EXCLUDE_CI: tuple[str, ...] = (
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
)
EXCLUDE_EXTRA: tuple[str, ...] = ("**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml")
DEFAULT_PATTERNS: tuple[str, ...] = EXCLUDE_VCS + EXCLUDE_EXT + EXCLUDE_CI + EXCLUDE_EXTRA

#: A .sourceignore larger than this is not a pattern file anyone wrote by hand.
_MAX_IGNORE_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class _ScopedPattern:
    """One gitignore pattern and the directory (POSIX, ``""`` for the root) it applies under."""

    domain: str
    pattern: GitIgnoreBasicPattern


def _parse(lines: list[str], domain: str) -> list[_ScopedPattern]:
    out: list[_ScopedPattern] = []
    for line in lines:
        # fluxcd/pkg ReadPatterns skips comment and blank lines before parsing.
        if line.startswith("#") or not line.strip():
            continue
        pattern = GitIgnoreBasicPattern(line)
        if pattern.include is not None:
            out.append(_ScopedPattern(domain, pattern))
    return out


class IgnoreRules:
    """Ordered gitignore patterns; :meth:`ignored` answers for one file path relative to root."""

    __slots__ = ("_patterns",)

    def __init__(self, patterns: list[_ScopedPattern]) -> None:
        self._patterns = patterns

    @classmethod
    def defaults(cls) -> IgnoreRules:
        """Only source-controller's default exclusions."""
        return cls(_parse(list(DEFAULT_PATTERNS), ""))

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        """Defaults plus every ``.sourceignore`` under ``root`` (``.git`` is not descended)."""
        patterns = _parse(list(DEFAULT_PATTERNS), "")
        patterns.extend(_load_tree(root, ""))
        return cls(patterns)

    @classmethod
    def from_text(cls, text: str) -> IgnoreRules:
        """Patterns written in gitignore syntax for the root (a GitRepository's ``spec.ignore``)."""
        return cls(_parse(text.splitlines(), ""))

    def ignored(self, rel: str) -> bool:
        """True when the file at POSIX path ``rel`` (relative to root) is left out."""
        result = False
        for scoped in self._patterns:
            if scoped.domain:
                prefix = scoped.domain + "/"
                if not rel.startswith(prefix):
                    continue
                sub = rel[len(prefix) :]
            else:
                sub = rel
            if scoped.pattern.match_file(sub) is not None:
                result = bool(scoped.pattern.include)
        return result

    def __len__(self) -> int:
        return len(self._patterns)


def _read_ignore_file(path: Path, rel: str) -> list[str]:
    try:
        if path.is_symlink() or not path.is_file():
            # A symlinked pattern file could point anywhere; source-controller's checkout would
            # hold the link, and reading through it is not worth the risk.
            return []
        if path.stat().st_size > _MAX_IGNORE_FILE_BYTES:
            raise SourceError(
                f"{IGNORE_FILE} larger than {_MAX_IGNORE_FILE_BYTES} bytes", where=rel
            )
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read {IGNORE_FILE}: {exc.strerror}", where=rel) from exc


def _load_tree(directory: Path, domain: str) -> list[_ScopedPattern]:
    rel = f"{domain}/{IGNORE_FILE}" if domain else IGNORE_FILE
    patterns = _parse(_read_ignore_file(directory / IGNORE_FILE, rel), domain)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"cannot list directory: {exc.strerror}", where=domain or ".") from exc
    for entry in entries:
        # follow_symlinks=False: a symlinked directory is a link, not a place to read rules from.
        if entry.name != ".git" and entry.is_dir(follow_symlinks=False):
            sub_domain = f"{domain}/{entry.name}" if domain else entry.name
            patterns.extend(_load_tree(Path(entry.path), sub_domain))
    if patterns:
        _logger.debug("%s: %d ignore patterns", domain or ".", len(patterns))
    return patterns
