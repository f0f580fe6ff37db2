"""YAML files read with their line numbers (PyYAML node marks).

Owns the one YAML loader the render stage uses: :func:`load_documents` returns every document of
a file as a composed node (which keeps ``start_mark`` lines) together with its plain Python value,
and :func:`find_image_node` walks a node along a path to report where a field is written.
Called by the plain-YAML loader, the Flux Kustomization scanner and the provenance locators.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubegate import yamlload
from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)

#: Manifests bigger than this are refused: no unbounded reads of untrusted input.
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Named:
    """A path step selecting the list item whose ``name`` equals :attr:`name`."""

    name: str


PathStep = str | int | Named


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its node (with line marks) and its value."""

    node: yaml.Node
    value: Any

    @property
    def line(self) -> int:
        """1-based line where the document's content starts."""
        return int(self.node.start_mark.line) + 1


def read_text(path: Path, where: str) -> str:
    """Read a manifest as UTF-8, refusing oversized files."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RenderError(f"file larger than {MAX_FILE_BYTES} bytes", where=where)
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError("not UTF-8 text", where=where) from exc
    except OSError as exc:
        raise RenderError(f"cannot read: {exc.strerror}", where=where) from exc


def parse_documents(text: str, where: str, *, values: bool = True) -> list[Document]:
    """Every non-empty document of ``text``; invalid YAML raises RenderError at file:line."""
    try:
        nodes = yamlload.compose_all(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise RenderError(f"invalid YAML: {problem}", where=f"{where}{line}") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"invalid YAML: {exc}", where=where) from exc
    documents = []
    for node in nodes:
        if node is None:
            continue
        # Building Python values is the slow half of PyYAML (pure Python even with libyaml):
        # provenance lookups only walk nodes, so they skip it.
        documents.append(Document(node=node, value=construct(node, where) if values else None))
    return documents


def construct(node: yaml.Node, where: str) -> Any:
    """The plain Python value of a composed node (safe types only)."""
    try:
        return yamlload.construct(node)
    except yaml.YAMLError as exc:
        line = int(node.start_mark.line) + 1
        raise RenderError(f"invalid YAML value: {exc}", where=f"{where}:{line}") from exc


def load_documents(path: Path, where: str, *, values: bool = True) -> list[Document]:
    """Read and parse ``path``; ``where`` is how errors name it (a source-relative path)."""
    return parse_documents(read_text(path, where), where, values=values)


def mapping_get(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a mapping node, or None."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value_node
            return found
    return None


def walk(node: yaml.Node | None, path: tuple[PathStep, ...]) -> yaml.Node | None:
    """Follow ``path`` from ``node``; None when any step is missing."""
    for step in path:
        if node is None:
            return None
        if isinstance(step, str):
            node = mapping_get(node, step)
        elif isinstance(step, int):
            if not isinstance(node, yaml.SequenceNode) or step >= len(node.value):
                return None
            node = node.value[step]
        else:
            if not isinstance(node, yaml.SequenceNode):
                return None
            node = next(
                (
                    item
                    for item in node.value
                    if isinstance((name := mapping_get(item, "name")), yaml.ScalarNode)
                    and name.value == step.name
                ),
                None,
            )
    return node


def deepest(node: yaml.Node, path: tuple[PathStep, ...]) -> yaml.Node:
    """The node of the longest prefix of ``path`` that exists (``node`` itself at worst)."""
    for end in range(len(path), 0, -1):
        found = walk(node, path[:end])
        if found is not None:
            return found
    return node


def node_line(node: yaml.Node) -> int:
    """1-based line of a node."""
    return int(node.start_mark.line) + 1


def scalar_text(node: yaml.Node | None) -> str | None:
    """The text of a scalar node, else None."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return None


def load_stream(text: str, where: str) -> list[Any]:
    """Plain values of a YAML stream (kustomize output), fast path without line marks."""
    try:
        return [doc for doc in yamlload.load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"invalid YAML: {exc}", where=where) from exc


def dump(value: Any) -> str:
    """Serialise ``value`` as block YAML (used for generated kustomization files)."""
    dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(value, Dumper=dumper, sort_keys=False, default_flow_style=False))
