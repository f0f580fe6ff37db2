"""HelmRelease values composition, valuesFiles merge and release name, as Flux does them.

Expectations are derived from the upstream code read for the port: fluxcd/pkg
``chartutil/values.go`` (``ChartValuesFromReferences``, ``ReplacePathValue``,
``ReplacePathLiteralValue``) and ``chartutil/merge.go`` (``MergeMaps``) at chartutil v1.27.1 (the
version helm-controller v1.6.3 uses), source-controller v1.9.1 ``internal/helm/chart``
(``mergeChartValues``, ``mergeFileValues``, ``GetValuesFiles``), helm-controller v1.6.3
``api/v2`` ``GetReleaseName`` and ``internal/release/name.go`` (whose test table the release name
cases reuse). ``tests/integration/test_helm_values_oracle.py`` checks the YAML reading and the
plain merges against the real helm.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubegate.errors import RenderError
from kubegate.render.helm.values import (
    ValuesSource,
    chart_file_name,
    compose_values,
    merge_maps,
    merge_values_files,
    read_values,
    release_name,
    release_namespace,
    replaces_chart_values,
)


def test_merge_maps_merges_maps_deeply_and_replaces_everything_else() -> None:
    base = {"a": {"x": 1, "l": [1, 2]}, "b": 1, "c": {"k": 1}}
    override = {"a": {"y": 2, "l": [3]}, "b": {"now": "map"}, "c": None}
    assert merge_maps(base, override) == {
        "a": {"x": 1, "y": 2, "l": [3]},
        "b": {"now": "map"},
        "c": None,
    }
    assert base == {"a": {"x": 1, "l": [1, 2]}, "b": 1, "c": {"k": 1}}


def test_values_from_merge_in_order_then_spec_values_last() -> None:
    values = compose_values(
        [
            ValuesSource("a: 1\nm: {p: 1, q: 1}\n"),
            None,  # an optional entry whose object or key is missing: skipped
            ValuesSource("a: 2\nm: {q: 2}\nl: [1, 2]\n"),
        ],
        {"m": {"r": 3}, "l": [9]},
    )
    assert values == {"a": 2, "m": {"p": 1, "q": 2, "r": 3}, "l": [9]}


def test_target_path_uses_the_set_parser_with_types() -> None:
    values = compose_values(
        [
            ValuesSource("3", target_path="replicas"),
            ValuesSource("true", target_path="ingress.enabled"),
            ValuesSource("{a,b}", target_path="hosts"),
            ValuesSource("x", target_path="list[1]"),
        ],
        None,
    )
    assert values == {
        "replicas": 3,
        "ingress": {"enabled": True},
        "hosts": ["a", "b"],
        "list": [None, "x"],
    }


def test_quoted_target_path_values_stay_strings_and_lose_every_quote() -> None:
    values = compose_values(
        [
            ValuesSource('"3"', target_path="a"),
            ValuesSource("'true'", target_path="b"),
            ValuesSource("\"'x'\"", target_path="c"),
            ValuesSource("'", target_path="d"),  # one quote is both prefix and suffix
            ValuesSource("'x\"", target_path="e"),  # mismatched: parsed as is
        ],
        None,
    )
    assert values == {"a": "3", "b": "true", "c": "x", "d": "", "e": "'x\""}


def test_an_unquoted_value_is_set_syntax_too() -> None:
    # Upstream hands "<path>=<value>" to ParseInto: a comma in the value starts another key.
    assert compose_values([ValuesSource("1,other=2", target_path="a")], None) == {
        "a": 1,
        "other": 2,
    }
    # A trailing newline (a value written from a file) is part of the value: no longer an int.
    assert compose_values([ValuesSource("5\n", target_path="a")], None) == {"a": "5\n"}


def test_literal_target_path_keeps_the_value_verbatim() -> None:
    text = "key=a,b[0]={x}\\y.z\n"
    values = compose_values([ValuesSource(text, target_path="cfg\\.yaml", literal=True)], None)
    assert values == {"cfg.yaml": text}


def test_literal_without_target_path_is_a_yaml_document() -> None:
    assert compose_values([ValuesSource("a: 1", literal=True)], None) == {"a": 1}


def test_target_path_applies_over_spec_values_merged_before_it() -> None:
    # result = MergeMaps(result, spec.values) before the path is set: a list from spec.values
    # is updated in place...
    values = compose_values([ValuesSource("x", target_path="l[1]")], {"l": [1, 2, 3]})
    assert values == {"l": [1, "x", 3]}


def test_target_path_under_a_map_only_spec_values_sets_wins() -> None:
    # MergeMaps shares spec.values' nested map with the result; ParseInto changes it in place,
    # so the final merge with spec.values carries the target path's value.
    assert compose_values([ValuesSource("9", target_path="a.b")], {"a": {"b": 1}}) == {
        "a": {"b": 9}
    }


def test_target_path_under_a_map_an_earlier_document_sets_loses_to_spec_values() -> None:
    # Here MergeMaps builds a new map for "a", the target path changes only that one, and the
    # final merge with spec.values puts b back to 1.
    values = compose_values(
        [ValuesSource("a: {c: 2}"), ValuesSource("9", target_path="a.b")], {"a": {"b": 1}}
    )
    assert values == {"a": {"c": 2, "b": 1}}


def test_a_top_level_target_path_loses_to_spec_values() -> None:
    assert compose_values([ValuesSource("9", target_path="b")], {"b": 1}) == {"b": 1}


def test_compose_never_changes_the_callers_spec_values() -> None:
    spec: dict[str, Any] = {"a": {"b": 1}, "l": [1, 2]}
    compose_values([ValuesSource("9", target_path="a.b"), ValuesSource("x", "l[0]")], spec)
    assert spec == {"a": {"b": 1}, "l": [1, 2]}


def test_helm_md_tuple_entries_are_accepted() -> None:
    values = compose_values([("a: 1", None), ({"b": {"c": 2}}, None), ("3", "d")], None)
    assert values == {"a": 1, "b": {"c": 2}, "d": 3}


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (ValuesSource("- a\n- b\n", where="ConfigMap ns/v"), "must be a YAML map"),
        (ValuesSource("just text", where="ConfigMap ns/v"), "must be a YAML map"),
        (ValuesSource("a: [1\n", where="ConfigMap ns/v"), "not valid YAML"),
        (ValuesSource("1,,2", target_path="a", where="ConfigMap ns/v"), "targetPath 'a'"),
        (ValuesSource("x", target_path="a[", where="ConfigMap ns/v"), "targetPath"),
    ],
)
def test_bad_values_name_the_reference_in_one_line(source: ValuesSource, reason: str) -> None:
    with pytest.raises(RenderError) as caught:
        compose_values([source], None)
    message = caught.value.diagnostics()
    assert message.startswith("ConfigMap ns/v: ")
    assert reason in message
    assert "\n" not in message


def test_target_path_budget_is_shared_across_entries() -> None:
    sources = [ValuesSource("x", target_path=f"k{i}[65536]") for i in range(70)]
    with pytest.raises(RenderError, match="allocate more than"):
        compose_values(sources, None)


# -- YAML as Helm reads it ------------------------------------------------------------------


def test_read_values_follows_go_yaml_v2() -> None:
    text = (
        "yes_: yes\ny_: y\non_: on\nN: 1\nts: 2024-01-01\nts2: 2001-12-14t21:59:43.10-05:00\n"
        "sexa: 1:30\noctal: 0777\nhex: 0x1F\nunder: 1_000\nfloat: 1e3\nbig: 18446744073709551615\n"
        "1.5: float key\n100: int key\n1e6: exp key\ntrue: bool key\n"
    )
    assert read_values(text) == {
        "yes_": True,
        "y_": True,
        "on_": True,
        "false": 1,  # the key N is the boolean false
        "ts": "2024-01-01",
        "ts2": "2001-12-14t21:59:43.10-05:00",
        "sexa": "1:30",
        "octal": 511,
        "hex": 31,
        "under": 1000,
        "float": 1000.0,
        "big": 18446744073709551615,
        "1.5": "float key",
        "100": "int key",
        "1e+06": "exp key",
        "true": "bool key",
    }


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "null\n", "~", "---\n"])
def test_empty_values_are_an_empty_map(text: str) -> None:
    assert read_values(text) == {}


def test_numbers_go_cannot_hold_stay_strings() -> None:
    # ParseFloat fails with a range error: go-yaml v2 keeps the text.
    assert read_values("a: 1e999\nb: " + "9" * 5000 + "\n") == {"a": "1e999", "b": "9" * 5000}


def test_deep_nesting_is_a_render_error_not_a_recursion_error() -> None:
    with pytest.raises(RenderError, match="nested too deeply"):
        read_values("a: " + "[" * 5000 + "]" * 5000)


def test_only_the_first_document_counts() -> None:
    assert read_values("a: 1\n---\nb: 2\n") == {"a": 1}


@pytest.mark.parametrize("text", ["a: .nan\n", "a: [.inf]\n", "? [1]\n: x\n", "~: x\n"])
def test_values_json_cannot_hold_are_refused(text: str) -> None:
    with pytest.raises(RenderError):
        read_values(text)


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(RenderError, match="not valid YAML"):
        read_values("\n".join(lines) + "\n")


# -- valuesFiles ------------------------------------------------------------------------------


def test_values_files_merge_in_order() -> None:
    merged = merge_values_files(
        [
            ("values.yaml", "image: {repository: app, tag: '1'}\nreplicas: 1\n"),
            ("values-prod.yaml", "image: {tag: '2'}\nlist: [a]\n"),
            ("./overrides/extra.yaml", "list: [b]\n"),
        ]
    )
    assert merged == {"image": {"repository": "app", "tag": "2"}, "replicas": 1, "list": ["b"]}


def test_a_missing_values_file_is_an_error_unless_ignored() -> None:
    files = [("values.yaml", "a: 1\n"), ("missing.yaml", None)]
    with pytest.raises(RenderError, match=r"no values file found at path 'missing\.yaml'"):
        merge_values_files(files, where="HelmRelease ns/app")
    assert merge_values_files(files, ignore_missing=True) == {"a": 1}
    # Every file missing and ignored: an empty map, which still replaces values.yaml.
    assert merge_values_files([("gone.yaml", None)], ignore_missing=True) == {}


def test_a_bad_values_file_names_its_path() -> None:
    with pytest.raises(RenderError, match=r"unmarshaling values from 'bad\.yaml' failed"):
        merge_values_files([("bad.yaml", "- not\n- a map\n")])


@pytest.mark.parametrize(
    ("paths", "replaces"),
    [
        ([], False),
        (["values.yaml"], False),
        (["./values.yaml"], False),
        (["values-prod.yaml"], True),
        (["values.yaml", "values-prod.yaml"], True),
    ],
)
def test_replaces_chart_values(paths: list[str], replaces: bool) -> None:
    assert replaces_chart_values(paths) is replaces


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [("./values.yaml", "values.yaml"), ("a/../b.yaml", "b.yaml"), ("", "."), ("//x", "/x")],
)
def test_chart_file_name_is_go_filepath_clean(path: str, cleaned: str) -> None:
    assert chart_file_name(path) == cleaned


# -- release name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target_namespace", "spec_release_name", "expected"),
    [
        ("app", None, None, "app"),
        ("app", "prod", None, "prod-app"),
        ("app", "prod", "custom", "custom"),
        # helm-controller internal/release/name_test.go
        (
            "release-name-with-very-long-name-which-is-longer-than-53-characters",
            None,
            None,
            "release-name-with-very-long-name-which-i-788ca0d0d7b0",
        ),
        (
            "another-release-name-with-very-long-name-which-is-longer-than-53-characters",
            None,
            None,
            "another-release-name-with-very-long-name-7e72150d5a36",
        ),
        ("a" * 53, None, None, "a" * 53),
    ],
)
def test_release_name(
    name: str, target_namespace: str | None, spec_release_name: str | None, expected: str
) -> None:
    assert release_name(name, "flux-system", spec_release_name, target_namespace) == expected


def test_a_long_target_namespace_composition_is_shortened() -> None:
    got = release_name("podinfo-with-a-much-longer-name", "flux-system", None, "team-a-prod-ns")
    assert len("team-a-prod-ns-podinfo-with-a-much-longer-name") == 46
    assert got == "team-a-prod-ns-podinfo-with-a-much-longer-name"
    got = release_name("podinfo-with-a-really-long-name", "x", None, "team-a-production-cluster")
    assert len(got) == 53
    assert got.startswith("team-a-production-cluster-podinfo-with-a-")
    assert got[40] == "-"


def test_release_namespace() -> None:
    assert release_namespace("flux-system") == "flux-system"
    assert release_namespace("flux-system", "apps") == "apps"
