"""Packagist (PHP) version order: PHP's ``version_compare``, which Composer uses.

A leading ``v`` is dropped (Composer normalises ``v1.2`` to ``1.2``); the version is
canonicalised (``-``, ``_`` and ``+`` become ``.``, a ``.`` goes between digit and non-digit
runs), then compared part by part: numbers numerically,
words by their special form ``dev < alpha = a < beta = b < RC = rc < # (a number) < pl = p``
(prefix match; unknown words first). When one version has parts left, a number there makes it
newer, a word is weighed against a number. Mirrors ``ext/standard/versioning.c``. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

from functools import lru_cache

from kubegate.match.versions.semverlike import number_value

#: (prefix, order) in the order PHP tries them; a number compares as "#".
_SPECIAL_FORMS = (
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
)
_NUMBER = "#N#"


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


@lru_cache(maxsize=65536)
def canonicalize(version: str) -> tuple[str, ...]:
    """``php_canonicalize_version`` split at ``.``; the first character is kept as is."""
    if version.startswith("#"):
        return tuple(version.split("."))
    out = [version[0]]
    previous = version[0]
    for char in version[1:]:
        last = out[-1]
        digit_now, digit_before = _is_digit(char), _is_digit(previous)
        letter_now = not digit_now and char != "."
        letter_before = not digit_before and previous != "."
        if char in "-_+":
            if last != ".":
                out.append(".")
        elif (letter_before and digit_now) or (digit_before and letter_now):
            if last != ".":
                out.append(".")
            out.append(char)
        else:
            out.append(char)
        previous = char
    return tuple("".join(out).split("."))


def _special_order(form: str) -> int:
    for prefix, order in _SPECIAL_FORMS:
        if form.startswith(prefix):
            return order
    return -1


def _compare_forms(a: str, b: str) -> int:
    left, right = _special_order(a), _special_order(b)
    return (left > right) - (left < right)


def _compare_part(a: str, b: str) -> int:
    digit_a, digit_b = a[:1].isdigit() and a[:1].isascii(), b[:1].isdigit() and b[:1].isascii()
    if digit_a and digit_b:
        left, right = _leading_int(a), _leading_int(b)
        return (left > right) - (left < right)
    if not digit_a and not digit_b:
        return _compare_forms(a, b)
    return _compare_forms(_NUMBER, b) if digit_a else _compare_forms(a, _NUMBER)


def _leading_int(text: str) -> int:
    # strtol: the leading digit run.
    end = 0
    while end < len(text) and _is_digit(text[end]):
        end += 1
    return number_value(text[:end])


def _strip_v(version: str) -> str:
    return version[1:] if version[:1] in ("v", "V") and version[1:2].isdigit() else version


def php_version_compare(a: str, b: str) -> int:
    """PHP ``version_compare(a, b)`` as -1, 0 or 1."""
    # The C code recurses on (rest, "#N#"); the loop below is that tail recursion unrolled.
    while True:
        a, b = _strip_v(a), _strip_v(b)
        if not a or not b:
            return (bool(a) > bool(b)) - (bool(a) < bool(b))
        parts_a, parts_b = canonicalize(a), canonicalize(b)
        i = j = 0
        more_a = more_b = True
        compare = 0
        # C tests the rest of the string (``*p1``), not the current part: an empty part
        # followed by more ("." then "x") still compares, so the recursion always progresses.
        while (
            (parts_a[i] or i < len(parts_a) - 1)
            and (parts_b[j] or j < len(parts_b) - 1)
            and more_a
            and more_b
        ):
            more_a, more_b = i < len(parts_a) - 1, j < len(parts_b) - 1
            compare = _compare_part(parts_a[i], parts_b[j])
            if compare:
                return compare
            if more_a:
                i += 1
            if more_b:
                j += 1
        if more_a:
            rest = ".".join(parts_a[i:])
            if _is_digit(rest[:1]):
                return 1
            a, b = rest, _NUMBER
        elif more_b:
            rest = ".".join(parts_b[j:])
            if _is_digit(rest[:1]):
                return -1
            a, b = _NUMBER, rest
        else:
            return 0


class PackagistComparator:
    """PHP ``version_compare`` order."""

    name = "packagist"
    ecosystems = frozenset({"Packagist"})

    def compare(self, a: str, b: str) -> int:
        """Compare two Composer package versions."""
        if a == b:
            return 0
        return php_version_compare(a, b)
