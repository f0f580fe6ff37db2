"""Find every container image a set of rendered objects would run, with its provenance.

Walks each object's pod spec (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob, PodTemplate, Argo Rollout, Knative Service, plus extra
``KIND=DOTTED.PATH`` entries for CRDs) over ``containers``, ``initContainers`` and
``ephemeralContainers``, parses each reference with the Docker grammar
(:func:`kubegate.images.reference.parse_reference`) and asks the object's locator where the
``image:`` field was written. Invalid references (including ones still holding ``${...}``)
become problems with their provenance. Called by ``kubegate.cli.images`` and ``kubegate.scan``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubegate.errors import ImageReferenceError, UsageError
from kubegate.images.reference import parse_reference
from kubegate.models import ImageUse, Problem
from kubegate.render import Named, PathStep, RenderedObject

_logger = logging.getLogger(__name__)

ContainerType = Literal["containers", "initContainers", "ephemeralContainers", "other"]
CONTAINER_FIELDS: tuple[ContainerType, ...] = (
    "containers",
    "initContainers",
    "ephemeralContainers",
)

_TEMPLATE = ("spec", "template", "spec")
#: (API group or None for any, kind) -> path of the pod spec.
POD_SPEC_PATHS: dict[tuple[str | None, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("apps", "Deployment"): _TEMPLATE,
    ("apps", "StatefulSet"): _TEMPLATE,
    ("apps", "DaemonSet"): _TEMPLATE,
    ("apps", "ReplicaSet"): _TEMPLATE,
    ("", "ReplicationController"): _TEMPLATE,
    ("batch", "Job"): _TEMPLATE,
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
    ("", "PodTemplate"): ("template", "spec"),
    ("argoproj.io", "Rollout"): _TEMPLATE,
    ("serving.knative.dev", "Service"): _TEMPLATE,
}


@dataclass(frozen=True, slots=True)
class ImagePath:
    """A user-given extra place to look: objects of ``kind`` at ``path``."""

    kind: str
    path: tuple[str, ...]


def parse_image_path(text: str) -> ImagePath:
    """Parse ``KIND=DOTTED.PATH`` (``--image-path``); UsageError when malformed."""
    kind, sep, dotted = text.partition("=")
    parts = tuple(dotted.split("."))
    if not sep or not kind.strip() or not dotted or any(not p for p in parts):
        raise UsageError(f"--image-path {text!r}: expected KIND=DOTTED.PATH (e.g. App=spec.pod)")
    return ImagePath(kind.strip(), parts)


@dataclass(frozen=True, slots=True)
class ImageScan:
    """Every image use found, and every problem (with provenance)."""

    uses: tuple[ImageUse, ...]
    problems: tuple[Problem, ...]


def _group(obj: RenderedObject) -> str:
    api_version = str(obj.value.get("apiVersion", ""))
    return api_version.partition("/")[0] if "/" in api_version else ""


def _get(value: Any, path: Sequence[str]) -> Any:
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


class _Collector:
    def __init__(self) -> None:
        self.uses: list[ImageUse] = []
        self.problems: list[Problem] = []

    def pod_spec(self, obj: RenderedObject, spec: Any, path: tuple[PathStep, ...]) -> None:
        if not isinstance(spec, dict):
            return
        for field in CONTAINER_FIELDS:
            containers = spec.get(field)
            if not isinstance(containers, list):
                continue
            for index, container in enumerate(containers):
                if not isinstance(container, dict):
                    continue
                name = container.get("name")
                step: PathStep = Named(str(name)) if name else index
                self.image(obj, container, (*path, field, step), str(name or index), field)

    def image(
        self,
        obj: RenderedObject,
        container: dict[str, Any],
        path: tuple[PathStep, ...],
        name: str,
        container_type: ContainerType,
    ) -> None:
        located = obj.locator.locate((*path, "image"))
        label = f"{obj.kind} {_ns_name(obj)} container {name}"
        image = container.get("image")
        if not isinstance(image, str) or not image:
            self.problems.append(Problem(f"{label} has no image", located.origin, obj.cluster))
            return
        try:
            ref = parse_reference(image)
        except ImageReferenceError as exc:
            self.problems.append(
                Problem(
                    f"invalid image reference {image!r} in {label}: {exc.message}",
                    located.origin,
                    obj.cluster,
                )
            )
            return
        self.uses.append(
            ImageUse(
                ref=ref,
                origin=located.origin,
                kind=obj.kind,
                namespace=obj.namespace,
                name=obj.name,
                container=name,
                container_type=container_type,
                kustomization=obj.kustomization,
                declared=located.declared,
                cluster=obj.cluster,
                helm_release=obj.helm.release if obj.helm is not None else None,
                chart=obj.helm.chart if obj.helm is not None else None,
            )
        )

    def custom(self, obj: RenderedObject, value: Any, path: tuple[PathStep, ...]) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.custom(obj, item, (*path, index))
        elif isinstance(value, str):
            label = ".".join(str(p) for p in path)
            self.image(obj, {"image": value}, path[:-1], label, "other")
        elif isinstance(value, dict):
            if any(isinstance(value.get(f), list) for f in CONTAINER_FIELDS):
                self.pod_spec(obj, value, path)
            elif "image" in value:
                self.image(obj, value, path, str(value.get("name") or path[-1]), "other")


def _ns_name(obj: RenderedObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


def find_images(
    objects: Iterable[RenderedObject], extra_paths: Sequence[ImagePath] = ()
) -> ImageScan:
    """Every image use of ``objects`` (in object order) and the problems found on the way."""
    collector = _Collector()
    for obj in objects:
        path = POD_SPEC_PATHS.get((_group(obj), obj.kind))
        if path is not None:
            collector.pod_spec(obj, _get(obj.value, path), path)
        for extra in extra_paths:
            if extra.kind == obj.kind:
                collector.custom(obj, _get(obj.value, extra.path), extra.path)
    return ImageScan(tuple(collector.uses), tuple(collector.problems))
