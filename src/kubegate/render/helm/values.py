"""A HelmRelease's values and release name, composed as Flux composes them.

Pure functions, no I/O; the HelmRelease stage (``kubegate.render.helm``) resolves the objects and
files and calls them:

- :func:`compose_values`: ``valuesFrom`` entries in order, then ``spec.values``
  (fluxcd/pkg ``chartutil/values.go`` ``ChartValuesFromReferences``, the code helm-controller
  v1.6 calls). The result is what ``helm template -f`` receives; the chart's own defaults stay
  in the chart and Helm coalesces them as helm-controller's SDK call does.
- :func:`merge_values_files`: ``spec.chart.spec.valuesFiles`` merged in order into the map that
  replaces the chart's ``values.yaml`` (source-controller ``internal/helm/chart``
  ``mergeChartValues`` / ``mergeFileValues``), and :func:`replaces_chart_values` for when it does.
- :func:`release_name` / :func:`release_namespace`: helm-controller ``api/v2`` ``GetReleaseName``
  and ``internal/release/name.go`` ``ShortenName``.
- :func:`read_values`: YAML values text decoded as Helm's ``common.ReadValues`` does
  (``sigs.k8s.io/yaml`` on go-yaml v2: ``yes``/``on``/``y`` are booleans, timestamps stay
  strings, non-string keys become strings).

Maps are merged like Go's ``MergeMaps``: the result shares nested maps and lists with its
inputs, and a ``targetPath`` is then parsed *in place* into it. Upstream depends on that sharing
(a ``targetPath`` under a map that only ``spec.values`` sets survives the final merge with
``spec.values``, one under a map an earlier ``valuesFrom`` document also sets does not), so the
port keeps it; ``spec.values`` is copied first so the caller's mapping is never changed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import posixpath
import re
import struct
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import yaml

from kubegate import yamlload
from kubegate.errors import RenderError
from kubegate.render.helm.strvals import Budget, parse_into, parse_into_string

_logger = logging.getLogger(__name__)

#: The key a ``valuesFrom`` entry reads when ``valuesKey`` is not set (``GetValuesKey``).
DEFAULT_VALUES_KEY: Final = "values.yaml"
#: A chart's own values file (``chartutil.ValuesfileName``).
CHART_VALUES_FILE: Final = "values.yaml"
#: Helm release names longer than this are shortened by helm-controller (``ShortenName``).
MAX_RELEASE_NAME: Final = 53
_SHORT_HASH: Final = 12
#: How deep a values document may nest (Python recursion; real charts use a few levels).
_MAX_DEPTH: Final = 400

# helm-controller escapes these (backslash first) before ParseIntoString for `literal: true`.
_LITERAL_ESCAPES: Final = {"\\": "\\\\", ",": "\\,", "[": "\\[", "]": "\\]", "{": "\\{", "}": "\\}"}


@dataclass(frozen=True, slots=True)
class ValuesSource:
    """One resolved ``valuesFrom`` entry: the text stored under its ``valuesKey``.

    ``data`` is the ConfigMap's ``data[key]`` or the Secret's decoded ``data[key]``;
    ``target_path`` and ``literal`` are the entry's fields; ``where`` names the reference in
    messages (for example ``"HelmRelease ns/app valuesFrom[0] ConfigMap ns/app-values"``).
    An optional entry whose object or key is missing is not a ValuesSource: pass ``None`` (or
    leave it out), as Flux skips it without any other effect.
    """

    data: str
    target_path: str | None = None
    literal: bool = False
    where: str | None = None


#: What :func:`compose_values` accepts per entry: a :class:`ValuesSource`, ``None`` for a
#: missing optional one, or ``(data, target_path)`` where ``data`` is the text or an already
#: decoded values mapping (the latter only without a target path).
ValuesFromEntry = ValuesSource | tuple[Mapping[str, Any] | str, str | None] | None


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """``override`` merged into a shallow copy of ``base`` (fluxcd/pkg ``MergeMaps``).

    Maps present in both are merged recursively into new maps; anything else from ``override``
    (a list, a scalar, ``None``, a map where ``base`` has none) replaces the value and is shared,
    not copied.
    """
    out = dict(base)
    if override is None:
        return out
    for key, value in override.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = merge_maps(current, value)
        else:
            out[key] = value
    return out


def compose_values(
    values_from: Sequence[ValuesFromEntry],
    spec_values: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The values helm-controller passes to Helm for a HelmRelease.

    ``values_from`` are the resolved ``spec.valuesFrom`` entries in order; ``spec_values`` is
    ``spec.values`` (``None`` when absent). An entry without ``target_path`` is decoded as a
    YAML map and merged over what came before; one with ``target_path`` first merges
    ``spec.values`` into the result, then sets ``<targetPath>=<data>`` with Helm's ``--set``
    parser (``ParseIntoString`` when ``literal`` is set, with ``\\ , [ ] { }`` escaped, or when
    the data is wrapped in single or double quotes, which are trimmed; ``ParseInto``
    otherwise). ``spec.values`` is merged last.

    Raises :class:`RenderError` (``where`` of the entry) when a document is not a YAML map or a
    target path cannot be parsed.
    """
    spec = _jsonable_map(spec_values, where="spec.values") if spec_values is not None else None
    budget = Budget()
    result: dict[str, Any] = {}
    for entry in values_from:
        source = _source_of(entry)
        if source is None:
            continue
        if isinstance(source, dict):
            result = merge_maps(result, source)
            continue
        if source.target_path:
            result = merge_maps(result, spec)
            _merge_target_path(result, source, budget)
            continue
        result = merge_maps(result, read_values(source.data, where=source.where))
    return merge_maps(result, spec)


