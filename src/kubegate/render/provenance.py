"""Map an object built by kustomize back to the file and line where each field was written.

kustomize is run with ``buildMetadata: [originAnnotations, transformerAnnotations]``: every
object then names the file it came from (``config.kubernetes.io/origin``) and the
kustomization files whose transformers touched it (``alpha.config.kubernetes.io/transformations``).
:class:`KustomizeLocator` finds the object's document in that file, the container inside it (or in
a patch that added it), and follows ``images:`` overrides to the entry that set the final
reference. Paths are reported relative to the source root. Built by ``fleet.py``.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubegate.errors import RenderError
from kubegate.models import Origin
from kubegate.render.result import Located
from kubegate.render.yamlfile import (
    Document,
    Named,
    PathStep,
    construct,
    deepest,
    load_documents,
    mapping_get,
    node_line,
    parse_documents,
    scalar_text,
    walk,
)

_logger = logging.getLogger(__name__)

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_PATCH_KINDS = frozenset(
    {"PatchTransformer", "PatchStrategicMergeTransformer", "PatchJson6902Transformer"}
)


#: A patch's file, its documents and the line offset of its text in that file (None: unknown).
PatchSource = tuple[str | None, list[Document], int | None]


@dataclass(frozen=True, slots=True)
class FluxPatch:
    """A patch that came from a Flux Kustomization's spec, with where it is written."""

    text: str
    file: str | None
    #: 1-based line of the patch text's first line.
    first_line: int | None
    #: The patch's own node in the Flux file, for patches written as YAML (not as text).
    node: yaml.Node | None = None


@dataclass(slots=True)
class BuildContext:
    """What every object of one kustomize build shares for provenance."""

    pristine: Path
    #: Source-relative posix path of the built directory ("" for the root).
    build_dir: str
    #: Flux ``spec.images`` entries (by name, with where each is written) merged into the top
    #: kustomization.
    flux_images: Mapping[str, tuple[Mapping[str, Any], Origin]] = field(default_factory=dict)
    flux_patches: tuple[FluxPatch, ...] = ()
    #: Directories (source-relative) whose files come from another tree (``spec.include``).
    grafts: Mapping[str, Path] = field(default_factory=dict)
    #: Source-relative path of a fetched remote resource's private copy -> the kustomization
    #: file naming it (the copy is not in the source; remote.py).
    remote_files: Mapping[str, str] = field(default_factory=dict)
    _files: dict[str, list[Document] | None] = field(default_factory=dict)
    #: configuredIn -> the patches it names (parsed once per build, not once per container).
    patch_cache: dict[str, list[PatchSource]] = field(default_factory=dict)

    def documents(self, rel: str) -> list[Document] | None:
        """Parsed documents of a source-relative file (cached), None if unreadable."""
        norm = posixpath.normpath(rel)
        if posixpath.isabs(norm) or norm == ".." or norm.startswith("../"):
            return None  # provenance reads the source root only (docs/security.md)
        # Matched, read and cached by the normalised path: "inc/x/../../y" is "y", not a file
        # of the tree grafted at "inc" (joined raw, it would resolve outside that tree).
        if norm not in self._files:
            path = self.pristine / norm
            for directory, tree in self.grafts.items():
                if norm.startswith(directory + "/"):
                    path = tree / norm[len(directory) + 1 :]
            try:
                self._files[norm] = load_documents(path, norm, values=False)
            except RenderError as exc:
                _logger.debug("provenance: cannot read %s: %s", norm, exc)
                self._files[norm] = None
        return self._files[norm]

    def relative(self, path: str) -> str | None:
        """A path relative to the build directory, as relative to the source root."""
        joined = posixpath.normpath(posixpath.join(self.build_dir, path))
        if joined.startswith("../") or joined == ".." or posixpath.isabs(joined):
            return None
        return joined


def _kind(node: yaml.Node) -> str | None:
    return scalar_text(mapping_get(node, "kind"))


def _find_document(docs: list[Document], kind: str, name: str) -> Document | None:
    candidates = [d for d in docs if _kind(d.node) == kind]
    if len(candidates) == 1:
        return candidates[0]
    best: Document | None = None
    best_len = -1
    for doc in candidates:
        original = scalar_text(walk(doc.node, ("metadata", "name"))) or ""
        if original == name:
            return doc
        # namePrefix/nameSuffix turn `web` into `p-web-s`: the longest contained name wins.
        if original and original in name and len(original) > best_len:
            best, best_len = doc, len(original)
    return best


_MATCH_TAIL = r"(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$"


def _pointer(text: str) -> list[str]:
    # RFC 6901: `~1` is `/`, `~0` is `~`.
    return [p.replace("~1", "/").replace("~0", "~") for p in text.split("/")[1:]]


