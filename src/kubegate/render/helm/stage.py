"""Render the HelmReleases among a cluster's objects through the real helm, as helm-controller.

:func:`render_releases` is called once per cluster by ``kubegate.render.fleet`` (and once for a
plain or kustomize render) with every object the cluster renders. For each HelmRelease it:

1. resolves the chart: ``spec.chart.spec`` from a GitRepository that is the scanned source (or
   one supplied with ``--source``) is a chart directory copied privately; from a HelmRepository
   (HTTP(S) or ``type: oci``) or a ``spec.chartRef`` OCIRepository it is fetched through the
   :class:`~kubegate.render.fetch.SourceFetcher` and extracted safely (``chart.py``);
   dependencies missing from ``charts/`` come from ``file://`` paths in the same source or
   through the fetcher (``helm dependency build``'s job in source-controller);
2. replaces ``values.yaml`` with the merged ``valuesFiles`` and composes the values from
   ``valuesFrom`` (ConfigMaps/Secrets this cluster renders, by exact name, else
   ``--values-from`` files) and ``spec.values`` (``values.py``);
3. runs ``helm template`` with helm-controller's release name and namespace
   (``runner.py``), drops test hooks unless ``spec.test.enable``, applies each
   ``postRenderers[].kustomize`` in order with the real kustomize (hooks included unless
   ``postRenderStrategy: nohooks``), as helm-controller's kustomize post-renderer;
4. returns the rendered objects with a :class:`~kubegate.render.helm.locator.HelmLocator`.

A HelmRelease that cannot be rendered becomes a :class:`~kubegate.models.NotSeen` with a
one-line reason (``scan`` then cannot prove the revision: exit 2). One rendered with a remark
(its chart calls ``lookup``, ``spec.kubeConfig`` is set, it is suspended) adds a note.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubegate.errors import ConfigError, RenderError
from kubegate.models import ChartInfo, NotSeen
from kubegate.render.fetch import ChartRequest, FetchedChart, HelmOptions, SourceFetcher
from kubegate.render.helm.cache import helm_cache, template_key
from kubegate.render.helm.chart import (
    calls_lookup,
    chart_meta,
    copy_chart,
    extract_chart,
    missing_dependencies,
    unpack_vendored,
)
from kubegate.render.helm.locator import HelmLocator
from kubegate.render.helm.release import HelmReleaseSpec, ObjectRef, is_helm_release, parse_release
from kubegate.render.helm.runner import Helm, find_helm
from kubegate.render.helm.values import (
    ValuesSource,
    chart_file_name,
    compose_values,
    merge_values_files,
    release_name,
    replaces_chart_values,
)
from kubegate.render.kustomize import BUILD_WORKERS, Kustomize, find_kustomize
from kubegate.render.result import HelmSource, RenderedObject
from kubegate.render.valuesfrom import read_values_file
from kubegate.render.yamlfile import dump, load_stream
from kubegate.source.location import url_without_credentials

_logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"
#: HelmReleases rendered at once (each is a helm subprocess or two; threads only wait).
HELM_WORKERS = BUILD_WORKERS
#: Nested HelmReleases (a chart rendering HelmReleases) are followed this deep.
MAX_DEPTH = 4
#: A ``--values-from`` file larger than this is refused.
_MAX_VALUES_FILE = 8 * 1024 * 1024
_TEST_HOOKS = frozenset({"test", "test-success"})
_SOURCE_GROUP = "source.toolkit.fluxcd.io"
#: Built-in cluster-scoped kinds: every other object helm installs lands in the release
#: namespace when its template sets none (Helm's kube client does that at install).
_CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
_HOOK = "helm.sh/hook"

#: A GitRepository reference and a path in it -> the tree holding it, or why it is not seen.
TreeOf = Callable[[ObjectRef, str], "Path | str"]


@dataclass(slots=True)
class HelmContext:
    """What rendering HelmReleases needs from the render call and the cluster's walk."""

    options: HelmOptions
    fetcher: SourceFetcher | None
    #: GitRepository -> its tree (or why not); ``label`` names a chart path for ChartInfo.
    tree_of: TreeOf
    label: Callable[[ObjectRef, str], str]
    deadline: float | None = None
    cluster: str | None = None
    _helm: Helm | RenderError | None = None
    _kustomize: Kustomize | RenderError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def helm(self) -> Helm:
        with self._lock:
            if self._helm is None:
                try:
                    self._helm = find_helm(self.options.path)
                except RenderError as exc:
                    self._helm = exc
        if isinstance(self._helm, RenderError):
            raise self._helm
        return self._helm

    def kustomize(self) -> Kustomize:
        with self._lock:
            if self._kustomize is None:
                try:
                    self._kustomize = find_kustomize()
                except RenderError as exc:
                    self._kustomize = exc
        if isinstance(self._kustomize, RenderError):
            raise self._kustomize
        return self._kustomize


