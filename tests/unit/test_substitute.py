"""postBuild substitution syntax and rules (FLUX.md step 5)."""

from __future__ import annotations

import pytest

from kubegate.errors import RenderError
from kubegate.render.substitute import (
    UndefinedVariableError,
    check_names,
    data_of,
    is_disabled,
    substitute_object,
    substitute_text,
    variables_of,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${a}", "A"),
        ("x-${a}-${b}", "x-A-B"),
        ("${missing:=fallback}", "fallback"),
        ("${missing:-fallback}", "fallback"),
        ("${a:=fallback}", "A"),
        ("${empty:=fallback}", "fallback"),
        ("$${a}", "${a}"),
        ("$a and $b", "$a and $b"),
        ("${missing:=}", ""),
        ("no vars", "no vars"),
    ],
)
def test_syntax(text: str, expected: str) -> None:
    assert substitute_text(text, {"a": "A", "b": "B", "empty": ""}) == expected


def test_undefined_variable_is_an_error_naming_it() -> None:
    with pytest.raises(UndefinedVariableError) as info:
        substitute_text("image: ${registry}/app", {"other": "x"})
    assert info.value.variable == "registry"


def test_invalid_variable_names_are_refused() -> None:
    check_names({"ok_1": "", "_x": ""}, "here")
    with pytest.raises(RenderError, match="1bad"):
        check_names({"1bad": "x"}, "here")
    with pytest.raises(RenderError, match="a-b"):
        check_names({"a-b": "x"}, "here")


def test_object_substitution_reparses_yaml() -> None:
    obj = {"kind": "Deployment", "spec": {"replicas": "${n}", "image": "${img}"}}
    out = substitute_object(obj, {"n": "3", "img": "nginx:1.0"}, "here")
    # Flux substitutes the YAML text: a number stays a number once parsed again.
    assert out == {"kind": "Deployment", "spec": {"replicas": 3, "image": "nginx:1.0"}}


@pytest.mark.parametrize("field", ["labels", "annotations"])
def test_opt_out_by_label_or_annotation(field: str) -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {field: {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}},
        "data": {"x": "${undefined}"},
    }
    assert is_disabled(obj)
    assert substitute_object(obj, {"a": "b"}, "here") is obj


def test_secret_data_is_base64_decoded_and_newlines_dropped() -> None:
    secret = {"kind": "Secret", "data": {"k": "dmFsdWUK"}, "stringData": {"s": "a\nb"}}
    assert data_of(secret, "s") == {"k": "value", "s": "ab"}
    with pytest.raises(RenderError, match="base64"):
        data_of({"kind": "Secret", "data": {"k": "!!"}}, "s")
    assert data_of({"kind": "ConfigMap", "data": {"k": "v\n"}}, "c") == {"k": "v"}


def test_binary_secret_keys_are_kept_aside_not_refused() -> None:
    secret = {
        "kind": "Secret",
        "data": {"keystore.p12": "gIGCgw==", "token": "YWJj", "both": "gA=="},
        "stringData": {"both": "text"},
    }
    # stringData wins over data (the API server merges it on top), so `both` is text.
    assert variables_of(secret) == ({"token": "abc", "both": "text"}, ("keystore.p12",))
