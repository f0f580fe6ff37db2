"""Which clusters a Flux fleet repository describes, and where the walk of each one starts.

A cluster is (docs/images.md "Clusters"):

1. the directory a **bootstrap sync** applies: a Flux Kustomization whose ``sourceRef`` is a
   GitRepository defined next to it (same directory) and whose ``spec.path`` is its own
   directory's parent, as ``flux bootstrap`` writes
   ``clusters/NAME/flux-system/gotk-sync.yaml`` with ``path: ./clusters/NAME`` (fluxcd/flux2
   ``pkg/manifestgen/sync``); that GitRepository is the scanned source of the cluster;
2. without any bootstrap sync, each directory ``clusters/NAME`` holding Flux Kustomizations;
3. else the whole tree, one implicit cluster (reported as ``null``).

Each cluster is rendered on its own (its own ConfigMaps, Secrets and Kustomization names). Called
by the fleet walker (``fleet.py``) with the Flux objects found by a quick scan of the tree.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubegate.errors import UsageError
from kubegate.models import Origin
from kubegate.render.fluxks import SCANNED_SOURCE_KINDS, FluxKustomization

_logger = logging.getLogger(__name__)

SOURCE_GROUP = "source.toolkit.fluxcd.io"
CLUSTERS_DIR = "clusters"
#: How many names an error lists before it only counts the rest (a fleet has hundreds).
MAX_NAMES_LISTED = 8


@dataclass(frozen=True, slots=True)
class GitSource:
    """A GitRepository object of the revision: ``namespace/name``, URL and where it is written."""

    key: str
    url: str
    origin: Origin
    spec: dict[str, Any]


def git_source(value: dict[str, Any], origin: Origin, default_namespace: str) -> GitSource | None:
    """A :class:`GitSource` when ``value`` is a source-controller GitRepository, else None."""
    if value.get("kind") != "GitRepository":
        return None
    if str(value.get("apiVersion", "")).partition("/")[0] != SOURCE_GROUP:
        return None
    raw = value.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    spec = value.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    namespace = str(metadata.get("namespace") or default_namespace)
    return GitSource(
        f"{namespace}/{metadata.get('name') or ''}", str(spec.get("url") or ""), origin, spec
    )


def source_key(ks: FluxKustomization) -> str:
    """``namespace/name`` of the source a Kustomization reads (its own namespace by default)."""
    ref = ks.spec.get("sourceRef")
    namespace = ref.get("namespace") if isinstance(ref, dict) else None
    return f"{namespace or ks.namespace}/{ks.source_name}"


@dataclass(frozen=True, slots=True)
class Cluster:
    """One cluster of the fleet."""

    #: Source-relative directory (no ``./``), None for the one implicit cluster.
    path: str | None
    #: Source-relative directory whose loose objects feed substituteFrom ("" = whole tree).
    directory: str
    #: The Kustomizations the walk starts from.
    roots: tuple[FluxKustomization, ...]
    #: ``namespace/name`` of the GitRepository that is the scanned source (bootstrap sync).
    source: str | None = None


def base_of(ks: FluxKustomization) -> str:
    """``spec.path`` normalised, source-relative ("." for the root)."""
    return posixpath.normpath(ks.path.strip().lstrip("/") or ".")


def under(base: str, file: str) -> bool:
    """Whether the source-relative ``file`` lies in directory ``base``."""
    return base == "." or file == base or file.startswith(base + "/")


def _parent(path: str) -> str:
    return posixpath.dirname(path) or "."


def _bootstrap_dir(ks: FluxKustomization, repos: Sequence[GitSource]) -> str | None:
    file = ks.origin.file
    if file is None or ks.source_kind != "GitRepository":
        return None
    here = _parent(file)
    if base_of(ks) != _parent(here) or here == ".":
        return None
    key = source_key(ks)
    if not any(r.key == key and r.origin.file and _parent(r.origin.file) == here for r in repos):
        return None
    return base_of(ks)


def roots_of(scanned: Sequence[FluxKustomization]) -> list[FluxKustomization]:
    """The Kustomizations no other one applies: those whose file no other one's path covers.

    A Kustomization without ``spec.path`` (the whole source) covers nothing here: outside a
    bootstrap sync it is one more Kustomization, not the one applying all the others.
    """
    local = [ks for ks in scanned if ks.source_kind in SCANNED_SOURCE_KINDS and base_of(ks) != "."]
    roots = [
        ks
        for ks in scanned
        if not any(
            other is not ks and ks.origin.file is not None and under(base_of(other), ks.origin.file)
            for other in local
        )
    ]
    # Kustomizations that all cover one another: none is the root, so all are.
    return roots or list(scanned)


def find_clusters(
    scanned: Sequence[FluxKustomization], repos: Sequence[GitSource], scope: str
) -> list[Cluster]:
    """The clusters of a tree whose Flux Kustomizations are ``scanned`` (see module docstring).

    ``scope`` is the source-relative directory that was scanned (``--path``, "" for the root).
    """
    bootstraps: dict[str, list[FluxKustomization]] = {}
    for ks in scanned:
        directory = _bootstrap_dir(ks, repos)
        if directory is not None:
            bootstraps.setdefault(directory, []).append(ks)
    if bootstraps:
        return [
            Cluster(
                path=None if directory == "." else directory,
                directory="" if directory == "." else directory,
                roots=tuple(found),
                source=source_key(found[0]),
            )
            for directory, found in sorted(bootstraps.items())
        ]
    prefix = f"{scope}/{CLUSTERS_DIR}/" if scope else f"{CLUSTERS_DIR}/"
    groups: dict[str, list[FluxKustomization]] = {}
    for ks in scanned:
        file = ks.origin.file or ""
        rest = file.removeprefix(prefix)
        if rest != file and "/" in rest:
            groups.setdefault(prefix + rest.partition("/")[0], []).append(ks)
    if groups:
        return [
            Cluster(path=directory, directory=directory, roots=tuple(roots_of(found)))
            for directory, found in sorted(groups.items())
        ]
    return [Cluster(path=None, directory=scope, roots=tuple(roots_of(scanned)))]


def _normal(text: str) -> str:
    return posixpath.normpath(text.strip().removeprefix("./").rstrip("/") or ".")


def select_clusters(clusters: Sequence[Cluster], wanted: Sequence[str]) -> list[Cluster]:
    """The clusters named by ``--cluster NAME|PATH`` (all when none is named)."""
    if not wanted:
        return list(clusters)
    chosen: list[Cluster] = []
    for text in wanted:
        name = _normal(text)
        found = [
            c
            for c in clusters
            if c.path is not None and name in (c.path, posixpath.basename(c.path))
        ]
        if not found:
            known = names_line([c.path for c in clusters if c.path is not None])
            raise UsageError(f"--cluster {text}: no such cluster (found: {known})")
        chosen.extend(c for c in found if c not in chosen)
    return chosen


def names_line(names: Sequence[str]) -> str:
    """``a, b, c`` or ``a, b, ... (40 in all)``: error text stays one short line."""
    ordered = sorted(names)
    if not ordered:
        return "none"
    if len(ordered) <= MAX_NAMES_LISTED:
        return ", ".join(ordered)
    return f"{', '.join(ordered[:MAX_NAMES_LISTED])}, ... ({len(ordered)} in all)"
