"""Glob matching as source-watcher's artifact builder does it, without backtracking.

source-watcher (fluxcd/source-watcher ``internal/builder/builder.go``) selects files with two
matchers: ``fs.Glob`` (Go ``path.Match`` per path segment: ``*``, ``?``, ``[...]`` with ``^``
negation, ``\\`` escapes; ``**`` is just ``*``) for Overwrite and Merge copies, and
``doublestar`` v4 (``bmatcuk/doublestar``: the same plus ``**`` as a whole segment matching zero
or more directories, ``[!...]``, and ``{a,b}`` alternatives) for Extract copies and every
``exclude`` pattern. The patterns come from the judged revision, so matching is a dynamic
programme over (pattern token, character) and over (segment, path part): linear in their
product, never exponential as a backtracking regular expression could be. Brace alternatives
are expanded up to :data:`MAX_ALTERNATIVES`; beyond that the pattern is refused.

Called by :mod:`kubegate.render.artgen`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

#: A hostile ``{a,b}{c,d}...`` pattern expands exponentially; real ones have a handful.
MAX_ALTERNATIVES = 256


class BadPattern(ValueError):
    """A malformed pattern (Go's ``path.ErrBadPattern`` / doublestar's ``ErrBadPattern``)."""


@dataclass(frozen=True, slots=True)
class _Class:
    ranges: tuple[tuple[str, str], ...]
    negated: bool

    def matches(self, char: str) -> bool:
        inside = any(low <= char <= high for low, high in self.ranges)
        return inside != self.negated


#: A token of one segment: a literal character, "*" (any run), "?" (one character), a class.
_Token = str | _Class
_STAR = "\x00*"
_ANY = "\x00?"
_GLOBSTAR = ("\x00**",)


def _tokens(segment: str, doublestar: bool) -> tuple[_Token, ...]:
    out: list[_Token] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "\\":
            if i + 1 >= len(segment):
                raise BadPattern("trailing backslash")
            out.append(segment[i + 1])
            i += 2
        elif char == "*":
            out.append(_STAR)
            i += 1
        elif char == "?":
            out.append(_ANY)
            i += 1
        elif char == "[":
            klass, i = _class(segment, i + 1, doublestar)
            out.append(klass)
        else:
            out.append(char)
            i += 1
    return tuple(out)


def _class(segment: str, i: int, doublestar: bool) -> tuple[_Class, int]:
    negated = False
    if i < len(segment) and (segment[i] == "^" or (doublestar and segment[i] == "!")):
        negated = True
        i += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if i >= len(segment):
            raise BadPattern("unclosed character class")
        if segment[i] == "]" and ranges:
            return _Class(tuple(ranges), negated), i + 1
        low, i = _class_char(segment, i)
        high = low
        if (
            i < len(segment)
            and segment[i] == "-"
            and i + 1 < len(segment)
            and segment[i + 1] != "]"
        ):
            high, i = _class_char(segment, i + 1)
        ranges.append((low, high))


def _class_char(segment: str, i: int) -> tuple[str, int]:
    if segment[i] == "\\":
        if i + 1 >= len(segment):
            raise BadPattern("trailing backslash in class")
        return segment[i + 1], i + 2
    return segment[i], i + 1


def _segment_matches(tokens: tuple[_Token, ...], name: str) -> bool:
    # reach[j]: the tokens read so far can consume exactly name[:j].
    reach = [False] * (len(name) + 1)
    reach[0] = True
    for token in tokens:
        if token == _STAR:
            for j in range(1, len(name) + 1):
                reach[j] = reach[j] or reach[j - 1]
            continue
        nxt = [False] * (len(name) + 1)
        for j in range(len(name)):
            if not reach[j]:
                continue
            char = name[j]
            if (
                token == _ANY
                or (isinstance(token, _Class) and token.matches(char))
                or (isinstance(token, str) and token == char)
            ):
                nxt[j + 1] = True
        reach = nxt
        if not any(reach):
            return False
    return reach[len(name)]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: alternatives, each a tuple of segments (``_GLOBSTAR`` or tokens)."""

    alternatives: tuple[tuple[tuple[_Token, ...], ...], ...]

    def match(self, path: str) -> bool:
        """Whether the whole slash-separated ``path`` matches."""
        parts = tuple(path.split("/"))
        return any(_path_matches(alt, parts) for alt in self.alternatives)


def _path_matches(segments: tuple[tuple[_Token, ...], ...], parts: tuple[str, ...]) -> bool:
    @cache
    def at(s: int, p: int) -> bool:
        if s == len(segments):
            return p == len(parts)
        if segments[s] == _GLOBSTAR:
            # Zero or more whole directories; a trailing "/**" also matches its parent itself.
            return any(at(s + 1, q) for q in range(p, len(parts) + 1))
        return p < len(parts) and _segment_matches(segments[s], parts[p]) and at(s + 1, p + 1)

    try:
        return at(0, 0)
    finally:
        at.cache_clear()


def _expand(pattern: str) -> list[str]:
    """doublestar's ``{a,b}`` alternatives, expanded (nested braces allowed)."""
    depth, start = 0, -1
    commas: list[int] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            if depth == 0:
                start, commas = i, []
            depth += 1
        elif char == "," and depth == 1:
            commas.append(i)
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                bounds = [start, *commas, i]
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for left, right in itertools.pairwise(bounds):
                    for rest in _expand(head + pattern[left + 1 : right] + tail):
                        out.append(rest)
                        if len(out) > MAX_ALTERNATIVES:
                            raise BadPattern(f"more than {MAX_ALTERNATIVES} {{}} alternatives")
                return out
        i += 1
    if depth:
        raise BadPattern("unclosed {")
    return [pattern]


def compile_doublestar(pattern: str) -> Pattern:
    """A doublestar v4 pattern (``exclude`` and Extract's ``from``)."""
    alternatives = []
    for alt in _expand(pattern):
        segments = tuple(
            _GLOBSTAR if segment == "**" else _tokens(segment, doublestar=True)
            for segment in alt.split("/")
        )
        alternatives.append(segments)
    return Pattern(tuple(alternatives))


def compile_segment(segment: str) -> tuple[_Token, ...]:
    """One segment of a Go ``path.Match`` pattern (``fs.Glob``), checked for errors."""
    return _tokens(segment, doublestar=False)


def segment_match(tokens: tuple[_Token, ...], name: str) -> bool:
    """Whether ``name`` (no slash) matches a compiled ``path.Match`` segment."""
    return _segment_matches(tokens, name)


def has_meta(path: str) -> bool:
    """Go ``io/fs`` ``hasMeta``: whether ``fs.Glob`` treats ``path`` as a pattern."""
    return any(char in path for char in "*?[\\")
