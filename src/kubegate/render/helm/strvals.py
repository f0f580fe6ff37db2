"""Helm's ``--set`` parser (``helm.sh/helm/v4/pkg/strvals/parser.go``), behaviour for behaviour.

helm-controller merges a ``valuesFrom`` entry that has a ``targetPath`` by handing
``<targetPath>=<value>`` to ``strvals.ParseInto`` (or ``ParseIntoString``) on the values composed
so far (fluxcd/pkg ``chartutil/values.go``). Called by :mod:`kubegate.render.helm.values`; the
oracle tests in ``tests/unit/test_helm_strvals.py`` compare it with ``helm template --set``.

What is ported, and why it matters:

- The grammar: ``a.b=1,c[0]=x,d[1][0].e=y``, ``{a,b}`` lists (no comma needed after ``}``), a
  backslash escapes any character (``\\,``, ``\\.``, ``\\=``, ``\\[``) in keys, indexes and values.
- Typing (``typedVal``): ``true``/``false``/``null`` compared case-insensitively (Go's
  ``strings.EqualFold``), ``0`` and decimal integers that fit in int64 and do not start with
  ``0`` become ints, anything else stays a string; ``ParseIntoString`` keeps every value a
  string. ``null`` sets the key to ``None`` (``helm template`` then deletes a chart default).
- The in-place merge: an existing map or list is updated in place (Go maps and slice elements
  are shared references), a list that must grow is replaced by a longer copy (Go's
  ``make``+``copy``). helm-controller's composition depends on that sharing, so
  :mod:`~kubegate.render.helm.values` relies on these exact semantics.
- The quirks: ``a[0]`` with no ``=`` leaves ``a`` an (empty) list, ``a.`` and ``.a=1`` and
  ``[0]=1`` set nothing, ``a={}`` is ``[""]``, a trailing ``a[0].b=`` drops ``b``, a key used
  as a map and then as a list (or the reverse, or after ``null``) is an error (a Go panic that
  ``recover`` turns into one).
- The limits: list indexes above 65536 (``MaxIndex``) and more than 30 dotted levels
  (``MaxNestedNameLevel``) are errors. Beyond Helm, because the text is untrusted: at most
  :data:`MAX_DEPTH` nested levels in all (Go's growable stack takes a million; Python's does
  not) and :data:`MAX_LIST_SLOTS` list elements allocated per parse (Helm's index cap alone
  lets a 1 MiB ConfigMap allocate tens of gigabytes through many distinct ``k[65536]`` keys).

Every error is a :class:`kubegate.errors.RenderError` with a one-line reason; ``values`` may be
partly updated when it is raised (as in Helm, whose callers then fail as a whole).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Final

from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)

#: Largest list index Helm accepts (``strvals.MaxIndex``, 64 Ki).
MAX_INDEX: Final = 65536
#: Most dotted name levels Helm accepts (``strvals.MaxNestedNameLevel``).
MAX_NESTED_NAME_LEVEL: Final = 30
#: Most nested levels (maps and lists together) kubegate accepts; Helm has no bound on lists.
MAX_DEPTH: Final = 200
#: Most list elements one parse may allocate (every growth counts its new length).
MAX_LIST_SLOTS: Final = 4 * 1024 * 1024

_KEY_STOP: Final = frozenset("=[,.")
_INDEX_STOP: Final = frozenset("]")
_ITEM_STOP: Final = frozenset("[.=")
_VALUE_STOP: Final = frozenset(",")
_LIST_STOP: Final = frozenset(",}")
# strconv.Atoi / ParseInt(s, 10, 64): an optional sign and ASCII digits, nothing else.
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


@dataclass(slots=True)
class Budget:
    """List elements still allocatable; one budget may be shared by several parses."""

    slots: int = MAX_LIST_SLOTS
    spent: int = 0

    def charge(self, count: int) -> None:
        """Account for ``count`` new list elements, or refuse them."""
        self.spent += count
        if self.spent > self.slots:
            raise RenderError(f"list indexes allocate more than {self.slots} elements in all")


def parse_into(text: str, values: dict[str, Any], *, budget: Budget | None = None) -> None:
    """Merge the ``--set`` expression ``text`` into ``values`` in place (``strvals.ParseInto``).

    Raises :class:`RenderError` on bad syntax or when a limit is reached.
    """
    _Parser(text, string_values=False, budget=budget or Budget()).parse(values)


def parse_into_string(text: str, values: dict[str, Any], *, budget: Budget | None = None) -> None:
    """Like :func:`parse_into`, every value kept a string (``strvals.ParseIntoString``)."""
    _Parser(text, string_values=True, budget=budget or Budget()).parse(values)


def _equal_fold(text: str, word: str) -> bool:
    """Go's ``strings.EqualFold`` for an ASCII lower-case ``word``.

    Simple Unicode case folding: besides ASCII case, only U+017F (long s) folds onto a letter of
    ``true``/``false``/``null`` (U+212A, the Kelvin sign, folds onto ``k``).
    """
    if len(text) != len(word):
        return False
    return all(
        c == w or (c.isascii() and c.lower() == w) or (c == "\u017f" and w == "s")
        for c, w in zip(text, word, strict=True)
    )


def typed_value(text: str, *, string_values: bool = False) -> Any:
    """A ``--set`` value with Helm's type inference (``strvals.typedVal``)."""
    if string_values:
        return text
    if _equal_fold(text, "true"):
        return True
    if _equal_fold(text, "false"):
        return False
    if _equal_fold(text, "null"):
        return None
    if text == "0":
        return 0
    # Helm parses a number only when it does not start with "0" ("007" stays a string).
    if text and text[0] != "0":
        number = _parse_int64(text)
        if number is not None:
            return number
    return text