def _json6902_node(
    ops: yaml.SequenceNode, path: tuple[PathStep, ...], index_of: Callable[[int], int | None]
) -> yaml.Node | None:
    """The node of an ``add``/``replace`` operation's value that writes the field at ``path``.

    The last operation that reaches the field wins, as it is applied last. ``index_of(i)``
    gives the list index of the ``i``-th path step (a ``Named`` container) in the document, so a
    pointer such as ``/spec/template/spec/containers/0/image`` finds the right container; an
    ``add`` at ``.../containers/-`` matches the item by its ``name``.
    """
    found: yaml.Node | None = None
    for op in ops.value:
        if scalar_text(mapping_get(op, "op")) not in ("add", "replace"):
            continue
        pointer = scalar_text(mapping_get(op, "path"))
        value = mapping_get(op, "value")
        if pointer is None or value is None:
            continue
        parts = _pointer(pointer)
        if len(parts) > len(path):
            continue
        node: yaml.Node | None = value
        for number, part in enumerate(parts):
            step = path[number]
            if isinstance(step, str):
                if part != step:
                    node = None
                    break
                continue
            last = number == len(parts) - 1
            if part == "-" and last and isinstance(step, Named):
                # Appended item: it is the container when its name says so.
                if scalar_text(mapping_get(value, "name")) != step.name:
                    node = None
                break
            if not part.isdigit() or int(part) != index_of(number):
                node = None
                break
        if node is None:
            continue
        target = walk(node, path[len(parts) :])
        if target is not None:
            found = target
    return found


def _image_matches(image: str, name: str) -> bool:
    # kustomize's image.IsImageMatched: the name, optionally followed by a tag and/or digest.
    return re.match("^" + re.escape(name) + _MATCH_TAIL, image) is not None


def _apply_override(image: str, entry: Mapping[str, Any]) -> str:
    name, tag = image, ""
    at = name.find("@")
    if at >= 0:
        name, tag = name[:at], name[at:]
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon:] + tag
    if entry.get("newName"):
        name = str(entry["newName"])
    if entry.get("newTag"):
        tag = f":{entry['newTag']}"
    if entry.get("digest"):
        tag = f"@{entry['digest']}"
    return name + tag


