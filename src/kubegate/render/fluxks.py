"""Flux ``Kustomization`` objects and what kustomize-controller does to a path before building.

:func:`parse_kustomization` reads a ``kustomize.toolkit.fluxcd.io`` v1/v1beta2/v1beta1 object;
:func:`prepare_build` reproduces FLUX.md steps 2-3 in a private farm: generate a kustomization
when the path has none (every ``*.yaml``/``*.yml``, sub-directories with their own kustomization
listed as directories, non-Kubernetes YAML fails the build), then overlay ``targetNamespace``,
``namePrefix``, ``nameSuffix``, ``patches`` (+ the deprecated ``patchesStrategicMerge`` and
``patchesJson6902``), ``components`` and ``images`` merged by name. It also turns on kustomize's
origin/transformer annotations for provenance. Called by the fleet walker.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubegate.errors import RenderError
from kubegate.models import Origin
from kubegate.render.confine import BuildReads, RemoteRef, check_build, trace_build
from kubegate.render.provenance import KUSTOMIZATION_FILES, FluxPatch
from kubegate.render.workspace import replace_file
from kubegate.render.yamlfile import dump, load_documents, mapping_get, node_line

_logger = logging.getLogger(__name__)

FLUX_GROUP = "kustomize.toolkit.fluxcd.io"
FLUX_VERSIONS = frozenset({"v1", "v1beta2", "v1beta1"})
#: Sources kubegate renders from the scanned tree; other kinds cannot be seen from it.
SCANNED_SOURCE_KINDS = frozenset({"GitRepository"})
_BUILD_METADATA = ("originAnnotations", "transformerAnnotations")


def is_flux_kustomization(value: Any) -> bool:
    """Whether ``value`` is a Flux Kustomization object (any served version)."""
    if not isinstance(value, dict) or value.get("kind") != "Kustomization":
        return False
    group, _, version = str(value.get("apiVersion", "")).partition("/")
    return group == FLUX_GROUP and version in FLUX_VERSIONS


@dataclass(frozen=True, slots=True)
class FluxKustomization:
    """One Flux Kustomization as kubegate needs it."""

    namespace: str
    name: str
    spec: dict[str, Any]
    origin: Origin
    #: Its document node when known (lines of ``images``/``patches`` entries).
    node: yaml.Node | None = None
    #: Where each ``spec.images`` entry was written, when not in ``node`` (a parent's patch).
    image_origins: tuple[Origin, ...] = ()

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        """``spec.path`` as written (empty = source root)."""
        return str(self.spec.get("path") or "")

    @property
    def source_kind(self) -> str:
        """``spec.sourceRef.kind`` (GitRepository when unset)."""
        ref = self.spec.get("sourceRef")
        kind = ref.get("kind") if isinstance(ref, dict) else None
        return str(kind or "GitRepository")

    @property
    def source_name(self) -> str:
        """``spec.sourceRef.name``."""
        ref = self.spec.get("sourceRef")
        return str(ref.get("name") or "") if isinstance(ref, dict) else ""

    @property
    def post_build(self) -> dict[str, Any] | None:
        """``spec.postBuild`` when present."""
        value = self.spec.get("postBuild")
        return value if isinstance(value, dict) else None


def parse_kustomization(
    value: dict[str, Any], origin: Origin, node: yaml.Node | None, default_namespace: str
) -> FluxKustomization:
    """Build a :class:`FluxKustomization` from an object already known to be one."""
    raw = value.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    spec = value.get("spec")
    return FluxKustomization(
        namespace=str(metadata.get("namespace") or default_namespace),
        name=str(metadata.get("name") or ""),
        spec=spec if isinstance(spec, dict) else {},
        origin=origin,
        node=node,
    )


def resolve_path(root: Path, spec_path: str, where: str) -> tuple[Path, str]:
    """``spec.path`` inside ``root`` (Flux joins it to the artifact root); must exist."""
    rel = posixpath.normpath(spec_path.strip().lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise RenderError(f"spec.path {spec_path!r} leaves the source root", where=where)
    rel = "" if rel == "." else rel
    target = root / rel if rel else root
    if not target.is_dir():
        raise RenderError(f"spec.path {spec_path!r} does not exist in the source", where=where)
    return target, rel


def kustomization_file(directory: Path) -> Path | None:
    """The kustomization file kustomize would read in ``directory``."""
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def generate_resources(directory: Path, root: Path) -> list[str]:
    """FLUX.md step 2: the resources of a generated kustomization for ``directory``."""
    resources: list[str] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        here = Path(dirpath)
        keep = []
        for name in dirnames:
            sub = here / name
            if kustomization_file(sub) is not None:
                resources.append("./" + sub.relative_to(directory).as_posix())
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = here / name
            where = path.relative_to(root).as_posix()
            for doc in load_documents(path, where):
                value = doc.value
                if not (isinstance(value, dict) and value.get("apiVersion") and value.get("kind")):
                    raise RenderError(
                        "failed to decode Kubernetes YAML: not a Kubernetes object "
                        "(no apiVersion/kind); kustomize-controller fails this build",
                        where=f"{where}:{doc.line}",
                    )
            resources.append("./" + path.relative_to(directory).as_posix())
    return resources


@dataclass(frozen=True, slots=True)
class PreparedBuild:
    """A farm directory ready for ``kustomize build`` plus the Flux overrides it holds."""

    directory: Path
    rel: str
    flux_images: dict[str, tuple[dict[str, Any], Origin]]
    flux_patches: tuple[FluxPatch, ...]
    #: Remote resources/components the build names (confine.py); refused unless allowed.
    remote: tuple[RemoteRef, ...] = ()
    #: What the build can read (confine.py), for the render cache's key; None: not traced.
    reads: BuildReads | None = None


def _entry_lines(ks: FluxKustomization, field: str) -> list[yaml.Node | None]:
    if ks.node is None:
        return []
    seq = mapping_get(mapping_get(ks.node, "spec") or yaml.MappingNode("", []), field)
    return list(seq.value) if isinstance(seq, yaml.SequenceNode) else []


def ks_where(ks: FluxKustomization) -> str:
    """How errors name a Flux Kustomization: its file:line, else namespace/name."""
    return ks.origin.where or ks.key


def prepare_build(source: Path, farm: Path, rel: str, ks: FluxKustomization) -> PreparedBuild:
    """Write the kustomization kustomize-controller would build at ``rel`` into ``farm``.

    ``rel`` comes from :func:`resolve_path` on ``source``; a generated kustomization lists the
    files of the source directory (the farm mirrors it by links).
    """
    where = ks_where(ks)
    directory = farm / rel if rel else farm
    existing = kustomization_file(directory)
    kus_where = (Path(rel) / (existing.name if existing else "kustomization.yaml")).as_posix()
    if existing is not None:
        docs = load_documents(existing, kus_where)
        kus = docs[0].value if docs and isinstance(docs[0].value, dict) else {}
        target = existing
    else:
        kus = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": generate_resources(source / rel if rel else source, source),
        }
        target = directory / "kustomization.yaml"
    spec = ks.spec
    if spec.get("targetNamespace"):
        kus["namespace"] = str(spec["targetNamespace"])
    for field in ("namePrefix", "nameSuffix"):
        if spec.get(field):
            kus[field] = str(spec[field])

    flux_patches: list[FluxPatch] = []
    patch_nodes = _entry_lines(ks, "patches")
    for index, patch in enumerate(spec.get("patches") or []):
        if not isinstance(patch, dict):
            raise RenderError(f"spec.patches[{index}] is not a mapping", where=where)
        entry: dict[str, Any] = {"patch": str(patch.get("patch", ""))}
        if isinstance(patch.get("target"), dict):
            entry["target"] = patch["target"]
        kus.setdefault("patches", []).append(entry)
        node = patch_nodes[index] if index < len(patch_nodes) else None
        text_node = mapping_get(node, "patch") if node is not None else None
        first = None
        if text_node is not None:
            block = getattr(text_node, "style", None) in ("|", ">")
            first = node_line(text_node) + (1 if block else 0)
        flux_patches.append(FluxPatch(entry["patch"], ks.origin.file, first))
    smp_nodes = _entry_lines(ks, "patchesStrategicMerge")
    for index, patch in enumerate(spec.get("patchesStrategicMerge") or []):
        text = dump(patch)
        kus.setdefault("patchesStrategicMerge", []).append(text)
        node = smp_nodes[index] if index < len(smp_nodes) else None
        flux_patches.append(FluxPatch(text, ks.origin.file, None, node))
    for patch in spec.get("patchesJson6902") or []:
        if isinstance(patch, dict):
            kus.setdefault("patchesJson6902", []).append(
                {"patch": json.dumps(patch.get("patch")), "target": patch.get("target")}
            )
    for component in spec.get("components") or []:
        kus.setdefault("components", []).append(str(component))

    flux_images: dict[str, tuple[dict[str, Any], Origin]] = {}
    image_nodes = _entry_lines(ks, "images")
    images = [i for i in kus.get("images") or [] if isinstance(i, dict)]
    for index, image in enumerate(spec.get("images") or []):
        if not isinstance(image, dict) or not image.get("name"):
            raise RenderError(f"spec.images[{index}] has no name", where=where)
        new = {k: str(image[k]) for k in ("name", "newName", "newTag", "digest") if image.get(k)}
        images = [i for i in images if i.get("name") != new["name"]]
        images.append(new)
        node = image_nodes[index] if index < len(image_nodes) else None
        line = node_line(node) if node is not None else ks.origin.line
        origin = Origin(ks.origin.file, line)
        if index < len(ks.image_origins):
            origin = ks.image_origins[index]
        flux_images[new["name"]] = (new, origin)
    if images:
        kus["images"] = images

    _add_build_metadata(kus)
    # Before kustomize reads anything: every path the build names stays in the source root.
    remote, reads = trace_build(source, source / rel if rel else source, kus, kus_where)
    replace_file(target, dump(kus))
    return PreparedBuild(directory, rel, flux_images, tuple(flux_patches), tuple(remote), reads)


def _add_build_metadata(kus: dict[str, Any]) -> None:
    # Origin and transformer annotations are how provenance follows kustomize (provenance.py).
    raw = kus.get("buildMetadata")
    current = [str(m) for m in raw] if isinstance(raw, list) else []
    kus["buildMetadata"] = [*current, *(m for m in _BUILD_METADATA if m not in current)]


def prepare_plain_build(source: Path, farm: Path, rel: str) -> PreparedBuild:
    """A directory with its own kustomization, built outside Flux: only provenance is added."""
    directory = farm / rel if rel else farm
    existing = kustomization_file(directory)
    if existing is None:
        raise RenderError("no kustomization file", where=rel or ".")
    kus_where = (Path(rel) / existing.name).as_posix()
    docs = load_documents(existing, kus_where)
    kus = docs[0].value if docs and isinstance(docs[0].value, dict) else {}
    _add_build_metadata(kus)
    remote = check_build(source, source / rel if rel else source, kus, kus_where)
    replace_file(existing, dump(kus))
    return PreparedBuild(directory, rel, {}, (), tuple(remote))
