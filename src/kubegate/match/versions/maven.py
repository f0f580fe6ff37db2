"""Maven version order, per the POM reference's "Version Order Specification".

This is the order OSV itself computes Maven ranges with. A version is split into tokens at
``.``, at ``-`` and at digit/letter transitions (a transition counts as ``-``), each token
remembering its separator; empty tokens read as ``0``. Trailing "null" tokens (``0``, ``""``,
``final``, ``ga``) are trimmed, at the end and before every remaining ``-``. The shorter version
is padded with nulls of the other's separator (``0`` after ``.``, ``""`` after ``-``). Tokens
with the same separator compare numbers numerically, numbers above words, and words as
``alpha < beta < milestone < rc = cr < snapshot < "" = final = ga = release < sp`` with unknown
words after those, alphabetically, case-insensitive (``a1``/``b1``/``m1`` abbreviate
alpha/beta/milestone before a digit). Otherwise ``.word < -word < -number < .number``.

Maven's own ``ComparableVersion`` nests lists at ``-`` and was measured to differ on a vector
(``1-1`` vs ``1-ga-1``), hence the specification's flat form. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from kubegate.match.versions.semverlike import is_number, number_value

_KEYWORDS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_UNKNOWN = len(_KEYWORDS)
_ALIASES = {"cr": "rc", "ga": "", "final": "", "release": ""}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_TRIMMED = frozenset({"0", ""})
_SEPARATED = re.compile(r"([.-])")
_RUNS = re.compile(r"\d+|\D+")
#: ``.word < -word < -number < .number`` when two tokens' separators differ.
_CROSS_ORDER = {(".", False): 0, ("-", False): 1, ("-", True): 2, (".", True): 3}


@dataclass(frozen=True, slots=True)
class Token:
    """One version token; ``padding`` marks a null added to match a longer version."""

    prefix: str
    value: str
    padding: bool = False


def _pieces(version: str) -> list[tuple[str, str]]:
    """``(separator, raw token)`` pairs; digit/letter transitions become ``-`` separators."""
    parts = _SEPARATED.split(version)
    pieces: list[tuple[str, str]] = []
    for index in range(0, len(parts), 2):
        prefix = parts[index - 1] if index else ""
        runs = _RUNS.findall(parts[index]) or [""]
        for position, run in enumerate(runs):
            followed_by_digit = position + 1 < len(runs)
            value = run.lower()
            if followed_by_digit and value in _SHORT:
                value = _SHORT[value]
            pieces.append((prefix if position == 0 else "-", value))
    return pieces


@lru_cache(maxsize=65536)
def parse_maven(version: str) -> tuple[Token, ...]:
    """The trimmed token list of ``version``."""
    tokens: list[Token] = []
    for prefix, raw in _pieces(version.strip()):
        value = _ALIASES.get(raw, raw) if raw else "0"
        if is_number(value):
            value = value.lstrip("0") or "0"
        tokens.append(Token(prefix, value))
    # Trim nulls from the end, then from before each remaining "-", back to the start.
    index = len(tokens) - 1
    while index > 0:
        if tokens[index].value in _TRIMMED:
            del tokens[index]
            index -= 1
            continue
        while index >= 0 and tokens[index].prefix != "-":
            index -= 1
        index -= 1
    return tuple(tokens)


def _null_like(token: Token) -> Token:
    if token.prefix == ".":
        # "sp" is the one word above the release, so "1 < 1.sp" needs a word-like null.
        return Token(".", "" if token.value == "sp" else "0", padding=True)
    return Token("-", "", padding=True)


def _keyword_rank(value: str) -> int:
    return _KEYWORDS.index(value) if value in _KEYWORDS else _UNKNOWN


def _token_less(left: Token, right: Token) -> bool:
    if left.prefix != right.prefix:
        left_rank = _CROSS_ORDER.get((left.prefix, is_number(left.value)), -1)
        right_rank = _CROSS_ORDER.get((right.prefix, is_number(right.value)), -1)
        return left_rank < right_rank
    left_number, right_number = is_number(left.value), is_number(right.value)
    if left_number and right_number:
        return number_value(left.value) < number_value(right.value)
    # A real number beats any word; a padding zero is weighed like a word.
    if left_number and not left.padding:
        return False
    if right_number and not right.padding:
        return True
    left_rank, right_rank = _keyword_rank(left.value), _keyword_rank(right.value)
    if left_rank == _UNKNOWN and right_rank == _UNKNOWN:
        return left.value < right.value
    return left_rank < right_rank


def compare_maven(a: tuple[Token, ...], b: tuple[Token, ...]) -> int:
    """Order two parsed Maven versions."""
    if a == b:
        return 0
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else _null_like(b[index])
        right = b[index] if index < len(b) else _null_like(a[index])
        if left.prefix == right.prefix and left.value == right.value:
            continue
        if _token_less(left, right):
            return -1
        # Distinct tokens may still rank equal (numbers too long to tell apart, see
        # number_value): then the next token decides, which keeps the order antisymmetric.
        if _token_less(right, left):
            return 1
    return 0


class MavenComparator:
    """Maven version order (POM reference specification)."""

    name = "maven"
    ecosystems = frozenset({"Maven"})

    def compare(self, a: str, b: str) -> int:
        """Compare two Maven versions."""
        if a == b:
            return 0
        return compare_maven(parse_maven(a), parse_maven(b))
