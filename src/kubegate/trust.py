"""The trust boundary of a scan: the judged source never sets its own policy, nor receives output.

The revision being judged is hostile (docs/security.md). Whatever decides its verdict --
configuration, exceptions, VEX, postBuild variables, the advisory database, CA bundles, local
image sources -- must come from the user, so :class:`JudgedTree` refuses (exit 3) every such file
whose real path lies inside the judged source, unless the user said ``--trust-source-config``;
and the files kubegate writes (``--output``, ``--pin-digests``) land inside it only with
``--write-into-source``. Paths are compared after resolving every symlink and ``..``
(``os.path.realpath``), so a path outside that links into the tree is caught; for an output the
last component is never followed (``kubegate.outfile`` writes without following it).

``root`` is the judged source as it lies on this machine: the directory of a ``dir`` source, the
repository of a local git source (path or ``file://``); ``None`` for a remote git URL or a Flux
artifact, whose only copy is kubegate's private temporary checkout. Called by
``kubegate.cli.scan`` before anything is fetched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubegate.errors import ConfigError, UsageError

#: What to tell a user whose file was refused.
_INPUT_HINT = (
    "a revision must not set its own policy: keep the file outside it, read it from an approved "
    "ref with --config-ref, or pass --trust-source-config"
)
_OUTPUT_HINT = "kubegate does not write into the revision it judges unless --write-into-source"


def real_path(path: Path) -> Path:
    """``path`` with every symlink and ``..`` resolved (missing parts kept as written)."""
    return Path(os.path.realpath(path))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass(frozen=True, slots=True)
class JudgedTree:
    """The judged source on disk (``root``, a real path) and what the user allowed in it."""

    root: Path | None = None
    #: ``--trust-source-config``: policy files inside the judged source are read.
    trust_config: bool = False
    #: ``--write-into-source``: reports and pins may be written inside the judged source.
    write_into: bool = False

    def contains(self, path: Path) -> bool:
        """Whether the real path of ``path`` is the judged source or beneath it."""
        return self.root is not None and _within(real_path(path), self.root)

    def check_input(self, path: Path, what: str, *, config: Path | None = None) -> Path:
        """``path`` unchanged, or exit 3 when it is a file of the judged source.

        ``what`` names the option or key (``--config``, ``policy.ignorefile``); ``config`` is the
        configuration file that named it, when it was not a flag.
        """
        if self.trust_config or not self.contains(path):
            return path
        message = f"{path} is inside the judged source {self.root}: {_INPUT_HINT}"
        if config is not None:
            raise ConfigError(f"{what}: {message}", where=str(config))
        raise UsageError(message, where=what)

    def check_output(self, path: Path, what: str) -> Path:
        """``path`` unchanged, or exit 3 when kubegate would write it inside the judged source.

        The last component is not resolved (the writer never follows it); its directory is.
        """
        if self.write_into or self.root is None:
            return path
        target = real_path(path.parent) / path.name
        if _within(target, self.root):
            raise UsageError(
                f"{path} is inside the judged source {self.root}: {_OUTPUT_HINT}", where=what
            )
        return path