def _source_of(entry: ValuesFromEntry) -> ValuesSource | dict[str, Any] | None:
    if entry is None or isinstance(entry, ValuesSource):
        return entry
    data, target_path = entry
    if isinstance(data, str):
        return ValuesSource(data=data, target_path=target_path)
    if target_path:
        raise ValueError("a decoded values mapping cannot have a target path")
    return _jsonable_map(data, where=None)


def _merge_target_path(result: dict[str, Any], source: ValuesSource, budget: Budget) -> None:
    path, value = source.target_path or "", source.data
    try:
        if source.literal:
            escaped = "".join(_LITERAL_ESCAPES.get(char, char) for char in value)
            parse_into_string(f"{path}={escaped}", result, budget=budget)
            return
        single = value.startswith("'") and value.endswith("'")
        double = value.startswith('"') and value.endswith('"')
        if single or double:
            # strings.Trim: every leading and trailing quote of either kind goes.
            parse_into_string(f"{path}={value.strip(chr(39) + chr(34))}", result, budget=budget)
            return
        parse_into(f"{path}={value}", result, budget=budget)
    except RenderError as exc:
        raise RenderError(
            f"failed to merge value at targetPath {path!r}: {exc.message}", where=source.where
        ) from exc


def replaces_chart_values(values_files: Sequence[str]) -> bool:
    """Whether ``spec.chart.spec.valuesFiles`` replaces the chart's ``values.yaml`` at all.

    source-controller ``BuildOptions.GetValuesFiles``: no files, or only ``values.yaml``, leave
    the chart as it is.
    """
    if not values_files:
        return False
    return not (len(values_files) == 1 and chart_file_name(values_files[0]) == CHART_VALUES_FILE)


def chart_file_name(path: str) -> str:
    """``path`` cleaned as Go's ``filepath.Clean`` (how a values file is found in a chart)."""
    cleaned = posixpath.normpath(path) if path else "."
    # Go reduces any run of leading slashes to one; POSIX keeps exactly two.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def merge_values_files(
    files: Sequence[tuple[str, str | None]],
    *,
    ignore_missing: bool = False,
    where: str | None = None,
) -> dict[str, Any]:
    """The map that replaces a chart's ``values.yaml`` for ``spec.chart.spec.valuesFiles``.

    ``files`` are ``(path as written, text)`` in the order given; text is ``None`` for a file
    that does not exist. For a packaged chart the path is looked up among the chart's files
    (:func:`chart_file_name`; ``values.yaml`` itself means the chart's own values text); for a
    chart directory in a GitRepository or Bucket it is relative to the source root. A missing
    file is an error unless ``ignore_missing`` (``spec.chart.spec.ignoreMissingValuesFiles``);
    anything else that is not a regular file is always an error, the caller's to raise. Call it
    only when :func:`replaces_chart_values`: the result (possibly empty, when every file was
    missing) then replaces ``values.yaml`` entirely, it is not passed with ``-f``.
    """
    merged: dict[str, Any] = {}
    for path, text in files:
        if text is None:
            if ignore_missing:
                _logger.debug("values file %s missing, ignored", path)
                continue
            raise RenderError(f"no values file found at path '{path}'", where=where)
        try:
            values = read_values(text)
        except RenderError as exc:
            raise RenderError(
                f"unmarshaling values from '{path}' failed: {exc.message}", where=where
            ) from exc
        merged = merge_maps(merged, values)
    return merged


