"""HelmRelease spec parsing and the values search behind chart provenance (no helm needed).

Shapes follow helm-controller's API types (``api/v2/helmrelease_types.go``, v1.6.3).
"""

from __future__ import annotations

from typing import Any

import pytest

from kubegate.errors import RenderError
from kubegate.render.helm.locator import find_value, image_name, image_tag
from kubegate.render.helm.release import parse_release


def _hr(spec: dict[str, Any], version: str = "v2") -> dict[str, Any]:
    return {
        "apiVersion": f"helm.toolkit.fluxcd.io/{version}",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": spec,
    }


CHART = {"spec": {"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": "repo"}}}


def test_defaults_as_helm_controller() -> None:
    spec = parse_release(_hr({"chart": CHART}), "default", "r.yaml:1")
    assert (spec.source.kind, spec.source.namespace, spec.source.name) == (
        "HelmRepository",
        "apps",
        "repo",
    )
    assert (spec.version, spec.chart_key, spec.release_namespace) == ("*", "chart", "apps")
    assert not spec.disable_hooks and not spec.test_enable and not spec.remote_cluster
    assert spec.post_render_strategy == "combined"


def test_hooks_disabled_only_when_both_actions_disable_them() -> None:
    one = parse_release(_hr({"chart": CHART, "install": {"disableHooks": True}}), "d", None)
    both = parse_release(
        _hr(
            {
                "chart": CHART,
                "install": {"disableHooks": True},
                "upgrade": {"disableHooks": True},
            }
        ),
        "d",
        None,
    )
    assert (one.disable_hooks, both.disable_hooks) == (False, True)


def test_values_from_defaults() -> None:
    spec = parse_release(
        _hr(
            {
                "chartRef": {"kind": "OCIRepository", "name": "app", "namespace": "src"},
                "valuesFrom": [
                    {"kind": "Secret", "name": "s"},
                    {"kind": "ConfigMap", "name": "c", "valuesKey": "k", "targetPath": "a.b"},
                ],
                "targetNamespace": "target",
            },
            "v2beta2",
        ),
        "default",
        None,
    )
    first, second = spec.values_from
    assert (first.values_key, first.target_path, first.optional) == ("values.yaml", None, False)
    assert (second.values_key, second.target_path) == ("k", "a.b")
    assert (spec.source.namespace, spec.chart_key, spec.release_namespace) == (
        "src",
        "chartRef",
        "target",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_hr({}), "neither spec.chart nor spec.chartRef is set"),
        (_hr({"chart": CHART, "chartRef": {"kind": "OCIRepository"}}), "are both set"),
        (_hr({"chartRef": {"kind": "GitRepository", "name": "x"}}), "'GitRepository' is not"),
        (_hr({"chart": CHART, "values": ["a"]}), "spec.values is not a mapping"),
        (_hr({"chart": CHART}, "v1"), "is not one helm-controller v1 serves"),
        (_hr({"chart": CHART, "valuesFrom": [{"kind": "Pod", "name": "x"}]}), "'Pod'"),
    ],
)
def test_malformed_specs(value: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        parse_release(value, "default", "r.yaml:3")


def test_values_search_prefers_whole_reference_then_repository_then_tag() -> None:
    values = {
        "replicaCount": 1,
        "image": {"registry": "docker.io", "repository": "org/app", "tag": "1.0"},
        "sidecar": {"image": "quay.io/org/side:2"},
    }
    assert find_value(values, ["quay.io/org/side:2"]) == ("sidecar", "image")
    assert find_value(values, ["docker.io/org/app:1.0"]) == ("image", "repository")
    assert find_value({"app": {"tag": "1"}, "replicas": 1}, ["x/y:1"]) == ("app", "tag")
    # A bare number elsewhere is not taken for a tag.
    assert find_value({"replicas": 1}, ["x/y:1"]) is None
    assert (image_name("reg:5000/a/b:1@sha256:0"), image_tag("reg:5000/a/b")) == (
        "reg:5000/a/b",
        None,
    )
