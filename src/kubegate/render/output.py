"""kustomize output -> objects: split the stream, strip provenance annotations into locators.

Documents are split first and parsed one by one: postBuild substitution runs on each object's
YAML text as kustomize-controller does (``substitute.py``), so the fleet walker parses each
document once, after substitution (PyYAML's object construction is the costly part). The
``config.kubernetes.io/origin`` and ``alpha.config.kubernetes.io/transformations`` annotations
kubegate asked for are removed from every object before anything else sees it. Called by
``fleet.py``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kubegate import yamlload
from kubegate.render.provenance import (
    ORIGIN_ANNOTATION,
    TRANSFORMATIONS_ANNOTATION,
    BuildContext,
    KustomizeLocator,
)
from kubegate.render.result import RenderedObject
from kubegate.render.yamlfile import load_stream

_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


def _origin_path(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip().strip("'\"")
    # A remote base (`repo:` set) has no file in the scanned source.
    if "repo" in fields:
        return None
    return fields.get("path")


def _transformations(text: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(text, str):
        return ()
    try:
        steps = yamlload.safe_load(text)
    except yaml.YAMLError:
        return ()
    return tuple(
        (str(step.get("configuredIn", "")), str(step["configuredBy"].get("kind")))
        for step in (steps if isinstance(steps, list) else [])
        if isinstance(step, dict) and isinstance(step.get("configuredBy"), dict)
    )


def strip_provenance(value: dict[str, Any]) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """Remove kustomize's provenance annotations from ``value``; return what they said."""
    metadata = value.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("annotations"), dict):
        return None, ()
    annotations = metadata["annotations"]
    origin = _origin_path(annotations.pop(ORIGIN_ANNOTATION, None))
    steps = _transformations(annotations.pop(TRANSFORMATIONS_ANNOTATION, None))
    if not annotations:
        del metadata["annotations"]
    return origin, steps


def split_documents(output: str) -> list[str]:
    """The YAML text of each document of kustomize's output stream."""
    return [text for text in _SEPARATOR.split(output) if text.strip()]


def to_object(text: str, context: BuildContext, kustomization: str | None) -> RenderedObject | None:
    """Parse one output document; strip kustomize's annotations into a locator."""
    docs = load_stream(text, context.build_dir or ".")
    if len(docs) != 1 or not isinstance(docs[0], dict):
        return None
    value: dict[str, Any] = docs[0]
    origin_path, transformations = strip_provenance(value)
    metadata = value.get("metadata")
    name = str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
    locator = KustomizeLocator(
        context=context,
        kind=str(value.get("kind", "")),
        name=name,
        origin_path=origin_path,
        transformations=transformations,
    )
    return RenderedObject(value, locator, kustomization)


def objects_from_build(
    output: str, context: BuildContext, kustomization: str | None
) -> list[RenderedObject]:
    """Every object of a kustomize build, each with a locator for its provenance."""
    objects = (to_object(text, context, kustomization) for text in split_documents(output))
    return [obj for obj in objects if obj is not None]
