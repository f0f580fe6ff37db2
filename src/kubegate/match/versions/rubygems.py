"""RubyGems version order (``Gem::Version#<=>``).

A version is split into digit runs and letter runs (``1.0.a2`` → ``1, 0, a, 2``; ``-`` reads as
``.pre.``); it is a pre-release when any letter appears. Trailing zeros of the release part and
of the pre-release part are dropped (``1.0`` equals ``1``), then segments compare pairwise,
missing ones as 0: numbers numerically, words as text, and a word before a number (``1.a < 1``).
Listed in :data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from kubegate.match.versions.semverlike import number_value

_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")

Segment = int | str


def _drop_zeros(segments: list[Segment]) -> list[Segment]:
    end = len(segments)
    while end and segments[end - 1] == 0:
        end -= 1
    return segments[:end]


@lru_cache(maxsize=65536)
def canonical_segments(version: str) -> tuple[Segment, ...]:
    """``Gem::Version#canonical_segments`` of ``version``."""
    text = version.strip().replace("-", ".pre.") or "0"
    segments: list[Segment] = [
        number_value(part) if part.isdigit() else part for part in _SEGMENT.findall(text)
    ]
    first_word = next(
        (index for index, segment in enumerate(segments) if isinstance(segment, str)),
        len(segments),
    )
    return (*_drop_zeros(segments[:first_word]), *_drop_zeros(segments[first_word:]))


def _compare_segments(a: tuple[Segment, ...], b: tuple[Segment, ...]) -> int:
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else 0
        right = b[index] if index < len(b) else 0
        if left == right:
            continue
        if isinstance(left, int) and isinstance(right, int):
            return -1 if left < right else 1
        if isinstance(left, str) and isinstance(right, str):
            return -1 if left < right else 1
        # A word (pre-release marker) sorts before a number.
        return -1 if isinstance(left, str) else 1
    return 0


class RubyGemsComparator:
    """``Gem::Version`` order."""

    name = "rubygems"
    ecosystems = frozenset({"RubyGems"})

    def compare(self, a: str, b: str) -> int:
        """Compare two gem versions."""
        if a == b:
            return 0
        return _compare_segments(canonical_segments(a), canonical_segments(b))