@dataclass(frozen=True, slots=True)
class HelmOutcome:
    """Objects (HelmReleases replaced by what their charts render), not seen, notes."""

    objects: tuple[RenderedObject, ...]
    not_seen: tuple[NotSeen, ...] = ()
    notes: tuple[NotSeen, ...] = ()


class _NotRendered(Exception):
    """A HelmRelease that is not rendered, with the one-line reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Rendered:
    objects: tuple[RenderedObject, ...]
    notes: tuple[str, ...]


def _ns(obj: RenderedObject) -> str:
    return obj.namespace or DEFAULT_NAMESPACE


def _data_of(obj: RenderedObject) -> dict[str, str] | str:
    """Data of a ConfigMap/Secret as text by key; a reason string when it cannot be read."""
    if "sops" in obj.value:
        return "is SOPS-encrypted (only the cluster can decrypt it)"
    found: dict[str, str] = {}
    data = obj.value.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            text = "" if value is None else str(value)
            if obj.kind == "Secret":
                try:
                    text = base64.b64decode(text, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    continue
            found[str(key)] = text
    strings = obj.value.get("stringData")
    if obj.kind == "Secret" and isinstance(strings, dict):
        found.update({str(k): "" if v is None else str(v) for k, v in strings.items()})
    return found


class _Cluster:
    """What one cluster renders, indexed for references: sources, ConfigMaps, Secrets."""

    def __init__(self, objects: Iterable[RenderedObject]) -> None:
        self.by_key: dict[tuple[str, str, str], RenderedObject] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: RenderedObject) -> None:
        self.by_key.setdefault((obj.kind, _ns(obj), obj.name), obj)

    def get(self, kind: str, namespace: str, name: str) -> RenderedObject | None:
        return self.by_key.get((kind, namespace, name))


def render_releases(
    objects: Sequence[RenderedObject],
    context: HelmContext,
    cluster_objects: Sequence[RenderedObject] | None = None,
) -> HelmOutcome:
    """Replace each HelmRelease of ``objects`` by what its chart renders (see module doc).

    Sources and ``valuesFrom`` objects are looked up among ``cluster_objects`` (default
    ``objects``): everything the cluster renders, when only some Kustomizations are selected.
    """
    not_seen: list[NotSeen] = []
    notes: list[NotSeen] = []
    cluster = _Cluster(objects if cluster_objects is None else cluster_objects)
    todo = [obj for obj in objects if is_helm_release(obj.value)]
    kept = [obj for obj in objects if not is_helm_release(obj.value)]
    done: set[tuple[str, str]] = set()
    for depth in range(MAX_DEPTH):
        if depth:
            # A chart rendering a HelmRelease the cluster already has: rendered once.
            todo = [obj for obj in todo if (_ns(obj), obj.name) not in done]
        if not todo:
            break
        done.update((_ns(obj), obj.name) for obj in todo)
        workers = max(1, min(len(todo), HELM_WORKERS))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda o: _render_one(o, cluster, context), todo))
        nested: list[RenderedObject] = []
        for obj, result in zip(todo, results, strict=True):
            origin = obj.locator.document()
            if isinstance(result, str):
                not_seen.append(NotSeen(obj.kind, _ns(obj), obj.name, origin, result, obj.cluster))
                continue
            notes.extend(
                NotSeen(obj.kind, _ns(obj), obj.name, origin, note, obj.cluster)
                for note in result.notes
            )
            for item in result.objects:
                if is_helm_release(item.value):
                    nested.append(item)
                else:
                    kept.append(item)
                    cluster.add(item)
        todo = nested
    for obj in todo:
        if (_ns(obj), obj.name) not in done:
            reason = f"rendered by a chart nested more than {MAX_DEPTH} HelmReleases deep"
            not_seen.append(
                NotSeen(obj.kind, _ns(obj), obj.name, obj.locator.document(), reason, obj.cluster)
            )
    return HelmOutcome(tuple(kept), tuple(not_seen), tuple(notes))


def _render_one(obj: RenderedObject, cluster: _Cluster, context: HelmContext) -> _Rendered | str:
    where = obj.locator.document().where
    try:
        spec = parse_release(obj.value, DEFAULT_NAMESPACE, where)
    except RenderError as exc:
        return exc.message
    try:
        with tempfile.TemporaryDirectory(prefix="kubegate-helm-") as tmp:
            return _Renderer(obj, spec, cluster, context, Path(tmp)).run()
    except _NotRendered as exc:
        return exc.reason
    except RenderError as exc:
        return exc.message
    except OSError as exc:
        return f"cannot prepare its chart: {exc.strerror or exc}"


@dataclass(slots=True)
class _Renderer:
    """One HelmRelease being rendered, in its private directory ``tmp``."""

    obj: RenderedObject
    spec: HelmReleaseSpec
    cluster: _Cluster
    context: HelmContext
    tmp: Path

    @property
    def where(self) -> str | None:
        return self.obj.locator.document().where

    def _template(self, helm: Helm, chart: Path, values_file: Path, args: list[str]) -> str:
        """``helm template``, or its output from the helm render cache (``cache.py``)."""
        cache = helm_cache()
        key = template_key(helm, chart, values_file, args) if cache is not None else None
        if cache is not None and key is not None:
            cached = cache.load(key)
            if cached is not None:
                return cached
        output = helm.template(
            args, home=self.tmp / "home", where=self.where, deadline=self.context.deadline
        )
        if cache is not None and key is not None and str(self.tmp) not in output:
            # An output naming the private directory is not what another run would render.
            cache.store(key, output)
        return output

    def run(self) -> _Rendered:
        # The chart's source first: why a HelmRelease is not seen should not depend on whether
        # this machine has helm when its source is missing anyway.
        chart, info, values_root = self._chart()
        helm = self.context.helm()
        unpack_vendored(chart, self.where or self.spec.key)
        meta = chart_meta(chart, self.where)
        if replaces_chart_values(self.spec.values_files):
            merged = merge_values_files(
                [
                    (path, self._values_text(values_root, chart, path))
                    for path in self.spec.values_files
                ],
                ignore_missing=self.spec.ignore_missing_values_files,
                where=self.where,
            )
            (chart / "values.yaml").write_text(_values_json(merged), encoding="utf-8")
        if meta.dependencies:
            self._dependencies(chart, missing_dependencies(chart, meta, self.where))
            # Fetched dependencies may carry subchart archives of their own.
            unpack_vendored(chart, self.where or self.spec.key)
        values = compose_values(self._values_from(), self.spec.values)
        values_file = self.tmp / "values.yaml"
        values_file.write_text(_values_json(values), encoding="utf-8")
        name = release_name(
            self.spec.name, self.spec.namespace, self.spec.release_name, self.spec.target_namespace
        )
        args = [
            name,
            str(chart),
            "--namespace",
            self.spec.release_namespace,
            "--values",
            str(values_file),
            "--kube-version",
            self.context.options.kube_version,
        ]
        for api in self.context.options.api_versions:
            args += ["--api-versions", api]
        if self.spec.disable_hooks:
            args.append("--no-hooks")
        output = self._template(helm, chart, values_file, args)
        documents = self._documents(output)
        before = {_identity(doc): doc for doc in documents}
        # Post-renderers see helm's output as helm-controller's do: before the kube client puts
        # objects without a namespace into the release namespace.
        documents = self._post_render(documents)
        for doc in [*before.values(), *documents]:
            self._default_namespace(doc)
        before = {_identity(doc): doc for doc in before.values()}
        notes = []
        if calls_lookup(chart):
            notes.append(
                f"chart {meta.name} calls lookup, which returns nothing outside the cluster: "
                "what it renders there may differ"
            )
        if self.spec.remote_cluster:
            notes.append("spec.kubeConfig is set: deployed to another cluster, not this one")
        if self.spec.suspended:
            notes.append(
                "spec.suspend is true: helm-controller applies nothing until it is resumed "
                "(judged as it would be applied)"
            )
        source = HelmSource(self.spec.key, info)
        values_now = self.spec.values
        post_images = self._post_images()
        post_patches = tuple(
            (index, key, position, entry if isinstance(entry, str) else json.dumps(entry))
            for index, kustomize in self.spec.post_renderers
            for key in ("patches", "patchesStrategicMerge", "patchesJson6902")
            for position, entry in enumerate(kustomize.get(key) or [])
        )
        objects = tuple(
            RenderedObject(
                value=doc,
                locator=HelmLocator(
                    release=self.obj.locator,
                    values=values_now,
                    chart_key=self.spec.chart_key,
                    value=doc,
                    before=before.get(_identity(doc)),
                    post_images=post_images,
                    post_patches=post_patches,
                ),
                kustomization=self.obj.kustomization,
                cluster=self.obj.cluster,
                helm=source,
            )
            for doc in documents
        )
        return _Rendered(objects, tuple(notes))

    # -- the chart ---------------------------------------------------------------------------

    def _source_object(self) -> RenderedObject:
        ref = self.spec.source
        found = self.cluster.get(ref.kind, ref.namespace, ref.name)
        group = str(found.value.get("apiVersion", "")).partition("/")[0] if found else ""
        if found is None or group != _SOURCE_GROUP:
            raise _NotRendered(f"its source {ref} is not in the revision")
        return found

    def _fetch(self, request: ChartRequest) -> FetchedChart:
        if self.context.fetcher is None:
            raise _NotRendered(
                f"its chart comes from {request.source} ({url_without_credentials(request.url)}) "
                "and charts are not fetched in this run"
            )
        return self.context.fetcher.chart(request)

    def _chart(self) -> tuple[Path, ChartInfo, Path | None]:
        """The private chart directory, what it is, and the root ``valuesFiles`` are under."""
        ref = self.spec.source
        if ref.kind == "GitRepository":
            path = posixpath.normpath(self.spec.chart.strip().lstrip("/") or ".")
            tree = self.context.tree_of(ref, path)
            if isinstance(tree, str):
                raise _NotRendered(tree)
            chart = copy_chart(tree, self.spec.chart, self.tmp / "chart", self.where)
            meta = chart_meta(chart, self.where)
            info = ChartInfo(meta.name, meta.version, None, self.context.label(ref, path))
            # source-controller reads valuesFiles from the artifact root (the whole source).
            return chart, info, tree
        if ref.kind in ("HelmChart", "ExternalArtifact", "Bucket"):
            raise _NotRendered(
                f"charts from a {ref.kind} ({ref}) are not rendered (its content exists only "
                "in the cluster)"
                if ref.kind != "Bucket"
                else f"charts from a Bucket ({ref}) are not rendered"
            )
        source = self._source_object()
        spec = source.value.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        url = str(spec.get("url") or "")
        origin = source.locator.document().where
        if not url:
            raise _NotRendered(f"its source {ref} has no spec.url")
        insecure = spec.get("insecure") is True
        if ref.kind == "OCIRepository":
            selector = spec.get("layerSelector")
            media = selector.get("mediaType") if isinstance(selector, dict) else None
            raw_ref = spec.get("ref")
            request = ChartRequest(
                kind="oci-repository",
                url=url,
                source=str(ref),
                ref={str(k): str(v) for k, v in (raw_ref or {}).items()}
                if isinstance(raw_ref, dict)
                else {},
                insecure=insecure,
                layer_media_type=str(media) if media else None,
                where=origin,
            )
        else:
            oci = spec.get("type") == "oci" or url.startswith("oci://")
            request = ChartRequest(
                kind="oci-helm-repository" if oci else "helm-repository",
                url=url,
                source=str(ref),
                chart=self.spec.chart,
                version=self.spec.version,
                insecure=insecure,
                where=origin,
            )
        fetched = self._fetch(request)
        chart = extract_chart(fetched.archive, self.tmp / "archive", f"chart of {ref}")
        # Remote charts: valuesFiles are files of the chart itself.
        return chart, fetched.info, None

    def _dependencies(self, chart: Path, missing: Sequence[dict[str, Any]]) -> None:
        """Place the dependencies ``charts/`` lacks, as ``helm dependency build`` would."""
        if not missing:
            return
        charts = chart / "charts"
        charts.mkdir(exist_ok=True)
        for index, dep in enumerate(missing):
            name = str(dep.get("name", ""))
            repository = str(dep.get("repository") or "")
            dest = charts / f"{name}-{index}"
            if repository.startswith("file://"):
                rel = posixpath.normpath(
                    posixpath.join(self.spec.chart or ".", repository[len("file://") :])
                )
                tree = (
                    self.context.tree_of(self.spec.source, rel)
                    if self.spec.source.kind == "GitRepository"
                    else None
                )
                if not isinstance(tree, Path):
                    raise _NotRendered(
                        f"chart dependency {name} ({repository}) is outside the chart archive"
                    )
                copy_chart(tree, rel, dest, self.where)
                continue
            if repository.startswith(("https://", "http://", "oci://")):
                request = ChartRequest(
                    kind="oci-helm-repository"
                    if repository.startswith("oci://")
                    else "helm-repository",
                    url=repository,
                    source=f"dependency {name} of HelmRelease {self.spec.key}",
                    chart=name,
                    version=str(dep.get("version") or "*"),
                )
                fetched = self._fetch(request)
                sub = extract_chart(fetched.archive, self.tmp / f"dep-{index}", f"chart {name}")
                shutil.move(str(sub), str(dest))
                continue
            raise _NotRendered(
                f"chart dependency {name} names repository {repository!r}, which only a helm "
                "repository configuration resolves"
            )

    # -- values ------------------------------------------------------------------------------

    def _values_text(self, root: Path | None, chart: Path, path: str) -> str | None:
        """A ``valuesFiles`` entry's text: from the source root (a chart directory of a
        GitRepository), else from the chart archive; None when there is no such file."""
        base = root if root is not None else chart
        rel = chart_file_name(path).lstrip("/") if root is None else path.strip().lstrip("/")
        norm = posixpath.normpath(rel or ".")
        if norm == ".." or norm.startswith("../"):
            raise _NotRendered(f"valuesFiles entry {path!r} leaves the chart's source")
        target = (base / norm).resolve()
        top = base.resolve()
        if top != target and top not in target.parents:
            raise _NotRendered(f"valuesFiles entry {path!r} leaves the chart's source (a link)")
        if not target.exists():
            return None
        if not target.is_file():
            raise _NotRendered(f"valuesFiles entry {path!r} is not a regular file")
        with target.open("rb") as handle:
            data = handle.read(_MAX_VALUES_FILE + 1)
        if len(data) > _MAX_VALUES_FILE:
            raise _NotRendered(
                f"valuesFiles entry {path!r} is larger than {_MAX_VALUES_FILE} bytes"
            )
        return data.decode("utf-8", errors="replace")

    def _data(self, kind: str, name: str) -> dict[str, str] | str | None:
        namespace = self.spec.namespace
        obj = self.cluster.get(kind, namespace, name)
        if obj is not None and str(obj.value.get("apiVersion")) == "v1":
            return _data_of(obj)
        path = self.context.options.values_from.get(f"{namespace}/{kind}/{name}")
        if path is None:
            return None
        return _values_file(path)

    def _values_from(self) -> list[ValuesSource]:
        composed: list[ValuesSource] = []
        for ref in self.spec.values_from:
            label = f"valuesFrom {ref.kind} {self.spec.namespace}/{ref.name}"
            data = self._data(ref.kind, ref.name)
            if isinstance(data, str):
                if ref.optional:
                    continue
                raise _NotRendered(f"{label} {data}")
            if data is None or ref.values_key not in data:
                if ref.optional:
                    continue
                missing = (
                    "is not rendered by this revision"
                    if data is None
                    else f"has no key {ref.values_key!r}"
                )
                raise _NotRendered(
                    f"{label} {missing}; pass it with --values-from "
                    f"{self.spec.namespace}/{ref.kind}/{ref.name}=FILE"
                )
            composed.append(
                ValuesSource(
                    data[ref.values_key],
                    ref.target_path,
                    ref.literal,
                    f"HelmRelease {self.spec.key} {label} key {ref.values_key}",
                )
            )
        return composed

    # -- output ------------------------------------------------------------------------------

    def _documents(self, output: str) -> list[dict[str, Any]]:
        """helm's output as objects: test hooks dropped unless ``spec.test.enable``."""
        documents = []
        for doc in load_stream(output, self.where or self.spec.key):
            if not isinstance(doc, dict):
                continue
            if not self.spec.test_enable and _is_test_hook(doc):
                continue
            documents.append(doc)
        return documents

    def _default_namespace(self, doc: dict[str, Any]) -> None:
        metadata = doc.get("metadata")
        if (
            isinstance(metadata, dict)
            and not metadata.get("namespace")
            and doc.get("kind") not in _CLUSTER_SCOPED
        ):
            metadata["namespace"] = self.spec.release_namespace

    def _post_images(self) -> tuple[tuple[int, int, Mapping[str, Any]], ...]:
        return tuple(
            (index, position, entry)
            for index, kustomize in self.spec.post_renderers
            for position, entry in enumerate(kustomize.get("images") or [])
            if isinstance(entry, dict)
        )

    def _post_render(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.spec.post_renderers or not documents:
            return documents
        strategy = self.spec.post_render_strategy
        hooks = [d for d in documents if _hook_events(d)]
        manifests = [d for d in documents if not _hook_events(d)]
        if strategy == "nohooks":
            groups, untouched = [manifests], hooks
        elif strategy == "separate":
            groups, untouched = [manifests, hooks], []
        else:
            groups, untouched = [documents], []
        result: list[dict[str, Any]] = []
        for group in groups:
            for index, kustomize in self.spec.post_renderers:
                if group:
                    group = self._kustomize(group, index, kustomize)
            result.extend(group)
        return result + untouched

    def _kustomize(
        self, documents: list[dict[str, Any]], index: int, spec: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """One kustomize post-renderer over ``documents`` (helm-controller's in-memory build)."""
        directory = self.tmp / f"post-{index}-{len(list(self.tmp.iterdir()))}"
        directory.mkdir()
        (directory / "helm-output.yaml").write_text(
            "---\n".join(dump(doc) for doc in documents), encoding="utf-8"
        )
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["helm-output.yaml"],
            **_post_renderer_fields(spec, f"HelmRelease {self.spec.key} postRenderers[{index}]"),
        }
        (directory / "kustomization.yaml").write_text(dump(kustomization), encoding="utf-8")
        where = f"{self.where or self.spec.key} postRenderers[{index}]"
        output = self.context.kustomize().build(
            directory, where, trees=(directory,), deadline=self.context.deadline
        )
        return [d for d in load_stream(output, where) if isinstance(d, dict)]


_SELECTOR_KEYS = (
    "group",
    "version",
    "kind",
    "name",
    "namespace",
    "labelSelector",
    "annotationSelector",
)
_IMAGE_KEYS = ("name", "newName", "newTag", "digest")


def _selector(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {k: str(value[k]) for k in _SELECTOR_KEYS if value.get(k)}


def _post_renderer_fields(spec: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The kustomization fields of one post-renderer: inline patches and images only.

    Only what helm-controller's ``kustomize.Patch``/``Image`` types carry is passed on (never
    a ``path``, so a patch cannot name a file); the legacy ``patchesStrategicMerge`` (objects)
    and ``patchesJson6902`` (target + operations) of v2beta1/v2beta2 become inline patches.
    """
    patches: list[dict[str, Any]] = []
    for entry in spec.get("patches") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("patch"), str):
            raise RenderError(f"{label}: a patch without inline patch text")
        patch: dict[str, Any] = {"patch": entry["patch"]}
        target = _selector(entry.get("target"))
        if target:
            patch["target"] = target
        patches.append(patch)
    for entry in spec.get("patchesStrategicMerge") or []:
        if not isinstance(entry, dict):
            raise RenderError(f"{label}: a patchesStrategicMerge entry is not an object")
        patches.append({"patch": dump(entry)})
    for entry in spec.get("patchesJson6902") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("patch"), list):
            raise RenderError(f"{label}: a patchesJson6902 entry without operations")
        target = _selector(entry.get("target"))
        if not target:
            raise RenderError(f"{label}: a patchesJson6902 entry without a target")
        patches.append({"patch": dump(entry["patch"]), "target": target})
    images = [
        {k: str(entry[k]) for k in _IMAGE_KEYS if entry.get(k)}
        for entry in spec.get("images") or []
        if isinstance(entry, dict) and entry.get("name")
    ]
    fields: dict[str, Any] = {}
    if patches:
        fields["patches"] = patches
    if images:
        fields["images"] = images
    return fields


def _hook_events(doc: Mapping[str, Any]) -> list[str]:
    metadata = doc.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    hook = annotations.get(_HOOK) if isinstance(annotations, dict) else None
    if not isinstance(hook, str):
        return []
    return [event.strip() for event in hook.split(",") if event.strip()]


def _is_test_hook(doc: Mapping[str, Any]) -> bool:
    events = _hook_events(doc)
    return bool(events) and all(event in _TEST_HOOKS for event in events)


def _identity(doc: Mapping[str, Any]) -> tuple[str, str, str, str]:
    metadata = doc.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return (
        str(doc.get("apiVersion", "")),
        str(doc.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
    )


def _values_json(values: Mapping[str, Any]) -> str:
    """Values as helm reads them: JSON is YAML to helm, and never ambiguous (a YAML 1.2 dump
    would leave ``yes`` unquoted, which helm's YAML 1.1 reader takes for ``true``)."""
    try:
        return json.dumps(values, default=str, allow_nan=False)
    except ValueError as exc:
        raise RenderError("its values hold a number that is infinite or not a number") from exc


def _values_file(path: Path) -> dict[str, str] | str:
    """A ``--values-from`` file, read as the CLI checked it before rendering
    (:func:`kubegate.render.valuesfrom.read_values_file`); a one-line reason if it no longer
    reads."""
    try:
        return read_values_file(path)
    except ConfigError as exc:
        return f"--values-from {exc.diagnostics()}"
