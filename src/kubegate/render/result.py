"""What rendering hands to the images stage: objects, what was not seen, and problems.

Each :class:`RenderedObject` carries an :class:`ImageLocator` that answers "where is this field
written?" lazily: for plain YAML straight from the parsed node, for kustomize output through its
origin annotations (see ``provenance.py``). Built by ``plain.py`` and ``fleet.py``; read by
``kubegate.images.find``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from kubegate.models import ChartInfo, NotSeen, Origin, Problem, RemoteBase
from kubegate.render.yamlfile import PathStep, deepest, node_line, scalar_text, walk


@dataclass(frozen=True, slots=True)
class Located:
    """Where a field's value was written, and the value as written there (before overrides)."""

    origin: Origin
    declared: str | None = None


class ImageLocator(Protocol):
    """Finds the declaration of a field of one rendered object."""

    def document(self) -> Origin:
        """The file and first line of the object's document."""

    def locate(self, path: tuple[PathStep, ...]) -> Located:
        """Where the field at ``path`` (e.g. ``spec.containers[name=x].image``) was declared."""


@dataclass(frozen=True, slots=True)
class NodeLocator:
    """Locator for an object read directly from a file (plain YAML, no transformation)."""

    file: str
    node: yaml.Node

    def document(self) -> Origin:
        """The document's first line."""
        return Origin(self.file, node_line(self.node))

    def locate(self, path: tuple[PathStep, ...]) -> Located:
        """The field's own line, or the document's when it is not found."""
        found = walk(self.node, path)
        if found is None:
            # A missing field: point at the closest enclosing one (the container, say).
            return Located(Origin(self.file, node_line(deepest(self.node, path))))
        return Located(Origin(self.file, node_line(found)), scalar_text(found))


@dataclass(frozen=True, slots=True)
class HelmSource:
    """The HelmRelease whose chart rendered an object, and that chart."""

    #: ``namespace/name`` of the HelmRelease.
    release: str
    chart: ChartInfo


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """One Kubernetes object the revision would apply."""

    value: dict[str, Any]
    locator: ImageLocator
    #: ``namespace/name`` of the Flux Kustomization that renders it, if any.
    kustomization: str | None = None
    #: Source-relative directory of the Flux cluster that renders it (None: one implicit cluster).
    cluster: str | None = None
    #: The HelmRelease and chart that rendered it (None: not from a chart).
    helm: HelmSource | None = None

    @property
    def kind(self) -> str:
        """``kind`` of the object."""
        return str(self.value.get("kind", ""))

    @property
    def name(self) -> str:
        """``metadata.name`` of the object."""
        metadata = self.value.get("metadata")
        return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""

    @property
    def namespace(self) -> str | None:
        """``metadata.namespace`` of the object, if set."""
        metadata = self.value.get("metadata")
        if isinstance(metadata, dict) and metadata.get("namespace"):
            return str(metadata["namespace"])
        return None


@dataclass(frozen=True, slots=True)
class RenderResult:
    """Everything a revision renders to, plus what could not be seen and what went wrong."""

    objects: tuple[RenderedObject, ...]
    not_seen: tuple[NotSeen, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: Remote resources fetched with ``--allow-remote-bases`` (their digests are reported).
    remote_bases: tuple[RemoteBase, ...] = ()
    #: Rendered objects that need a remark (a HelmRelease whose chart calls ``lookup``, one
    #: deployed to another cluster with ``spec.kubeConfig``, a suspended one), in the
    #: not-seen shape; they do not block.
    notes: tuple[NotSeen, ...] = ()
