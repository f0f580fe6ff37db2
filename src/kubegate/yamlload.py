"""The one way kubegate reads YAML: safe types only, and aliases that cannot explode.

YAML aliases let a few hundred bytes stand for a value of billions of nodes ("billion laughs").
PyYAML builds such a value cheaply (every alias is the same Python object), but whatever walks
it later (``str()`` of a postBuild variable, JSON output, a deep copy) expands it without bound,
long before any deadline could apply. Every document is therefore composed first, and when it
holds aliases its expanded size is counted over the node graph (each distinct node once, so the
count itself is cheap): more than :func:`expansion_limit` for the text, or an alias that contains
itself, is refused with :class:`AliasExpansionError` before any Python value exists. A subclass
of ``yaml.YAMLError``, so each caller maps it like any other YAML error: the render stage to a
render problem (exit 2, the judged revision), the configuration and exception files to a
configuration error (exit 3, the user's own files).

Called by ``kubegate.render.yamlfile`` (manifests, kustomize output),
``kubegate.render.output`` (the transformations annotation kustomize writes) and
``kubegate.textfile``, whose ``parse_yaml`` reads the user's files for ``kubegate.config``,
``kubegate.decide.ignorefile`` and ``kubegate.decide.trivyignore``.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

_logger = logging.getLogger(__name__)

#: libyaml's composer when present (the C one is several times faster), else PyYAML's.
Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Expanded size (scalar characters plus one per node) any document may reach through aliases.
#: A document without aliases is never counted: its size is bounded by the text's.
MIN_EXPANSION_LIMIT = 8 * 1024 * 1024


class AliasExpansionError(yaml.YAMLError):
    """A document whose aliases expand beyond the limit, or into themselves."""


def expansion_limit(text_length: int) -> int:
    """The largest expanded size allowed for a document read from ``text_length`` characters."""
    return max(MIN_EXPANSION_LIMIT, 2 * text_length)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Size of ``root`` with every alias expanded, counted up to ``limit + 1`` at most.

    Iterative (a deep document must not exhaust the stack) and memoised per node object, as
    PyYAML's composer returns the anchored node itself wherever an alias refers to it.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            if isinstance(node, yaml.ScalarNode):
                size = 1 + len(str(node.value))
            else:
                size = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = min(size, limit + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise AliasExpansionError("an alias refers to a node that contains it")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def check_aliases(node: yaml.Node, text_length: int) -> None:
    """Refuse ``node`` when its aliases expand beyond :func:`expansion_limit`."""
    limit = expansion_limit(text_length)
    size = expanded_size(node, limit)
    if size > limit:
        line = int(node.start_mark.line) + 1 if node.start_mark is not None else 0
        raise AliasExpansionError(
            f"aliases expand the document starting at line {line} beyond {limit} "
            "characters (an alias bomb?)"
        )


def compose_all(text: str, loader: type[Any] | None = None) -> list[yaml.Node]:
    """Every document of ``text`` as a node graph, each checked for alias expansion.

    ``loader`` replaces the safe loader's composer and resolver (render's kyaml rules)."""
    nodes = [node for node in yaml.compose_all(text, Loader=loader or Loader) if node is not None]
    # An alias is written with "*": without one, nothing can expand.
    if "*" in text:
        for node in nodes:
            check_aliases(node, len(text))
    return nodes


def construct(node: yaml.Node, loader_class: type[Any] | None = None) -> Any:
    """The plain Python value of a composed (and checked) node: safe types only."""
    loader = (loader_class or yaml.SafeLoader)("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def safe_load(text: str, loader_class: type[Any] | None = None) -> Any:
    """Like ``yaml.safe_load``: the value of the one document of ``text`` (None if empty).

    ``loader_class`` builds the value (as for :func:`construct`)."""
    nodes = compose_all(text)
    if len(nodes) > 1:
        raise yaml.YAMLError("expected a single document in the stream")
    return construct(nodes[0], loader_class) if nodes else None


def load_all(
    text: str, loader: type[Any] | None = None, loader_class: type[Any] | None = None
) -> list[Any]:
    """The values of every non-empty document of ``text`` (``loader``/``loader_class`` as for
    :func:`compose_all` and :func:`construct`)."""
    return [construct(node, loader_class) for node in compose_all(text, loader)]
