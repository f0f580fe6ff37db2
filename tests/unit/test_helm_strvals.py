"""Helm's ``--set`` parser port: grammar, typing, in-place merge and hostile input.

Expectations follow helm v4.2 ``pkg/strvals/parser.go`` (read upstream; the same behaviour is
checked against the real helm in ``tests/integration/test_helm_strvals_oracle.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubegate.errors import RenderError
from kubegate.render.helm.strvals import (
    MAX_INDEX,
    Budget,
    parse_into,
    parse_into_string,
    typed_value,
)


def _parse(text: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {} if base is None else base
    parse_into(text, values)
    return values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1,b=2", {"a": 1, "b": 2}),
        ("a.b.c=x", {"a": {"b": {"c": "x"}}}),
        ("a[0]=x,a[2]=z", {"a": ["x", None, "z"]}),
        ("a[1][0]=x", {"a": [None, ["x"]]}),
        ("a[0].b=1,a[0].c=2", {"a": [{"b": 1, "c": 2}]}),
        ("a={x,y}", {"a": ["x", "y"]}),
        ("a={x,y}b=1", {"a": ["x", "y"], "b": 1}),
        ("a={}", {"a": [""]}),
        ("a=x\\,y", {"a": "x,y"}),
        ("a\\.b=1", {"a.b": 1}),
        ("a=b=c", {"a": "b=c"}),
        ("a=", {"a": ""}),
        ("a=1,", {"a": 1}),
        ("a.", {}),
        (".a=1", {}),
        ("[0]=1", {}),
        ("a[0]", {"a": []}),
        ("a[0].b=", {"a": []}),
        ("a[0].b=,c=1", {"a": [{"b": ""}], "c": 1}),
        ("a[1]=5,a[1].x=1", {"a": [None, {"x": 1}]}),
        ("", {}),
    ],
)
def test_grammar(text: str, expected: dict[str, Any]) -> None:
    assert _parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("nUlL", None),
        ("fal\u017fe", False),  # Go's EqualFold folds the long s onto "s"
        ("0", 0),
        ("00", "00"),
        ("007", "007"),
        ("-12", -12),
        ("+7", 7),
        ("-0", 0),
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", "9223372036854775808"),
        ("-9223372036854775808", -9223372036854775808),
        ("1.5", "1.5"),
        ("1e3", "1e3"),
        ("1_000", "1_000"),
        ("\u0663", "\u0663"),  # a non-ASCII digit is not a Go digit
        (" 1", " 1"),
        ("", ""),
    ],
)
def test_typed_value(text: str, expected: Any) -> None:
    got = typed_value(text)
    assert got == expected
    assert type(got) is type(expected)


def test_string_variant_keeps_every_value_a_string() -> None:
    values: dict[str, Any] = {}
    parse_into_string("a=1,b=true,c=null,d={1,false},e=", values)
    assert values == {"a": "1", "b": "true", "c": "null", "d": ["1", "false"], "e": ""}


def test_parse_into_updates_existing_maps_and_lists_in_place() -> None:
    shared_map = {"x": 1}
    shared_list = [1, 2]
    values: dict[str, Any] = {"m": shared_map, "l": shared_list}
    parse_into("m.y=2,l[1]=b", values)
    # Go maps and in-range slice writes are shared: the same objects changed.
    assert values["m"] is shared_map
    assert shared_map == {"x": 1, "y": 2}
    assert values["l"] is shared_list
    assert shared_list == [1, "b"]


def test_growing_a_list_replaces_it_with_a_copy() -> None:
    shared_list = [1]
    values: dict[str, Any] = {"l": shared_list}
    parse_into("l[2]=c", values)
    # Go's make+copy: the old slice (anyone else holding it) is unchanged.
    assert shared_list == [1]
    assert values["l"] == [1, None, "c"]


@pytest.mark.parametrize(
    "text",
    [
        "a=1,,b=2",
        "a",
        "a[",
        "a[x]=1",
        "a[-1]=1",
        f"a[{MAX_INDEX + 1}]=1",
        "a[0]x=1",
        "a={b,c",
        "a.b=1,a[0]=2",
        "a[0]=1,a.b=2",
        "a=null,a.b=1",
        "a[0]=s,a[0][1]=t",
        ".".join(f"k{i}" for i in range(32)) + "=1",
        ",",
    ],
)
def test_bad_syntax_is_a_one_line_render_error(text: str) -> None:
    with pytest.raises(RenderError) as caught:
        _parse(text)
    assert "\n" not in caught.value.diagnostics()


def test_nested_name_level_boundary() -> None:
    deepest = ".".join(f"k{i}" for i in range(31)) + "=1"
    values = _parse(deepest)
    for i in range(30):
        values = values[f"k{i}"]
    assert values == {"k30": 1}


# -- hostile input: bounded time and memory (generous bounds, the machine is shared) ------


@pytest.mark.parametrize("index", ["999999999", "99999999999999999999999999999", "9" * 100_000])
def test_huge_index_is_refused_before_any_allocation(index: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match="index"):
        _parse(f"a[{index}]=x")
    assert time.monotonic() - started < 5


def test_many_maximal_lists_exhaust_the_budget() -> None:
    # Helm alone would allocate 65537 slots per key: 70 keys are 4.6 million elements.
    text = ",".join(f"k{i}[{MAX_INDEX}]=x" for i in range(70))
    started = time.monotonic()
    with pytest.raises(RenderError, match="allocate more than"):
        _parse(text)
    assert time.monotonic() - started < 10


def test_quadratic_list_growth_is_bounded() -> None:
    text = ",".join(f"a[{i}]=x" for i in range(MAX_INDEX))
    started = time.monotonic()
    with pytest.raises(RenderError, match="allocate more than"):
        _parse(text)
    assert time.monotonic() - started < 10


def test_a_budget_is_shared_between_parses() -> None:
    budget = Budget(slots=100)
    values: dict[str, Any] = {}
    parse_into("a[59]=x", values, budget=budget)
    with pytest.raises(RenderError, match="allocate more than 100"):
        parse_into("b[59]=x", values, budget=budget)


def test_deep_list_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(RenderError, match="nest deeper"):
        _parse("a" + "[0]" * 10_000 + "=1")


def test_a_megabyte_value_parses_in_linear_time() -> None:
    started = time.monotonic()
    values = _parse("a=" + "x" * 1_000_000 + ",b={" + "y," * 100_000 + "}")
    assert len(values["a"]) == 1_000_000
    assert len(values["b"]) == 100_001
    assert time.monotonic() - started < 10
