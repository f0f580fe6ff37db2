"""Private copies of a source tree, so Flux's in-place kustomization edits never touch the user's.

kustomize-controller writes its generated or merged ``kustomization.yaml`` into the artifact it
unpacked. kubegate does the same in a private temporary tree: one pristine copy of the source
root per run, and one hard-link farm of that copy per build (edited files are replaced, never
written through a link, so the pristine copy stays as the revision has it). The directory is
removed when the context exits. Called by the fleet walker.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Workspace:
    """``pristine`` is a copy of the source root; farms are created under ``base``."""

    base: Path
    pristine: Path

    def farm(self, label: str) -> Path:
        """A new tree mirroring ``pristine`` by hard links (copies where links fail)."""
        target = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.base))
        _mirror(self.pristine, target)
        return target


def _mirror(source: Path, target: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(source):
        rel = os.path.relpath(dirpath, source)
        out = target if rel == "." else target / rel
        out.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            src = os.path.join(dirpath, name)
            dst = out / name
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        # os.walk does not descend into symlinked directories: recreate them as links.
        for name in list(dirnames):
            src = os.path.join(dirpath, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), out / name)


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a new inode (never through a hard link to the pristine)."""
    tmp = path.with_name(f".{path.name}.kubegate-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def workspace(root: Path) -> Iterator[Workspace]:
    """Copy ``root`` into a private temporary directory for the duration of the context."""
    base = Path(tempfile.mkdtemp(prefix="kubegate-render-"))
    try:
        pristine = base / "pristine"
        try:
            shutil.copytree(root, pristine, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise RenderError(f"cannot copy the source tree: {exc}", where=str(root)) from exc
        yield Workspace(base=base, pristine=pristine)
    finally:
        shutil.rmtree(base, ignore_errors=True)
