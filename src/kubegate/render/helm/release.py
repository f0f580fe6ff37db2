"""A HelmRelease's spec as helm-controller reads it (``helm.toolkit.fluxcd.io`` v2, v2beta2,
v2beta1).

:func:`parse_release` turns one rendered HelmRelease object into a :class:`HelmReleaseSpec`:
where its chart comes from (``spec.chart.spec`` with a ``sourceRef``, or ``spec.chartRef``),
its values and ``valuesFrom`` references, release name and namespace inputs, hook and test
switches and its kustomize post-renderers. Only shapes are checked here; what the references
point at is resolved by ``stage.py``. Called by ``kubegate.render.helm.stage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubegate.errors import RenderError

HELM_GROUP = "helm.toolkit.fluxcd.io"
#: API versions helm-controller v1 serves; older ones were removed from the CRD.
HELM_VERSIONS = frozenset({"v2", "v2beta2", "v2beta1"})
#: Kinds a ``spec.chart.spec.sourceRef`` may name.
CHART_SOURCE_KINDS = frozenset({"HelmRepository", "GitRepository", "Bucket"})
#: Kinds a ``spec.chartRef`` may name.
CHART_REF_KINDS = frozenset({"OCIRepository", "HelmChart", "ExternalArtifact"})


def is_helm_release(value: Mapping[str, Any]) -> bool:
    """Whether ``value`` is a Flux HelmRelease (any served version)."""
    group = str(value.get("apiVersion", "")).partition("/")[0]
    return value.get("kind") == "HelmRelease" and group == HELM_GROUP


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A reference to another object: ``kind namespace/name``."""

    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ValuesReference:
    """One ``spec.valuesFrom`` entry."""

    kind: str
    name: str
    values_key: str
    target_path: str | None
    optional: bool
    #: ``literal``: the data is one string at ``targetPath``, never parsed as a ``--set`` value.
    literal: bool = False


@dataclass(frozen=True, slots=True)
class HelmReleaseSpec:
    """What rendering needs of one HelmRelease."""

    namespace: str
    name: str
    #: ``spec.chart.spec.sourceRef`` or ``spec.chartRef``.
    source: ObjectRef
    #: ``chart`` or ``chartRef``: the spec key that names the chart (provenance).
    chart_key: str
    #: ``spec.chart.spec.chart`` (a name, or a path for GitRepository/Bucket); "" for chartRef.
    chart: str
    #: ``spec.chart.spec.version`` (a semver constraint; ``*`` by default).
    version: str
    values_files: tuple[str, ...]
    #: ``spec.chart.spec.ignoreMissingValuesFiles``.
    ignore_missing_values_files: bool
    values: Mapping[str, Any] | None
    values_from: tuple[ValuesReference, ...]
    release_name: str | None
    target_namespace: str | None
    #: Hooks are left out only when both install and upgrade disable them (the cluster may
    #: see either action; judging fewer images than one of them would run is failing open).
    disable_hooks: bool
    test_enable: bool
    #: ``spec.postRenderers[].kustomize`` as written, with their index in ``postRenderers``.
    post_renderers: tuple[tuple[int, Mapping[str, Any]], ...]
    #: ``nohooks`` (Helm 3), ``combined`` (Helm 4 default) or ``separate``.
    post_render_strategy: str
    #: ``spec.kubeConfig`` is set: the release goes to another cluster.
    remote_cluster: bool
    suspended: bool

    @property
    def key(self) -> str:
        """``namespace/name`` of the HelmRelease."""
        return f"{self.namespace}/{self.name}"

    @property
    def release_namespace(self) -> str:
        """Where helm-controller installs the release: ``targetNamespace``, else its own."""
        return self.target_namespace or self.namespace


