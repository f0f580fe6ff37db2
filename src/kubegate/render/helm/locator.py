"""Provenance of objects a chart renders: the HelmRelease's file, and the line that set an image.

An object rendered by ``helm template`` has no file of its own in the revision. Its document is
the HelmRelease's; an ``image`` field is located, in order, at the post-renderer ``images``
entry that changed it (or the post-renderer patch that writes it), at the ``spec.values``
scalar that set it (the whole reference, else its repository, else its tag under a key naming
a tag or version), else at the line naming the chart (``spec.chart.spec.chart`` /
``spec.chartRef.name``). The HelmRelease's own locator answers for those paths, so a value
written by a kustomize patch of the HelmRelease points at the patch. Built by ``stage.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubegate.models import Origin
from kubegate.render.result import ImageLocator, Located
from kubegate.render.yamlfile import Named, PathStep


def get_path(value: Any, path: Sequence[PathStep]) -> Any:
    """The value at ``path`` (``Named`` steps match list items by ``name``), None if absent."""
    for step in path:
        if isinstance(step, Named):
            if not isinstance(value, list):
                return None
            value = next(
                (i for i in value if isinstance(i, dict) and i.get("name") == step.name), None
            )
        elif isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(step)
    return value


def image_name(image: str) -> str:
    """The reference without its tag and digest (what kustomize ``images[].name`` matches)."""
    name = image.partition("@")[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def image_tag(image: str) -> str | None:
    """The tag of a reference, if it has one."""
    name = image.partition("@")[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[colon + 1 :] if colon > slash else None


def _scalars(
    value: Any, path: tuple[PathStep, ...] = ()
) -> Iterator[tuple[tuple[PathStep, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _scalars(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _scalars(item, (*path, index))
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield path, str(value)


def _tag_key(path: tuple[PathStep, ...]) -> bool:
    last = str(path[-1]).lower() if path else ""
    return "tag" in last or "version" in last


def find_value(
    values: Mapping[str, Any] | None, images: Sequence[str]
) -> tuple[PathStep, ...] | None:
    """Path in ``values`` of the scalar that most likely set one of ``images``."""
    if not values:
        return None
    scalars = list(_scalars(values))
    for image in images:
        for path, text in scalars:
            if text == image:
                return path
    for image in images:
        name = image_name(image)
        for path, text in scalars:
            if len(text) > 1 and (text == name or name.endswith("/" + text)):
                return path
    for image in images:
        tag = image_tag(image)
        for path, text in scalars:
            if tag and text == tag and _tag_key(path):
                return path
    return None


@dataclass(frozen=True, slots=True)
class HelmLocator:
    """Locator of one object rendered from a HelmRelease's chart."""

    #: The HelmRelease's own locator (its file, its kustomize patches).
    release: ImageLocator
    #: The HelmRelease's ``spec.values`` as rendered.
    values: Mapping[str, Any] | None
    #: ``chart`` or ``chartRef``.
    chart_key: str
    #: The object as rendered (after post-renderers) and as helm rendered it (before them).
    value: Mapping[str, Any]
    before: Mapping[str, Any] | None
    #: (index in postRenderers, index in its kustomize images, the entry).
    post_images: tuple[tuple[int, int, Mapping[str, Any]], ...] = ()
    #: (index in postRenderers, key of the patch list, index in it, the patch as text).
    post_patches: tuple[tuple[int, str, int, str], ...] = ()

    def document(self) -> Origin:
        """The HelmRelease's document."""
        return self.release.document()

    def locate(self, path: tuple[PathStep, ...]) -> Located:
        """The post-renderer entry or the values key that set the field, else the chart line."""
        current = get_path(self.value, path)
        before = get_path(self.before, path) if self.before is not None else None
        if isinstance(current, str) and isinstance(before, str) and current != before:
            origin = self._post_image(before)
            if origin is not None:
                return Located(origin, before)
        if isinstance(current, str) and current != before:
            # Written by a post-renderer patch (a container it added, an image it replaced).
            for renderer, key, index, text in reversed(self.post_patches):
                if current in text:
                    patch: tuple[PathStep, ...] = (
                        "spec",
                        "postRenderers",
                        renderer,
                        "kustomize",
                        key,
                        index,
                    )
                    return Located(self.release.locate(patch).origin, current)
        wanted = [v for v in (before, current) if isinstance(v, str) and v]
        # "declared": the reference as the chart rendered it, before any post-renderer.
        declared = wanted[0] if wanted else None
        found = find_value(self.values, wanted)
        if found is not None:
            located = self.release.locate(("spec", "values", *found))
            return Located(located.origin, declared)
        # The line naming the chart: spec.chart.spec.chart, or spec.chartRef.name.
        step = ("chart", "spec", "chart") if self.chart_key == "chart" else ("chartRef", "name")
        return Located(self.release.locate(("spec", *step)).origin, declared)

    def _post_image(self, before: str) -> Origin | None:
        name = image_name(before)
        found = None
        # kustomize applies every matching entry in turn; the last one that matched decides.
        for renderer, index, entry in self.post_images:
            if str(entry.get("name", "")) == name:
                found = (renderer, index)
                newer = entry.get("newName")
                if isinstance(newer, str) and newer:
                    name = newer
        if found is None:
            return None
        renderer, index = found
        step = ("spec", "postRenderers", renderer, "kustomize", "images", index)
        return self.release.locate(step).origin