def _parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``, or None where it fails (without a huge ``int()``)."""
    if not _DECIMAL.fullmatch(text) or len(text.lstrip("+-").lstrip("0")) > 19:
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _atoi(text: str) -> int:
    """``strconv.Atoi`` on a 64-bit platform."""
    number = _parse_int64(text)
    if number is None:
        raise RenderError(f"error parsing index: invalid list index {_describe(text)}")
    return number


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    # strvals.set: an empty key is silently not set ("[0]=1", ".a=1").
    if key:
        data[key] = value


def _describe(key: str) -> str:
    shown = key if len(key) <= 60 else key[:60] + "..."
    return repr(shown)


class _Parser:
    """One pass over a ``--set`` expression (``strvals.parser`` with its rune reader).

    Methods that Go lets return ``io.EOF`` return ``True`` for it (the end of the text, which
    ``parse`` treats as success); every other error raises at once.
    """

    __slots__ = ("_budget", "_pos", "_string_values", "_text")

    def __init__(self, text: str, *, string_values: bool, budget: Budget) -> None:
        self._text = text
        self._pos = 0
        self._string_values = string_values
        self._budget = budget

    # -- the rune reader -------------------------------------------------------------------
    def _read(self) -> str | None:
        if self._pos >= len(self._text):
            return None
        char = self._text[self._pos]
        self._pos += 1
        return char

    def _unread(self) -> None:
        self._pos -= 1

    def _runes_until(self, stop: frozenset[str]) -> tuple[str, str | None, bool]:
        """Text up to a stop character, escapes applied: (text, stop character, at end)."""
        out: list[str] = []
        while True:
            char = self._read()
            if char is None:
                return "".join(out), None, True
            if char in stop:
                return "".join(out), char, False
            if char == "\\":
                escaped = self._read()
                if escaped is None:
                    return "".join(out), None, True
                out.append(escaped)
            else:
                out.append(char)

    def _typed(self, text: str) -> Any:
        return typed_value(text, string_values=self._string_values)

    # -- the grammar -----------------------------------------------------------------------
    def parse(self, data: dict[str, Any]) -> None:
        while not self._key(data, 0, 0):
            pass

    def _key(self, data: dict[str, Any], level: int, depth: int) -> bool:
        if depth > MAX_DEPTH:
            raise RenderError(f"values nest deeper than {MAX_DEPTH} levels")
        key, last, at_end = self._runes_until(_KEY_STOP)
        if at_end:
            if not key:
                return True
            raise RenderError(f"key {_describe(key)} has no value")
        if last == "[":
            index = self._key_index()
            items: list[Any] = []
            if key in data:
                existing = data[key]
                if not isinstance(existing, list):
                    raise RenderError(f"key {_describe(key)} is not a list")
                items = existing
            items, at_end = self._list_item(items, index, level, depth + 1)
            _set(data, key, items)
            return at_end
        if last == "=":
            return self._assign(data, key)
        if last == ",":
            raise RenderError(f"key {_describe(key)} has no value (cannot end with ,)")
        # last == ".": a nested map.
        level += 1
        if level > MAX_NESTED_NAME_LEVEL:
            raise RenderError(
                "value name nested level is greater than maximum supported nested level "
                f"of {MAX_NESTED_NAME_LEVEL}"
            )
        inner: dict[str, Any] = {}
        if key in data:
            existing = data[key]
            if not isinstance(existing, dict):
                raise RenderError(f"key {_describe(key)} is not a map")
            inner = existing
        at_end = self._key(inner, level, depth + 1)
        if not at_end and not inner:
            raise RenderError(f"key map {_describe(key)} has no value")
        if inner:
            _set(data, key, inner)
        return at_end

    def _assign(self, data: dict[str, Any], key: str) -> bool:
        """``key=`` read: a ``{...}`` list, or a scalar up to the next comma."""
        items, status = self._value_list()
        if status == "list":
            _set(data, key, items)
            return False
        if status == "end":
            _set(data, key, "")
            return True
        text = self._runes_until(_VALUE_STOP)[0]
        _set(data, key, self._typed(text))
        return False

    def _key_index(self) -> int:
        text, _, at_end = self._runes_until(_INDEX_STOP)
        if at_end:
            raise RenderError("error parsing index: no closing ']'")
        return _atoi(text)

    def _set_index(self, items: list[Any], index: int, value: Any) -> list[Any]:
        if index < 0:
            raise RenderError(f"negative {index} index not allowed")
        if index > MAX_INDEX:
            raise RenderError(
                f"index of {index} is greater than maximum supported index of {MAX_INDEX}"
            )
        if len(items) <= index:
            # Go allocates a new slice: whoever else holds the old list keeps it unchanged.
            self._budget.charge(index + 1)
            grown = [*items, *([None] * (index + 1 - len(items)))]
            grown[index] = value
            return grown
        items[index] = value
        return items

    def _list_item(
        self, items: list[Any], index: int, level: int, depth: int
    ) -> tuple[list[Any], bool]:
        if index < 0:
            raise RenderError(f"negative {index} index not allowed")
        if depth > MAX_DEPTH:
            raise RenderError(f"values nest deeper than {MAX_DEPTH} levels")
        rest, last, at_end = self._runes_until(_ITEM_STOP)
        if rest:
            raise RenderError(f"unexpected data at end of array index: {_describe(rest)}")
        if at_end:
            return items, True
        if last == "=":
            value_items, status = self._value_list()
            if status == "list":
                return self._set_index(items, index, value_items), False
            if status == "end":
                return self._set_index(items, index, ""), False
            text = self._runes_until(_VALUE_STOP)[0]
            return self._set_index(items, index, self._typed(text)), False
        if last == "[":
            next_index = self._key_index()
            nested: list[Any] = []
            if len(items) > index and items[index] is not None:
                existing = items[index]
                if not isinstance(existing, list):
                    raise RenderError(f"list element {index} is not a list")
                nested = existing
            nested, at_end = self._list_item(nested, next_index, level, depth + 1)
            if at_end:
                return items, True
            return self._set_index(items, index, nested), False
        # last == ".": a map inside the list.
        inner: dict[str, Any] = {}
        if len(items) > index:
            existing = items[index]
            if isinstance(existing, dict):
                inner = existing
            else:
                # Helm replaces the element in place ("indices out of order").
                items[index] = inner
        if self._key(inner, level, depth + 1):
            # Go returns io.EOF before setIndex: a trailing "a[0].b=" does not add the map.
            return items, True
        return self._set_index(items, index, inner), False

    def _value_list(self) -> tuple[list[Any], str]:
        """A ``{a,b}`` list: (items, "list"), ([], "end") at the end, ([], "scalar") otherwise."""
        first = self._read()
        if first is None:
            return [], "end"
        if first != "{":
            self._unread()
            return [], "scalar"
        items: list[Any] = []
        while True:
            text, last, at_end = self._runes_until(_LIST_STOP)
            if at_end:
                raise RenderError("list must terminate with '}'")
            items.append(self._typed(text))
            if last == "}":
                after = self._read()
                if after is not None and after != ",":
                    self._unread()
                return items, "list"