def _mapping(value: Any, what: str, where: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError(f"{what} is not a mapping", where=where)
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def parse_release(
    value: Mapping[str, Any], default_namespace: str, where: str | None
) -> HelmReleaseSpec:
    """The spec of the HelmRelease ``value``; RenderError with a one-line reason when malformed."""
    metadata = _mapping(value.get("metadata"), "metadata", where)
    name = _text(metadata.get("name"))
    namespace = _text(metadata.get("namespace")) or default_namespace
    version = str(value.get("apiVersion", "")).partition("/")[2]
    if version not in HELM_VERSIONS:
        raise RenderError(
            f"HelmRelease {namespace}/{name}: apiVersion {value.get('apiVersion')} is not one "
            "helm-controller v1 serves (v2, v2beta2, v2beta1)",
            where=where,
        )
    spec = _mapping(value.get("spec"), "spec", where)
    label = f"HelmRelease {namespace}/{name}"
    chart_ref = spec.get("chartRef")
    chart_template = spec.get("chart")
    if chart_ref is not None and chart_template is not None:
        raise RenderError(f"{label}: spec.chart and spec.chartRef are both set", where=where)
    values_files: tuple[str, ...] = ()
    ignore_missing = False
    chart = ""
    constraint = "*"
    if chart_ref is not None:
        ref = _mapping(chart_ref, "spec.chartRef", where)
        kind = _text(ref.get("kind"))
        if kind not in CHART_REF_KINDS:
            raise RenderError(f"{label}: spec.chartRef.kind {kind!r} is not supported", where=where)
        source = ObjectRef(kind, _text(ref.get("namespace")) or namespace, _text(ref.get("name")))
        chart_key = "chartRef"
    elif chart_template is not None:
        tmpl = _mapping(_mapping(chart_template, "spec.chart", where).get("spec"), "spec", where)
        ref = _mapping(tmpl.get("sourceRef"), "spec.chart.spec.sourceRef", where)
        kind = _text(ref.get("kind"))
        if kind not in CHART_SOURCE_KINDS:
            raise RenderError(
                f"{label}: spec.chart.spec.sourceRef.kind {kind!r} is not supported", where=where
            )
        source = ObjectRef(kind, _text(ref.get("namespace")) or namespace, _text(ref.get("name")))
        chart = _text(tmpl.get("chart"))
        constraint = _text(tmpl.get("version")) or "*"
        files = tmpl.get("valuesFiles")
        if isinstance(files, list):
            values_files = tuple(_text(f) for f in files)
        elif tmpl.get("valuesFile"):
            # v2beta1's single deprecated field, which source-controller lists first.
            values_files = (_text(tmpl.get("valuesFile")),)
        ignore_missing = _flag(tmpl.get("ignoreMissingValuesFiles"))
        chart_key = "chart"
    else:
        raise RenderError(f"{label}: neither spec.chart nor spec.chartRef is set", where=where)
    if not source.name or (chart_key == "chart" and not chart):
        raise RenderError(f"{label}: the chart reference names no chart or source", where=where)
    values = spec.get("values")
    if values is not None and not isinstance(values, dict):
        raise RenderError(f"{label}: spec.values is not a mapping", where=where)
    refs = []
    for entry in spec.get("valuesFrom") or []:
        item = _mapping(entry, "spec.valuesFrom entry", where)
        kind = _text(item.get("kind"))
        if kind not in ("ConfigMap", "Secret"):
            raise RenderError(f"{label}: valuesFrom kind {kind!r} is not supported", where=where)
        refs.append(
            ValuesReference(
                kind,
                _text(item.get("name")),
                _text(item.get("valuesKey")) or "values.yaml",
                _text(item.get("targetPath")) or None,
                _flag(item.get("optional")),
                _flag(item.get("literal")),
            )
        )
    renderers = []
    for index, entry in enumerate(spec.get("postRenderers") or []):
        kustomize = _mapping(entry, "spec.postRenderers entry", where).get("kustomize")
        if kustomize is not None:
            renderers.append((index, _mapping(kustomize, "postRenderers kustomize", where)))
    install = _mapping(spec.get("install"), "spec.install", where)
    upgrade = _mapping(spec.get("upgrade"), "spec.upgrade", where)
    test = _mapping(spec.get("test"), "spec.test", where)
    return HelmReleaseSpec(
        namespace=namespace,
        name=name,
        source=source,
        chart_key=chart_key,
        chart=chart,
        version=constraint,
        values_files=values_files,
        ignore_missing_values_files=ignore_missing,
        values=values,
        values_from=tuple(refs),
        release_name=_text(spec.get("releaseName")) or None,
        target_namespace=_text(spec.get("targetNamespace")) or None,
        disable_hooks=_flag(install.get("disableHooks")) and _flag(upgrade.get("disableHooks")),
        test_enable=_flag(test.get("enable")),
        post_renderers=tuple(renderers),
        post_render_strategy=_text(spec.get("postRenderStrategy")) or "combined",
        remote_cluster=spec.get("kubeConfig") is not None,
        suspended=_flag(spec.get("suspend")),
    )
