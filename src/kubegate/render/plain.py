"""Plain YAML: every ``*.yaml``/``*.yml`` under a path, with line numbers for every field.

Multi-document files are split, ``kind: List`` (and ``*List``) objects are expanded, files or
documents that are not Kubernetes objects (no ``apiVersion``/``kind``) are skipped with a log
note, invalid YAML is a :class:`~kubegate.models.Problem` naming file and line (the scan goes on
with the other files). Also used by the fleet walker to find Flux Kustomizations under a path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubegate.errors import RenderError
from kubegate.models import Origin, Problem
from kubegate.render.result import NodeLocator, RenderedObject
from kubegate.render.yamlfile import MAX_FILE_BYTES, Document, load_documents, mapping_get

_logger = logging.getLogger(__name__)

#: kustomize's own configuration files are not objects a cluster would receive.
_KUSTOMIZE_CONFIG_GROUP = "kustomize.config.k8s.io"


@dataclass(frozen=True, slots=True)
class PlainScan:
    """Objects found under a path, and the files that could not be read."""

    objects: tuple[RenderedObject, ...]
    problems: tuple[Problem, ...]


def yaml_files(directory: Path) -> Iterator[Path]:
    """Every YAML file under ``directory``, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")):
                yield Path(dirpath) / name


def _expand(doc_node: yaml.Node, value: object) -> Iterator[tuple[yaml.Node, dict[str, Any]]]:
    if not isinstance(value, dict):
        return
    kind = str(value.get("kind", ""))
    items = value.get("items")
    if kind.endswith("List") and isinstance(items, list):
        item_nodes = mapping_get(doc_node, "items")
        nodes = item_nodes.value if isinstance(item_nodes, yaml.SequenceNode) else []
        for node, item in zip(nodes, items, strict=False):
            yield from _expand(node, item)
        return
    yield doc_node, value


def is_kubernetes_object(value: object) -> bool:
    """Whether a YAML value looks like a Kubernetes object."""
    return isinstance(value, dict) and bool(value.get("apiVersion")) and bool(value.get("kind"))


def scan_plain(root: Path, directory: Path, *, quiet: bool = False) -> PlainScan:
    """Load every object under ``directory``; paths reported relative to ``root``."""
    return scan_files(root, yaml_files(directory), quiet=quiet)


def files_mentioning(directory: Path, needle: str) -> tuple[list[Path], list[Path]]:
    """YAML files under ``directory`` whose text holds ``needle``, and all the others.

    Finding Flux Kustomizations in a large tree this way avoids parsing every manifest twice.
    """
    hits: list[Path] = []
    rest: list[Path] = []
    for path in yaml_files(directory):
        try:
            with path.open("rb") as handle:
                head = handle.read(MAX_FILE_BYTES + 1)
        except OSError:
            rest.append(path)
            continue
        (hits if needle.encode() in head else rest).append(path)
    return hits, rest


def scan_files(root: Path, files: Iterable[Path], *, quiet: bool = False) -> PlainScan:
    """Load every object of ``files``; paths reported relative to ``root``."""
    objects: list[RenderedObject] = []
    problems: list[Problem] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            documents: list[Document] = load_documents(path, rel)
        except RenderError as exc:
            file, _, line = (exc.where or rel).partition(":")
            problems.append(Problem(exc.message, Origin(file, int(line) if line else None)))
            continue
        for doc in documents:
            for node, value in _expand(doc.node, doc.value):
                if not is_kubernetes_object(value):
                    if not quiet:
                        _logger.info(
                            "%s:%d: skipped: not a Kubernetes object (no apiVersion/kind)",
                            rel,
                            int(node.start_mark.line) + 1,
                        )
                    continue
                group = str(value.get("apiVersion", "")).partition("/")[0]
                if group == _KUSTOMIZE_CONFIG_GROUP:
                    continue
                objects.append(RenderedObject(value=value, locator=NodeLocator(rel, node)))
    return PlainScan(tuple(objects), tuple(problems))