def release_name(
    name: str,
    namespace: str,
    release_name: str | None = None,
    target_namespace: str | None = None,
) -> str:
    """The Helm release name helm-controller uses for a HelmRelease ``namespace/name``.

    ``spec.releaseName``, else ``<targetNamespace>-<name>`` when ``spec.targetNamespace`` is
    set, else the name (``GetReleaseName``; the HelmRelease's own namespace plays no part);
    longer than 53 bytes, its first 40 bytes, ``-`` and 12 hex digits of its SHA-256
    (``ShortenName``).
    """
    del namespace  # kept in the signature for the callers' symmetry; upstream ignores it
    if release_name:
        full = release_name
    elif target_namespace:
        full = f"{target_namespace}-{name}"
    else:
        full = name
    raw = full.encode()
    if len(raw) <= MAX_RELEASE_NAME:
        return full
    digest = hashlib.sha256(raw).hexdigest()[:_SHORT_HASH]
    keep = MAX_RELEASE_NAME - (_SHORT_HASH + 1)
    return raw[:keep].decode(errors="replace") + "-" + digest


def release_namespace(namespace: str, target_namespace: str | None = None) -> str:
    """``spec.targetNamespace``, else the HelmRelease's namespace (``GetReleaseNamespace``)."""
    return target_namespace or namespace


# -- YAML values as Helm reads them ---------------------------------------------------------

_V2_BOOL: Final = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"), True),
    **dict.fromkeys(("on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), False),
    **dict.fromkeys(("off", "Off", "OFF"), False),
}
_V2_NULL: Final = frozenset({"", "~", "null", "Null", "NULL"})
_V2_SPECIAL_FLOAT: Final = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
# go-yaml v2 resolve.go yamlStyleFloat.
_V2_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# strconv.ParseInt(s, 0, 64) / ParseUint(s, 0, 64) prefixes after go-yaml removed every "_".
_GO_BASE0_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[bB](?P<bin>[01]+)|0[oO]?(?P<oct>[0-7]+)"
    r"|(?P<dec>[1-9][0-9]*|0))"
)
# go-yaml v2 parseTimestamp's formats: such a scalar decodes into interface{} as its text.
_V2_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?"
)
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_INT_TAG: Final = "tag:yaml.org,2002:int"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


def _v2_int(text: str) -> int | None:
    match = _GO_BASE0_INT.fullmatch(text)
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    if match["hex"] is not None:
        number = int(match["hex"], 16)
    elif match["bin"] is not None:
        number = int(match["bin"], 2)
    elif match["oct"] is not None:
        number = int(match["oct"], 8)
    else:
        number = int(match["dec"])
    number *= sign
    # ParseInt, else ParseUint (no sign): beyond both, go-yaml tries a float.
    if -(2**63) <= number < 2**63 or (match["sign"] == "" and number < 2**64):
        return number
    return None


def v2_tag(value: str) -> str:
    """The tag go-yaml v2 (``sigs.k8s.io/yaml``) resolves a plain scalar to, for Helm values."""
    if value in _V2_BOOL:
        return _BOOL_TAG
    if value in _V2_NULL:
        return _NULL_TAG
    if value in _V2_SPECIAL_FLOAT:
        return _FLOAT_TAG
    if value == "<<":
        return _MERGE_TAG
    first = value[0]
    if first == ".":
        return _FLOAT_TAG if _go_float(value) else _STR_TAG
    if first in "+-0123456789":
        if first.isdigit() and _V2_TIMESTAMP.fullmatch(value):
            return _STR_TAG
        plain = value.replace("_", "")
        # Any int64 or uint64 is far shorter; a longer run of digits is a float or a string.
        if len(plain) <= 200 and _v2_int(plain) is not None:
            return _INT_TAG
        if _go_float(plain):
            return _FLOAT_TAG
    return _STR_TAG


def _go_float(text: str) -> bool:
    """go-yaml v2's float test: its float syntax, and ParseFloat without a range error."""
    return _V2_FLOAT.fullmatch(text) is not None and math.isfinite(float(text))


