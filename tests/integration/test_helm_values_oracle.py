"""Values reading and merging against the real helm (``tests/fixtures/helmdump.py``).

helm reads ``-f`` files and a chart's ``values.yaml`` with ``common.ReadValues``
(``sigs.k8s.io/yaml`` on go-yaml v2), the same reader helm-controller uses for a ``valuesFrom``
document, and merges ``-f`` files with the ``mergeMaps`` that fluxcd/pkg's ``MergeMaps`` was
copied from; ``-f ... --set`` parses into the merged map as helm-controller does for a
``targetPath`` when ``spec.values`` is empty. So helm checks :func:`read_values`,
:func:`merge_values_files` and the plain part of :func:`compose_values`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubegate.render.helm.values import (
    ValuesSource,
    compose_values,
    merge_values_files,
    read_values,
)
from tests.fixtures.helmdump import dump_chart, rendered_values

# Scalars and keys where YAML 1.1, YAML 1.2 and go-yaml v2 disagree. No integer beyond 2**53:
# helm holds every number of a YAML file as a float64.
TRICKY = """\
bools: [yes, Yes, no, on, OFF, y, n, Y, N, true, False]
y: key y
n: key n
on: key on
1: int key
1.5: float key
1e6: exponent key
nulls: [~, null, Null, ""]
timestamp: 2024-01-01
datetime: 2001-12-14t21:59:43.10-05:00
sexagesimal: 1:30
octal: 0777
octal_o: 0o17
hex: 0x1F
binary: 0b101
underscore: 1_000
float: 1e3
dotted: .5
version: 1.10
huge: 1e999
quoted: "yes"
merge:
  <<: {inherited: 1}
  own: 2
anchor: &a {x: 1}
alias: *a
"""

DOC_A = """\
image: {repository: app, tag: "1.0", pullPolicy: IfNotPresent}
list: [1, 2, 3]
maps: {a: {b: 1}}
gone: present
"""
DOC_B = """\
image: {tag: "2.0"}
list: [x]
maps: {a: {c: 2}, d: 3}
gone: null
"""
SPEC = "image: {pullPolicy: Always}\nextra: {k: v}\n"


@pytest.fixture(scope="module")
def empty_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dump_chart(tmp_path_factory.mktemp("charts") / "empty", {})


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_read_values_matches_helm_reading_a_values_file(empty_chart: Path, tmp_path: Path) -> None:
    theirs = rendered_values(empty_chart, "-f", _file(tmp_path, "tricky.yaml", TRICKY))
    ours = read_values(TRICKY)
    assert theirs == ours
    assert ours["true"] == "key on"  # `on` and `y` are the same boolean key; the last wins
    assert ours["1"] == "int key"  # and not the same key as 1
    assert ours["false"] == "key n"
    assert ours["timestamp"] == "2024-01-01"
    assert ours["sexagesimal"] == "1:30"


def test_merged_values_files_read_as_a_charts_values_yaml(tmp_path: Path) -> None:
    # source-controller writes the merged map as the chart's values.yaml; helm must read it
    # back as the merge of the files.
    merged = merge_values_files([("values.yaml", DOC_A), ("prod.yaml", DOC_B), ("t.yaml", TRICKY)])
    chart = dump_chart(tmp_path / "replaced", merged)
    theirs = rendered_values(chart)
    assert theirs == merged
    assert theirs["gone"] is None  # a null in the chart's own values.yaml stays
    assert theirs["image"] == {"repository": "app", "tag": "2.0", "pullPolicy": "IfNotPresent"}


def test_plain_values_from_merge_like_helm_values_files(empty_chart: Path, tmp_path: Path) -> None:
    ours = compose_values([ValuesSource(DOC_A), None, ValuesSource(DOC_B)], read_values(SPEC))
    theirs = rendered_values(
        empty_chart,
        "-f",
        _file(tmp_path, "a.yaml", DOC_A),
        "-f",
        _file(tmp_path, "b.yaml", DOC_B),
        "-f",
        _file(tmp_path, "spec.yaml", SPEC),
    )
    assert theirs == ours
    assert ours["image"] == {"repository": "app", "tag": "2.0", "pullPolicy": "Always"}
    assert ours["maps"] == {"a": {"b": 1, "c": 2}, "d": 3}


def test_target_paths_parse_into_the_merged_documents_like_set(
    empty_chart: Path, tmp_path: Path
) -> None:
    paths = [("list[1]", "x"), ("maps.a.e", "{1,true}"), ("image.tag", "3.0")]
    entries: list[Any] = [ValuesSource(DOC_A), ValuesSource(DOC_B)]
    entries += [ValuesSource(value, target_path=path) for path, value in paths]
    ours = compose_values(entries, None)
    flags = [part for path, value in paths for part in ("--set", f"{path}={value}")]
    theirs = rendered_values(
        empty_chart,
        "-f",
        _file(tmp_path, "a.yaml", DOC_A),
        "-f",
        _file(tmp_path, "b.yaml", DOC_B),
        *flags,
    )
    assert theirs == ours
    assert ours["list"] == ["x", "x"]
    assert ours["image"]["tag"] == "3.0"