@dataclass(frozen=True, slots=True)
class KustomizeLocator:
    """Locator for one object of a kustomize build (see the module docstring)."""

    context: BuildContext
    kind: str
    name: str
    origin_path: str | None
    transformations: tuple[tuple[str, str], ...]

    def _origin_file(self) -> str | None:
        if self.origin_path is None:
            return None
        rel = self.context.relative(self.origin_path)
        return self.context.remote_files.get(rel, rel) if rel is not None else None

    def _origin_doc(self) -> tuple[str | None, Document | None]:
        rel = self._origin_file()
        if rel is None:
            return None, None
        docs = self.context.documents(rel)
        if not docs:
            return rel, None
        return rel, _find_document(docs, self.kind, self.name)

    def document(self) -> Origin:
        """The origin file and the line where the object's document starts there."""
        rel, doc = self._origin_doc()
        return Origin(rel, doc.line if doc is not None else None)

    def locate(self, path: tuple[PathStep, ...]) -> Located:
        """The field in its origin document or a patch, then any ``images:`` override."""
        rel, doc = self._origin_doc()
        found: Located | None = None
        if doc is not None:
            node = walk(doc.node, path)
            if node is not None:
                found = Located(Origin(rel, node_line(node)), scalar_text(node))
        patched = self._from_patches(path)
        if patched is not None:
            found = patched
        if found is None:
            line = node_line(deepest(doc.node, path)) if doc is not None else None
            return Located(Origin(rel, line))
        if path and path[-1] == "image" and found.declared is not None:
            override = self._image_override(found.declared)
            if override is not None:
                return Located(override, found.declared)
        return found

    def _base_sequence(self, path: tuple[PathStep, ...]) -> Callable[[int], int | None]:
        """Index of a named list item in the object's own document (JSON pointers use indices)."""
        _, doc = self._origin_doc()

        def index(end: int) -> int | None:
            step = path[end]
            if isinstance(step, int):
                return step
            if doc is None or not isinstance(step, Named):
                return None
            seq = walk(doc.node, path[:end])
            if not isinstance(seq, yaml.SequenceNode):
                return None
            for number, item in enumerate(seq.value):
                if scalar_text(mapping_get(item, "name")) == step.name:
                    return number
            return None

        return index

    def _kustomization_docs(self, configured_in: str) -> tuple[str, Document] | None:
        rel = self.context.relative(configured_in)
        if rel is None:
            return None
        docs = self.context.documents(rel)
        if not docs or not isinstance(docs[0].node, yaml.MappingNode):
            return None
        return rel, docs[0]

    def _from_patches(self, path: tuple[PathStep, ...]) -> Located | None:
        seen: set[str] = set()
        found: Located | None = None
        for configured_in, kind in self.transformations:
            if kind not in _PATCH_KINDS or configured_in in seen:
                continue
            seen.add(configured_in)
            for file, docs, offset in self._patch_sources(configured_in):
                for patch in docs:
                    if isinstance(patch.node, yaml.SequenceNode):
                        # A JSON 6902 patch: a list of operations.
                        node = _json6902_node(patch.node, path, self._base_sequence(path))
                        if node is not None:
                            line = node_line(node) + offset if offset is not None else None
                            found = Located(Origin(file, line), scalar_text(node))
                        continue
                    if not isinstance(patch.node, yaml.MappingNode) or _kind(patch.node) not in (
                        None,
                        self.kind,
                    ):
                        continue
                    node = walk(patch.node, path)
                    if node is not None:
                        line = node_line(node) + offset if offset is not None else None
                        found = Located(Origin(file, line), scalar_text(node))
        return found

    def _patch_sources(self, configured_in: str) -> list[PatchSource]:
        cache = self.context.patch_cache
        if configured_in not in cache:
            cache[configured_in] = self._load_patch_sources(configured_in)
        return cache[configured_in]

    def _load_patch_sources(self, configured_in: str) -> list[PatchSource]:
        sources: list[PatchSource] = []
        loaded = self._kustomization_docs(configured_in)
        if loaded is not None:
            rel, kdoc = loaded
            base = posixpath.dirname(rel)
            for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
                entries = mapping_get(kdoc.node, key)
                if not isinstance(entries, yaml.SequenceNode):
                    continue
                for entry in entries.value:
                    sources.extend(self._patch_entry(rel, base, entry))
        rel_top = self.context.relative(configured_in)
        if rel_top is not None and posixpath.dirname(rel_top) == self.context.build_dir:
            for patch in self.context.flux_patches:
                if patch.node is not None:
                    sources.append((patch.file, [Document(patch.node, None)], 0))
                    continue
                try:
                    docs = parse_documents(patch.text, patch.file or "patch")
                except RenderError:
                    continue
                offset = patch.first_line - 1 if patch.first_line is not None else None
                sources.append((patch.file, docs, offset))
        return sources

    def _patch_entry(self, rel: str, base: str, entry: yaml.Node) -> list[PatchSource]:
        path_node = mapping_get(entry, "path") if isinstance(entry, yaml.MappingNode) else entry
        inline = mapping_get(entry, "patch") if isinstance(entry, yaml.MappingNode) else None
        text = scalar_text(path_node)
        if text is not None and "\n" not in text and not text.lstrip().startswith("{"):
            file = posixpath.normpath(posixpath.join(base, text))
            docs = self.context.documents(file)
            return [(file, docs, 0)] if docs else []
        body = inline if inline is not None else path_node
        patch_text = scalar_text(body)
        if patch_text is None or body is None:
            return []
        try:
            docs = parse_documents(patch_text, rel)
        except RenderError:
            return []
        # A block scalar's text starts on the line after its `|` indicator.
        block = getattr(body, "style", None) in ("|", ">")
        return [(rel, docs, node_line(body) - 1 + (1 if block else 0))]

    def _image_override(self, declared: str) -> Origin | None:
        current = declared
        origin: Origin | None = None
        seen: set[str] = set()
        for configured_in, kind in self.transformations:
            if kind != "ImageTagTransformer" or configured_in in seen:
                continue
            seen.add(configured_in)
            for entry, entry_origin in self._image_entries(configured_in):
                name = entry.get("name")
                if isinstance(name, str) and _image_matches(current, name):
                    current = _apply_override(current, entry)
                    origin = entry_origin
        return origin

    def _image_entries(self, configured_in: str) -> list[tuple[Mapping[str, Any], Origin]]:
        entries: dict[str, tuple[Mapping[str, Any], Origin]] = {}
        rel = self.context.relative(configured_in)
        loaded = self._kustomization_docs(configured_in)
        if loaded is not None:
            rel, kdoc = loaded
            images = mapping_get(kdoc.node, "images")
            try:
                values = construct(images, rel) if images is not None else None
            except RenderError:
                values = None
            if isinstance(images, yaml.SequenceNode) and isinstance(values, list):
                for node, value in zip(images.value, values, strict=False):
                    if isinstance(value, dict):
                        entries[str(value.get("name"))] = (value, Origin(rel, node_line(node)))
        if rel is not None and posixpath.dirname(rel) == self.context.build_dir:
            # Flux merges its `images` by name into this kustomization (FLUX.md step 3).
            entries.update(self.context.flux_images)
        return list(entries.values())
