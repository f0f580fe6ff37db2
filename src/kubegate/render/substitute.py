"""Flux ``postBuild`` variable substitution, as kustomize-controller applies it after the build.

Syntax (FLUX.md): ``${var}``, ``${var:=default}`` (``${var:-default}`` too, as envsubst reads it),
``$${var}`` for a literal ``${var}``; a bare ``$var`` is left alone. Variable names must match
``^[_[:alpha:]][_[:alpha:][:digit:]]*$``; values lose their newlines. Strict: a variable that is
neither defined nor defaulted is an error naming it. Objects labelled or annotated
``kustomize.toolkit.fluxcd.io/substitute: disabled`` are skipped. The substitution runs on the
object's YAML text (as Flux does) and the result is parsed again. Called by the fleet walker.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from kubegate.errors import RenderError
from kubegate.render.yamlfile import dump, load_stream

DISABLE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
# One pass over the text: an escaped `$${...}`, or `${name}` with an optional `:=`/`:-` default.
_EXPR = re.compile(r"\$\$\{|\$\{([^}:=\-]*)(?:(:?[=-])([^}]*))?\}")


class UndefinedVariableError(RenderError):
    """A ``${var}`` with no value and no default (kustomize-controller's strict mode)."""

    def __init__(self, variable: str, where: str | None = None) -> None:
        super().__init__(f"variable {variable!r} is not defined and has no default", where=where)
        self.variable = variable


def check_names(variables: Mapping[str, str], where: str) -> None:
    """Refuse variable names Flux would refuse."""
    for name in variables:
        if not _NAME.match(name):
            raise RenderError(
                f"variable name {name!r} is invalid, must match "
                "^[_[:alpha:]][_[:alpha:][:digit:]]*$",
                where=where,
            )


def substitute_text(text: str, variables: Mapping[str, str]) -> str:
    """Expand ``text``; raise UndefinedVariableError for the first undefined variable."""

    def expand(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            # `$${var}` is the escape for a literal `${var}`.
            return "${"
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if not _NAME.match(name or ""):
            return whole
        if name in variables:
            value = variables[name]
            if operator and operator.startswith(":") and value == "":
                return default or ""
            return value
        if operator is not None:
            return default or ""
        raise UndefinedVariableError(name)

    return _EXPR.sub(expand, text)


def is_disabled(obj: Mapping[str, Any]) -> bool:
    """Whether the object opted out of substitution by label or annotation."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return False
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if isinstance(values, dict) and values.get(DISABLE_KEY) == "disabled":
            return True
    return False


def substitute_object(
    obj: dict[str, Any], variables: Mapping[str, str], where: str, text: str | None = None
) -> Any:
    """The object after substitution (the same object when disabled or nothing to expand).

    ``text`` is the object's YAML as kustomize printed it, when known (saves a serialisation).
    """
    if is_disabled(obj):
        return obj
    if text is None:
        text = dump(obj)
    if "$" not in text:
        return obj
    try:
        expanded = substitute_text(text, variables)
    except UndefinedVariableError as exc:
        raise UndefinedVariableError(exc.variable, where=where) from exc
    if expanded == text:
        return obj
    docs = load_stream(expanded, where)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RenderError("substitution did not yield one object", where=where)
    return docs[0]


def data_of(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    """Variables a ConfigMap or Secret provides (Secret ``data`` base64-decoded), sans newlines.

    Raises RenderError for a Secret value that is not base64 UTF-8 text; :func:`variables_of`
    keeps such values aside instead.
    """
    values, unreadable = variables_of(obj)
    if unreadable:
        raise RenderError(f"Secret data key {unreadable[0]!r} is not base64 UTF-8", where=where)
    return values


def variables_of(obj: Mapping[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Variables a ConfigMap or Secret provides, and the Secret keys that are not text.

    A Secret often holds binary data (a keystore, a certificate bundle) that nothing substitutes:
    only a value actually used by a ``${var}`` has to be text, so the fleet walker reports those
    keys only when a variable names one.
    """
    values: dict[str, str] = {}
    unreadable: list[str] = []
    data = obj.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            text = "" if value is None else str(value)
            if obj.get("kind") == "Secret":
                try:
                    text = base64.b64decode(text, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    unreadable.append(str(key))
                    continue
            values[str(key)] = text.replace("\n", "")
    string_data = obj.get("stringData")
    if obj.get("kind") == "Secret" and isinstance(string_data, dict):
        for key, value in string_data.items():
            values[str(key)] = ("" if value is None else str(value)).replace("\n", "")
            if str(key) in unreadable:
                unreadable.remove(str(key))
    return values, tuple(unreadable)
