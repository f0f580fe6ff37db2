"""Charts on disk: private copies of chart directories, safe extraction of chart archives.

A chart is untrusted input (the judged revision, or an archive a repository served). Whatever
``helm template`` reads is first placed in a private directory: a chart directory of a source
tree is copied (a symlink must resolve inside that tree and is copied as what it names), a
chart archive is extracted with :func:`kubegate.source.artifact.extract` (no ``..`` or absolute
entries, no devices, bounded bytes and entries: :data:`CHART_LIMITS`, the 100 MiB helm itself
allows a decompressed chart). Also reads ``Chart.yaml`` (name, version, dependencies) and looks
for templates that call ``lookup``. Called by ``kubegate.render.helm.stage``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubegate import yamlload
from kubegate.errors import RenderError, SourceError
from kubegate.source.artifact import extract
from kubegate.source.limits import SourceLimits

_logger = logging.getLogger(__name__)

#: Helm's own ceiling on a decompressed chart (``MaxDecompressedChartSize``, 100 MiB); entries
#: far beyond any real chart's.
CHART_LIMITS = SourceLimits(max_extracted_bytes=100 * 1024 * 1024, max_entries=20_000)
#: ``Chart.yaml`` and ``requirements.yaml`` larger than this are refused.
_MAX_META_BYTES = 1024 * 1024
#: A template action that calls ``lookup`` (``{{ lookup ...``, ``(lookup ...``, ``| lookup``).
_LOOKUP = re.compile(rb"\{\{[^}]*\blookup\b")


@dataclass(frozen=True, slots=True)
class ChartMeta:
    """What ``Chart.yaml`` says."""

    name: str
    version: str
    #: ``dependencies`` (apiVersion v2) or ``requirements.yaml`` ones (v1), as written.
    dependencies: tuple[dict[str, Any], ...]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def copy_chart(tree: Path, rel: str, dest: Path, where: str | None) -> Path:
    """Copy the chart directory ``rel`` of ``tree`` to ``dest``; RenderError when unusable."""
    norm = posixpath.normpath(rel.strip().lstrip("/") or ".")
    if norm == ".." or norm.startswith("../"):
        raise RenderError(f"chart path {rel!r} leaves its source", where=where)
    root = tree.resolve()
    source = (root / norm).resolve()
    if not _inside(source, root):
        raise RenderError(f"chart path {rel!r} leaves its source (a symlink)", where=where)
    if not (source / "Chart.yaml").is_file():
        raise RenderError(f"no chart at {norm} (no Chart.yaml there)", where=where)
    _copy_tree(source, dest, root, where, [0], (source,))
    return dest


#: Directory depth of a chart copy (far beyond real charts; keeps recursion bounded).
_MAX_DEPTH = 64


def _copy_tree(
    source: Path,
    dest: Path,
    root: Path,
    where: str | None,
    count: list[int],
    parents: tuple[Path, ...],
) -> None:
    if len(parents) > _MAX_DEPTH:
        raise RenderError(f"chart directories nest deeper than {_MAX_DEPTH}", where=where)
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        count[0] += 1
        if count[0] > CHART_LIMITS.max_entries:
            raise RenderError(f"chart has more than {CHART_LIMITS.max_entries} files", where=where)
        path = Path(entry.path)
        if entry.is_symlink():
            target = path.resolve()
            if not _inside(target, root) or not target.exists():
                raise RenderError(
                    f"chart file {path.relative_to(root)} is a link leaving its source",
                    where=where,
                )
            path = target
        if path.is_dir():
            resolved = path.resolve()
            if resolved in parents:
                raise RenderError(
                    f"chart link {Path(entry.path).relative_to(root)} loops", where=where
                )
            _copy_tree(path, dest / entry.name, root, where, count, (*parents, resolved))
        elif path.is_file():
            shutil.copyfile(path, dest / entry.name)


def extract_chart(archive: Path, dest: Path, label: str) -> Path:
    """Extract the chart archive into ``dest``; the chart's directory (its single top entry)."""
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        extract(archive, dest, limits=CHART_LIMITS, label=label)
    except SourceError as exc:
        raise RenderError(f"chart archive refused: {exc.message}", where=exc.where) from exc
    tops = [p for p in dest.iterdir() if p.is_dir() and (p / "Chart.yaml").is_file()]
    if len(tops) != 1:
        raise RenderError("chart archive holds no single chart directory", where=label)
    return tops[0]