class _V2Resolver:
    """Resolver mix-in: plain scalars resolved as go-yaml v2 does (see :func:`v2_tag`)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return v2_tag(value)
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


def _construct_v2_int(loader: Any, node: yaml.ScalarNode) -> int | float:
    plain = str(loader.construct_scalar(node)).replace("_", "")
    number = _v2_int(plain)
    return number if number is not None else float(plain)


def _construct_v2_float(loader: Any, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    special = _V2_SPECIAL_FLOAT.get(text)
    return special if special is not None else float(text.replace("_", ""))


def _construct_v2_bool(loader: Any, node: yaml.ScalarNode) -> bool:
    return _V2_BOOL.get(str(loader.construct_scalar(node)), False)


def _construct_timestamp_text(loader: Any, node: yaml.ScalarNode) -> str:
    # An explicit !!timestamp: go-yaml v2 still gives interface{} the text.
    return str(loader.construct_scalar(node))


class _V2Constructor(yaml.constructor.SafeConstructor):
    """Values as go-yaml v2 decodes them into ``interface{}``."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Hashable, Any]:
        # Keys become JSON strings as they are read: go-yaml v2 keeps `1` and `true` apart
        # (sigs.k8s.io/yaml then names them "1" and "true"), where a Python dict would fold
        # them into one key (1 == True).
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise RenderError(f"unsupported map key of type {type(key).__name__}")
            mapping[_json_key(key, None)] = self.construct_object(value_node, deep=deep)
        return mapping


_V2Constructor.add_constructor(_INT_TAG, _construct_v2_int)
_V2Constructor.add_constructor(_FLOAT_TAG, _construct_v2_float)
_V2Constructor.add_constructor(_BOOL_TAG, _construct_v2_bool)
_V2Constructor.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_text)


class _ValuesLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _V2Constructor,
    _V2Resolver,
    yaml.resolver.Resolver,
):
    """Pure-Python loader with go-yaml v2 scalar resolution (Helm's values reader)."""

    def __init__(self, stream: Any) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _V2Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def read_values(text: str, *, where: str | None = None) -> dict[str, Any]:
    """YAML values text decoded as Helm's ``common.ReadValues`` (empty or ``null``: ``{}``).

    Only the first document counts (go-yaml v2 ``Unmarshal``). Raises :class:`RenderError`
    when the text is not YAML, its first document is not a map, or it holds what JSON cannot
    (a NaN or infinite float, a null or list key): ``sigs.k8s.io/yaml`` refuses those too.
    """
    loader = _ValuesLoader(text)
    try:
        node = loader.get_node() if loader.check_node() else None
        if node is None:
            return {}
        yamlload.check_aliases(node, len(text))
        value = yamlload.construct(node, _ValuesLoader)
    except (yaml.YAMLError, ValueError) as exc:
        raise RenderError(f"values are not valid YAML: {_one_line(exc)}", where=where) from exc
    except RecursionError as exc:
        raise RenderError("values are not valid YAML: nested too deeply", where=where) from exc
    except RenderError as exc:
        raise RenderError(exc.message, where=where) from exc
    finally:
        loader.dispose()
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError(f"values must be a YAML map, not {_yaml_kind(value)}", where=where)
    return _jsonable_map(value, where=where)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a scalar"


def _jsonable_map(value: Mapping[str, Any], *, where: str | None) -> dict[str, Any]:
    """A deep copy of ``value`` with JSON's types only (sigs.k8s.io/yaml's conversion)."""
    return {_json_key(key, where): _jsonable(item, where, 1) for key, item in value.items()}


def _jsonable(value: Any, where: str | None, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise RenderError(f"values nest deeper than {_MAX_DEPTH} levels", where=where)
    if isinstance(value, Mapping):
        return {
            _json_key(key, where): _jsonable(item, where, depth + 1) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(item, where, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise RenderError(f"json: unsupported value: {value}", where=where)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):  # !!binary
        return value.decode(errors="replace")
    # Anything else (a !!set, a datetime from a caller's loader) has no JSON form: its text.
    return str(value)


def _json_key(key: Any, where: str | None) -> str:
    """A map key as ``sigs.k8s.io/yaml`` turns it into a JSON object key."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _go_float32_text(key)
    raise RenderError(f"unsupported map key of type {type(key).__name__}", where=where)


def _float32(number: float) -> float:
    return float(struct.unpack("f", struct.pack("f", number))[0])


def _go_float32_text(number: float) -> str:
    """``strconv.FormatFloat(number, 'g', -1, 32)`` with go-yaml's names for the specials."""
    if math.isnan(number):
        return ".nan"
    if math.isinf(number) or abs(number) > 3.4028234663852886e38:
        return ".inf" if number > 0 else "-.inf"
    single = _float32(number)
    shortest = f"{single:.8e}"
    for precision in range(9):  # the fewest digits that read back as the same float32
        shortest = f"{single:.{precision}e}"
        if _float32(float(shortest)) == single:
            break
    exact = Decimal(shortest)
    exponent = exact.adjusted()
    if exponent < -4 or exponent >= 6:  # Go's %g with the shortest digits uses precision 6
        mantissa, _, _ = shortest.partition("e")
        return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return format(exact, "f")
