"""YAML files read with their line numbers (PyYAML node marks).

Owns the one YAML loader the render stage uses: :func:`load_documents` returns every document of
a file as a composed node (which keeps ``start_mark`` lines) together with its plain Python value,
and :func:`find_image_node` walks a node along a path to report where a field is written.
Called by the plain-YAML loader, the Flux Kustomization scanner and the provenance locators.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubegate import yamlload
from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)

#: Manifests bigger than this are refused: no unbounded reads of untrusted input.
MAX_FILE_BYTES = 16 * 1024 * 1024

# kustomize reads YAML with kyaml on go-yaml v3, not as YAML 1.1 (PyYAML's schema): `=`,
# `yes`/`on`/`no`/`off` and `1:30` are strings, `0777` is 511 and `0o17` is 15 (Go's
# strconv.ParseInt with base 0, after dropping every `_`), `1e3` is a float, and an anchor may be
# defined again further down (the later one wins). Mirrors go-yaml v3 resolve.go: the first
# character picks what a plain scalar may be, then ParseInt/ParseUint/ParseFloat decide.
_GO_BOOL = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
}
_GO_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_GO_SPECIAL_FLOAT = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
}
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-")
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def go_yaml_tag(value: str) -> str:
    """The tag go-yaml v3 resolves a plain scalar to (timestamps stay strings: their text)."""
    if value in _GO_BOOL:
        return _BOOL_TAG
    if value in _GO_NULL:
        return _NULL_TAG
    if value in _GO_SPECIAL_FLOAT:
        return _FLOAT_TAG
    if value == "<<":
        return _MERGE_TAG
    first = value[0]
    if first == ".":
        return _FLOAT_TAG if _GO_FLOAT.fullmatch(value) else _STR_TAG
    if first in "+-0123456789" and not _GO_TIMESTAMP.match(value):
        plain = value.replace("_", "")
        if _GO_INT.fullmatch(plain):
            return _INT_TAG
        if _GO_FLOAT.fullmatch(plain):
            return _FLOAT_TAG
    return _STR_TAG


def _go_int(text: str) -> int:
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    plain = plain.lstrip("+-")
    if len(plain) > 1 and plain[0] == "0" and plain[1] in "01234567":
        return sign * int(plain, 8)  # YAML 1.1 octal, still decoded by go-yaml v3
    return sign * int(plain, 0)


class _GoResolver:
    """Resolver mix-in: plain scalars resolved as go-yaml v3 does (see :func:`go_yaml_tag`)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return go_yaml_tag(value)
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


def _construct_go_int(loader: Any, node: yaml.ScalarNode) -> int:
    return _go_int(str(loader.construct_scalar(node)))


def _construct_go_float(loader: Any, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    return _GO_SPECIAL_FLOAT.get(text) or float(text.replace("_", ""))


def _construct_go_bool(loader: Any, node: yaml.ScalarNode) -> bool:
    text = str(loader.construct_scalar(node))
    return _GO_BOOL.get(text, text.lower() == "true")


class _GoConstructor(yaml.constructor.SafeConstructor):
    """Values as go-yaml v3 decodes them (ints with Go's base prefixes, floats like ParseFloat)."""


_GoConstructor.add_constructor(_INT_TAG, _construct_go_int)
_GoConstructor.add_constructor(_FLOAT_TAG, _construct_go_float)
_GoConstructor.add_constructor(_BOOL_TAG, _construct_go_bool)


class KyamlLoader(_GoResolver, yamlload.Loader):  # type: ignore[misc]
    """The fast composer (libyaml when present) with kustomize's scalar resolution.

    It only composes: every value is built by :class:`KyamlPyLoader`'s constructor.
    """


class _RedefiningComposer(yaml.composer.Composer):
    """Composer accepting an anchor defined again: the later definition wins, as in go-yaml."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        anchor = getattr(event, "anchor", None)
        if anchor is not None and not isinstance(event, yaml.AliasEvent):
            self.anchors.pop(anchor, None)
        return super().compose_node(parent, index)


class KyamlPyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _RedefiningComposer,
    _GoConstructor,
    _GoResolver,
    yaml.resolver.Resolver,
):
    """Pure-Python loader with kustomize's scalar resolution and anchor redefinition."""

    def __init__(self, stream: Any) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _RedefiningComposer.__init__(self)
        _GoConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def _compose(text: str) -> list[yaml.Node]:
    """Every non-empty document of ``text`` as a checked node graph (yamlload.compose_all)."""
    try:
        return yamlload.compose_all(text, KyamlLoader)
    except yaml.composer.ComposerError as exc:
        # libyaml's composer refuses a second definition of an anchor; the Python one accepts
        # it (the later one wins, as in go-yaml).
        if "duplicate anchor" not in str(exc):
            raise
        return yamlload.compose_all(text, KyamlPyLoader)


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


def decode(data: bytes, where: str) -> str:
    """Manifest bytes as :func:`read_text` returns a file's: size-checked, UTF-8, BOM dropped,
    universal newlines (what ``Path.read_text`` does)."""
    if len(data) > MAX_FILE_BYTES:
        raise RenderError(f"file larger than {MAX_FILE_BYTES} bytes", where=where)
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig").read()
    except UnicodeDecodeError as exc:
        raise RenderError("not UTF-8 text", where=where) from exc


def parse_documents(text: str, where: str, *, values: bool = True) -> list[Document]:
    """Every non-empty document of ``text``; invalid YAML raises RenderError at file:line."""
    try:
        nodes = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise RenderError(f"invalid YAML: {problem}", where=f"{where}{line}") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"invalid YAML: {exc}", where=where) from exc
    # Building Python values is the slow half of PyYAML (pure Python even with libyaml):
    # provenance lookups only walk nodes, so they skip it.
    return [Document(node=node, value=construct(node, where) if values else None) for node in nodes]


def construct(node: yaml.Node, where: str) -> Any:
    """The plain Python value of a composed node (safe types only)."""
    try:
        return yamlload.construct(node, KyamlPyLoader)
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
        docs = [yamlload.construct(node, KyamlPyLoader) for node in _compose(text)]
        return [doc for doc in docs if doc is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"invalid YAML: {exc}", where=where) from exc


class _KyamlDumper(_GoResolver, getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Quotes every string kustomize would read as something else (``0o17``, ``1e3``)."""

    def represent_str(self, data: str) -> Any:
        # A string the YAML 1.1 schema would read as another type keeps its quotes too, for
        # any tool still on it.
        node = super().represent_str(data)
        yaml11 = yaml.resolver.Resolver().resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, data, (True, False)
        )
        if yaml11 != _STR_TAG:
            node.style = "'"
        return node


_KyamlDumper.add_representer(str, _KyamlDumper.represent_str)


def dump(value: Any) -> str:
    """Serialise ``value`` as block YAML (used for generated kustomization files)."""
    return str(yaml.dump(value, Dumper=_KyamlDumper, sort_keys=False, default_flow_style=False))