def unpack_vendored(chart: Path, label: str, depth: int = 0) -> None:
    """Extract every ``charts/*.tgz`` subchart in place, under the same rules, recursively.

    helm would read those archives itself; extracted here they pass kubegate's limits (a
    subchart archive is as untrusted as the chart) and their templates are searched for
    ``lookup`` like any other.
    """
    charts = chart / "charts"
    if not charts.is_dir():
        return
    if depth > 8:
        raise RenderError("subcharts nest deeper than 8 archives", where=label)
    for archive in sorted(charts.glob("*.tgz")):
        if archive.is_symlink() or not archive.is_file():
            continue
        target = charts / f".unpacked-{archive.name}"
        sub = extract_chart(archive, target, f"{label}: subchart {archive.name}")
        archive.unlink()
        final = charts / f"{archive.name[: -len('.tgz')]}"
        if final.exists():
            raise RenderError(f"subchart {archive.name} clashes with a directory", where=label)
        sub.rename(final)
        shutil.rmtree(target)
    for sub in sorted(p for p in charts.iterdir() if p.is_dir() and not p.is_symlink()):
        if (sub / "charts").is_dir():
            unpack_vendored(sub, label, depth + 1)


def _read_yaml(path: Path, where: str | None) -> Any:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_META_BYTES + 1)
    except OSError as exc:
        raise RenderError(f"cannot read {path.name}: {exc.strerror}", where=where) from exc
    if len(data) > _MAX_META_BYTES:
        raise RenderError(f"{path.name} is larger than {_MAX_META_BYTES} bytes", where=where)
    try:
        return yamlload.safe_load(data.decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        raise RenderError(f"{path.name} is not valid YAML", where=where) from exc


def chart_meta(chart: Path, where: str | None) -> ChartMeta:
    """Name, version and dependencies of the chart directory ``chart``."""
    meta = _read_yaml(chart / "Chart.yaml", where)
    if not isinstance(meta, dict) or not meta.get("name"):
        raise RenderError("Chart.yaml names no chart", where=where)
    deps = meta.get("dependencies")
    requirements = chart / "requirements.yaml"
    if deps is None and requirements.is_file():
        found = _read_yaml(requirements, where)
        deps = found.get("dependencies") if isinstance(found, dict) else None
    return ChartMeta(
        str(meta["name"]),
        str(meta.get("version") or ""),
        tuple(d for d in deps or [] if isinstance(d, dict)),
    )


def _vendored_names(chart: Path, where: str | None) -> set[str]:
    """Names of the subcharts under ``charts/`` (directories by Chart.yaml, archives by name)."""
    names: set[str] = set()
    charts = chart / "charts"
    if not charts.is_dir():
        return names
    for entry in charts.iterdir():
        if entry.is_dir() and (entry / "Chart.yaml").is_file():
            names.add(chart_meta(entry, where).name)
        elif entry.name.endswith(".tgz"):
            # helm names packages NAME-VERSION.tgz; the name itself may hold dashes.
            names.add(entry.name[: -len(".tgz")].rsplit("-", 1)[0])
    return names


def missing_dependencies(chart: Path, meta: ChartMeta, where: str | None) -> list[dict[str, Any]]:
    """Dependencies ``charts/`` does not hold (``helm dependency build`` would fetch them)."""
    present = _vendored_names(chart, where)
    return [d for d in meta.dependencies if str(d.get("name", "")) not in present]


def calls_lookup(chart: Path) -> bool:
    """Whether a template of the chart or of a vendored subchart calls ``lookup``."""
    for directory, _, files in os.walk(chart):
        if "templates" not in Path(directory).parts:
            continue
        for name in files:
            try:
                with open(os.path.join(directory, name), "rb") as handle:
                    if _LOOKUP.search(handle.read(8 * 1024 * 1024)):
                        return True
            except OSError:
                continue
    return False
