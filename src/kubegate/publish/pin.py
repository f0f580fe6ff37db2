"""``--publish-pin``: pin every scanned image in the Flux Kustomizations of the published tree.

Each Flux Kustomization (``kustomize.toolkit.fluxcd.io``) that renders a scanned image gets a
``spec.images`` entry ``{name, digest}`` for it (``newName`` too when an override renamed it),
so that a tag re-pushed after the scan cannot reach the cluster: kustomize-controller applies
``spec.images`` and a digest wins over a tag. The entries are the ones ``--pin-digests`` writes
(:func:`kubegate.report.pin.pin_document`), per Kustomization.

The YAML is edited as text, in place: new lines are inserted with the indentation the document
already uses and an existing entry of the same name only gains (or changes) its ``digest``, so
comments, quoting and key order stay as written. Every edited file is parsed again and must
equal the original except for the new ``spec.images`` entries; anything else (a flow-style
``spec``, a Kustomization kubegate cannot find in the tree, an image that cannot be pinned, an
image rendered by no Flux Kustomization) refuses to publish (fail closed). Images a
HelmRelease's chart renders cannot be pinned there (kustomize-controller's ``spec.images`` never
reaches helm-controller's output; that would need the HelmRelease's ``postRenderers``), so a
revision with any refuses to publish with ``--publish-pin``.

Called by :func:`kubegate.publish.publisher.publish_result` on the private copy of the tree.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubegate import yamlload
from kubegate.decide.gate import GateResult
from kubegate.errors import PublishError
from kubegate.report.pin import PinEntry, pin_document

_logger = logging.getLogger(__name__)

_FLUX_GROUP = "kustomize.toolkit.fluxcd.io/"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_MAX_FILE = 4 * 1024 * 1024
_DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class _Doc:
    """One Flux Kustomization document in a file."""

    file: Path
    index: int
    namespace: str | None
    name: str


def pin_tree(root: Path, result: GateResult) -> tuple[str, ...]:
    """Edit the Flux Kustomizations under ``root``; one line per pin written."""
    wanted = _entries_per_kustomization(result)
    documents = list(_flux_documents(root))
    by_file: dict[Path, list[tuple[_Doc, tuple[PinEntry, ...]]]] = {}
    for key, entries in sorted(wanted.items()):
        doc = _find(documents, key)
        by_file.setdefault(doc.file, []).append((doc, entries))
    lines: list[str] = []
    for path, targets in by_file.items():
        _pin_file(path, targets, root)
        rel = path.relative_to(root).as_posix()
        for doc, entries in targets:
            lines.extend(f"{rel}: {doc.name}: {e.name}@{e.digest}" for e in entries)
    return tuple(lines)


def _entries_per_kustomization(result: GateResult) -> dict[str, tuple[PinEntry, ...]]:
    keys: set[str] = set()
    for image in result.images:
        for use in image.facts.uses:
            if use.kustomization is None:
                raise PublishError(
                    f"{image.facts.reference} ({use.origin.file}) is rendered by no Flux "
                    "Kustomization: --publish-pin has no spec.images to pin it in"
                )
            keys.add(use.kustomization)
    wanted: dict[str, tuple[PinEntry, ...]] = {}
    for key in keys:
        images = tuple(
            dataclasses.replace(
                image,
                facts=dataclasses.replace(
                    image.facts,
                    uses=tuple(u for u in image.facts.uses if u.kustomization == key),
                ),
            )
            for image in result.images
            if any(u.kustomization == key for u in image.facts.uses)
        )
        document = pin_document(dataclasses.replace(result, images=images))
        if document.warnings:
            raise PublishError(f"--publish-pin: Kustomization {key}: {document.warnings[0]}")
        wanted[key] = document.entries
    return wanted


def _flux_documents(root: Path) -> Iterator[_Doc]:
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = Path(directory) / name
            if path.is_symlink() or path.stat().st_size > _MAX_FILE:
                continue
            try:
                values = yamlload.load_all(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError, ValueError):
                continue  # not a manifest kustomize-controller could have applied either
            for index, value in enumerate(values):
                if not _is_flux_kustomization(value):
                    continue
                metadata = value.get("metadata") or {}
                if not isinstance(metadata, dict):
                    continue
                namespace = metadata.get("namespace")
                yield _Doc(
                    path,
                    index,
                    str(namespace) if namespace else None,
                    str(metadata.get("name") or ""),
                )


def _is_flux_kustomization(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("kind") == "Kustomization"
        and str(value.get("apiVersion", "")).startswith(_FLUX_GROUP)
    )


def _find(documents: list[_Doc], key: str) -> _Doc:
    namespace, _, name = key.partition("/")
    exact = [
        d for d in documents if d.name == name and (d.namespace or _DEFAULT_NAMESPACE) == namespace
    ]
    # A Kustomization applied through a kustomization with ``namespace:`` has no namespace in
    # its own file; one without namespace and of that name is then the one.
    loose = [d for d in documents if d.name == name and d.namespace is None]
    found = exact or loose
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise PublishError(
            f"--publish-pin: {what} document(s) in the tree declare Flux Kustomization {key}"
        )
    return found[0]


# -- the text edit ---------------------------------------------------------------------------


def _pin_file(path: Path, targets: list[tuple[_Doc, tuple[PinEntry, ...]]], root: Path) -> None:
    where = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8")
    edited = pin_text(text, {doc.index: entries for doc, entries in targets}, where)
    path.write_text(edited, encoding="utf-8")
    _logger.info("--publish-pin: pinned %s", where)


def pin_text(text: str, entries: dict[int, tuple[PinEntry, ...]], where: str) -> str:
    """``text`` with ``spec.images`` of document ``index`` pinning ``entries[index]``."""
    try:
        # Anchors and aliases are refused: the check below compares the documents before and
        # after, and aliases nested in aliases make that comparison exponential (a YAML bomb).
        # An alias is written with "*": without one there is nothing to look for.
        if "*" in text and any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text)):
            raise PublishError(f"--publish-pin: {where}: YAML aliases are not supported")
        # The pure-Python composer: the edits below index ``text`` by its marks (characters).
        nodes = yamlload.compose_all(text, yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PublishError(f"--publish-pin: {where}: not YAML: {exc}") from exc
    edits: list[tuple[int, int, str]] = []
    for index, wanted in entries.items():
        edits.extend(_document_edits(text, nodes[index], wanted, where))
    edited = text
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        edited = edited[:start] + replacement + edited[end:]
    _verify(nodes, edited, entries, where)
    return edited


def _key(mapping: yaml.MappingNode, name: str) -> yaml.Node | None:
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            found: yaml.Node = value
            return found
    return None


def _last_index(node: yaml.Node) -> int:
    """End of the last scalar under ``node`` (a collection's own end mark may lie beyond
    trailing comments and blank lines that belong to what follows)."""
    while (
        isinstance(node, yaml.MappingNode | yaml.SequenceNode)
        and node.value
        and not node.flow_style
    ):
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return int(node.end_mark.index)


def _after_line(text: str, index: int) -> tuple[int, str]:
    """Where a new line goes after the one holding ``index``, and a newline to prefix if the
    file does not end with one."""
    if index > 0 and text[index - 1] == "\n":
        return index, ""  # a block scalar's end mark is already at the start of a line
    newline = text.find("\n", index)
    if newline < 0:
        return len(text), "\n"
    return newline + 1, ""


def _scalar(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else json.dumps(value)


def _entry_lines(entry: PinEntry, dash: int, key: int) -> str:
    pairs = [("name", entry.name)]
    if entry.new_name:
        pairs.append(("newName", entry.new_name))
    pairs.append(("digest", entry.digest))
    first, *rest = pairs
    text = f"{' ' * dash}-{' ' * (key - dash - 1)}{first[0]}: {_scalar(first[1])}\n"
    text += "".join(f"{' ' * key}{k}: {_scalar(v)}\n" for k, v in rest)
    return text


def _document_edits(
    text: str, node: yaml.Node, entries: tuple[PinEntry, ...], where: str
) -> list[tuple[int, int, str]]:
    spec = _key(node, "spec") if isinstance(node, yaml.MappingNode) else None
    if not isinstance(spec, yaml.MappingNode) or spec.flow_style or not spec.value:
        raise PublishError(f"--publish-pin: {where}: spec is not a block mapping; cannot edit it")
    images = _key(spec, "images")
    if images is None:
        indent = spec.value[0][0].start_mark.column
        at, prefix = _after_line(text, _last_index(spec))
        body = f"{' ' * indent}images:\n" + "".join(
            _entry_lines(e, indent + 2, indent + 4) for e in entries
        )
        return [(at, at, prefix + body)]
    if isinstance(images, yaml.SequenceNode) and images.flow_style:
        if images.value:
            raise PublishError(f"--publish-pin: {where}: spec.images is a non-empty flow list")
        flow = ", ".join(
            "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in e.as_dict().items()) + "}"
            for e in entries
        )
        return [(images.start_mark.index, images.end_mark.index, f"[{flow}]")]
    if not isinstance(images, yaml.SequenceNode) or not images.value:
        raise PublishError(f"--publish-pin: {where}: spec.images is not a list")
    edits: list[tuple[int, int, str]] = []
    items = [item for item in images.value if isinstance(item, yaml.MappingNode)]
    if len(items) != len(images.value) or any(item.flow_style for item in items):
        raise PublishError(f"--publish-pin: {where}: spec.images entries must be block mappings")
    dash = images.start_mark.column
    key_column = items[0].value[0][0].start_mark.column
    append = ""
    for entry in entries:
        item = next((i for i in items if _scalar_of(_key(i, "name")) == entry.name), None)
        if item is None:
            append += _entry_lines(entry, dash, key_column)
            continue
        digest = _key(item, "digest")
        if isinstance(digest, yaml.ScalarNode):
            edits.append((digest.start_mark.index, digest.end_mark.index, _scalar(entry.digest)))
            continue
        column = item.value[0][0].start_mark.column
        at, prefix = _after_line(text, _last_index(item))
        edits.append((at, at, f"{prefix}{' ' * column}digest: {_scalar(entry.digest)}\n"))
    if append:
        at, prefix = _after_line(text, _last_index(images))
        edits.append((at, at, prefix + append))
    return edits


def _scalar_of(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _verify(
    before: list[yaml.Node], after: str, entries: dict[int, tuple[PinEntry, ...]], where: str
) -> None:
    """The edit changed nothing but ``spec.images``, which now pins every entry (``before``:
    the original documents, as composed for the edit)."""
    try:
        old = [yamlload.construct(node) for node in before]
        new = yamlload.load_all(after, yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PublishError(f"--publish-pin: {where}: the edit broke the YAML: {exc}") from exc
    if len(old) != len(new):
        raise PublishError(f"--publish-pin: {where}: the edit changed the documents")
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        if index not in entries:
            if a != b:
                raise PublishError(f"--publish-pin: {where}: the edit changed another document")
            continue
        images = b["spec"].get("images") if isinstance(b.get("spec"), dict) else None
        if not isinstance(images, list):
            raise PublishError(f"--publish-pin: {where}: spec.images missing after the edit")
        for entry in entries[index]:
            found = [i for i in images if isinstance(i, dict) and i.get("name") == entry.name]
            if len(found) != 1 or found[0].get("digest") != entry.digest:
                raise PublishError(f"--publish-pin: {where}: {entry.name} not pinned by the edit")
        stripped_a, stripped_b = copy.deepcopy(a), copy.deepcopy(b)
        stripped_a["spec"].pop("images", None)
        stripped_b["spec"].pop("images", None)
        if stripped_a != stripped_b:
            raise PublishError(f"--publish-pin: {where}: the edit changed more than spec.images")
