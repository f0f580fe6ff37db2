"""JSON pieces that describe a revision: its source, image uses, not-seen objects, errors.

Shared by ``kubegate images --format json`` (:func:`images_document`, docs/images.md) and the
``kubegate scan`` JSON report (``report.gate``), so a use reads the same in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from kubegate.models import ChartInfo, ImageUse, NotSeen, Problem, RemoteBase, SourceInfo

IMAGES_SCHEMA_VERSION: Final = 1


def source_object(info: SourceInfo) -> dict[str, Any]:
    """Where the revision came from."""
    return {"kind": info.kind, "location": info.location, "revision": info.revision}


def chart_object(chart: ChartInfo | None) -> dict[str, Any] | None:
    """The chart an image use was rendered from (docs/images.md ``chart``), None if none."""
    if chart is None:
        return None
    return {
        "name": chart.name,
        "version": chart.version,
        "digest": chart.digest,
        "source": chart.source,
    }


def use_object(use: ImageUse) -> dict[str, Any]:
    """One image use with its provenance (the shape of ``kubegate images`` JSON uses)."""
    return {
        "file": use.origin.file,
        "line": use.origin.line,
        "kustomization": use.kustomization,
        "cluster": use.cluster,
        "kind": use.kind,
        "namespace": use.namespace,
        "name": use.name,
        "container": use.container,
        "containerType": use.container_type,
        "declared": use.declared,
        "helmRelease": use.helm_release,
        "chart": chart_object(use.chart),
    }


def remote_base_object(item: RemoteBase) -> dict[str, Any]:
    """One remote resource fetched with ``--allow-remote-bases`` (docs/scan.md ``remoteBases``)."""
    return {"url": item.url, "digest": item.digest, "file": item.origin.file, "field": item.field}


def not_seen_object(item: NotSeen) -> dict[str, Any]:
    """One not-seen object (the shape of ``kubegate images`` JSON ``notSeen``)."""
    return {
        "kind": item.kind,
        "namespace": item.namespace,
        "name": item.name,
        "file": item.origin.file,
        "line": item.origin.line,
        "reason": item.reason,
        "cluster": item.cluster,
    }


def problem_object(problem: Problem) -> dict[str, Any]:
    """One render error (the shape of ``kubegate images`` JSON ``errors``)."""
    return {
        "message": problem.message,
        "file": problem.origin.file,
        "line": problem.origin.line,
        "cluster": problem.cluster,
    }


def _use_key(use: ImageUse) -> tuple[str, str, int, str, str, str, str]:
    return (
        use.cluster or "",
        use.origin.file or "",
        use.origin.line or 0,
        use.kind,
        use.namespace or "",
        use.name,
        use.container,
    )


def grouped(uses: Sequence[ImageUse]) -> list[tuple[str, list[ImageUse]]]:
    """Uses grouped by the deployed reference, both sorted for stable output."""
    groups: dict[str, list[ImageUse]] = {}
    for use in uses:
        groups.setdefault(str(use.ref), []).append(use)
    return [(image, sorted(groups[image], key=_use_key)) for image in sorted(groups)]


def images_document(
    info: SourceInfo,
    uses: Sequence[ImageUse],
    not_seen: Sequence[NotSeen],
    problems: Sequence[Problem],
    notes: Sequence[NotSeen] = (),
) -> dict[str, Any]:
    """The ``kubegate images --format json`` document (schema in docs/images.md)."""
    return {
        "schemaVersion": IMAGES_SCHEMA_VERSION,
        "source": source_object(info),
        "images": [
            {"image": image, "uses": [use_object(use) for use in group]}
            for image, group in grouped(uses)
        ],
        "notSeen": [not_seen_object(item) for item in not_seen],
        "notes": [not_seen_object(item) for item in notes],
        "errors": [problem_object(p) for p in problems],
    }
