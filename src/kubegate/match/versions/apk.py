"""Alpine package (apk) version order, for Alpine, Wolfi, Chainguard and MinimOS.

The grammar is apk-tools' (``doc/apk-package.5``, ``src/version.c``):
``number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}``. Numbers compare numerically,
except that a non-first number with a leading zero compares as text (``1.02 < 1.1``, as apk
treats such parts as decimal fractions); a trailing letter sorts after none; suffixes order
``_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p``; the ``~hash`` is
ignored; ``-rN`` is the package revision. Text that fits nowhere makes the version invalid:
two invalid versions compare as plain strings, and a version with leftover text sorts before
the same version without it, so invalid input never raises. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from kubegate.match.versions.semverlike import number_value

_NUMBERS = re.compile(r"(?:\d+\.?)*")
_SUFFIX = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)")
_HASH = re.compile(r"~[0-9a-f]+")
_REVISION = re.compile(r"-r(\d*)")

#: Suffix weights; "no suffix" sits between the pre-release and the post-release ones.
_SUFFIX_WEIGHT = {
    "alpha": 0,
    "beta": 1,
    "pre": 2,
    "rc": 3,
    "cvs": 5,
    "svn": 6,
    "git": 7,
    "hg": 8,
    "p": 9,
}
_NO_SUFFIX = (4, 0)


@dataclass(frozen=True, slots=True)
class ApkVersion:
    """One parsed apk version; ``invalid`` when text is left that is not ``-r#``."""

    original: str
    numbers: tuple[str, ...]
    letter: str
    suffixes: tuple[tuple[int, int], ...]
    revision: int
    remainder: str
    invalid: bool


@lru_cache(maxsize=65536)
def parse_apk(version: str) -> ApkVersion:
    """Parse ``version`` as far as the apk grammar allows; never raises."""
    rest = version
    numbers_text = _NUMBERS.match(rest)
    numbers: tuple[str, ...] = ()
    if numbers_text and numbers_text.group():
        numbers = tuple(numbers_text.group().split("."))
        rest = rest[numbers_text.end() :]
    letter = ""
    if rest[:1].isascii() and rest[:1].islower():
        letter, rest = rest[0], rest[1:]
    suffixes: list[tuple[int, int]] = []
    while suffix := _SUFFIX.match(rest):
        suffixes.append((_SUFFIX_WEIGHT[suffix[1]], number_value(suffix[2])))
        rest = rest[suffix.end() :]
    if hash_match := _HASH.match(rest):
        rest = rest[hash_match.end() :]
    revision = 0
    invalid = False
    if rest:
        if revision_match := _REVISION.match(rest):
            revision = number_value(revision_match[1])
            rest = rest[revision_match.end() :]
        else:
            invalid = True
    return ApkVersion(version, numbers, letter, tuple(suffixes), revision, rest, invalid)


def _compare_numbers(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    for index in range(max(len(a), len(b))):
        # Missing parts count as a plain zero (``1.0`` equals ``1``).
        left = a[index] if index < len(a) else None
        right = b[index] if index < len(b) else None
        if (
            index
            and left is not None
            and right is not None
            and (left.startswith("0") or right.startswith("0"))
        ):
            result = (left > right) - (left < right)
        else:
            left_value = number_value(left) if left is not None else 0
            right_value = number_value(right) if right is not None else 0
            result = (left_value > right_value) - (left_value < right_value)
        if result:
            return result
    return 0


def _compare_suffixes(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> int:
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else _NO_SUFFIX
        right = b[index] if index < len(b) else _NO_SUFFIX
        if left != right:
            return -1 if left < right else 1
    return 0


def compare_apk(a: ApkVersion, b: ApkVersion) -> int:
    """Order two parsed apk versions."""
    if a.invalid and b.invalid:
        return (a.original > b.original) - (a.original < b.original)
    if result := _compare_numbers(a.numbers, b.numbers):
        return result
    if a.letter != b.letter:
        # No letter sorts before any letter (``1 < 1a``).
        return -1 if a.letter < b.letter else 1
    if result := _compare_suffixes(a.suffixes, b.suffixes):
        return result
    if a.revision != b.revision:
        return -1 if a.revision < b.revision else 1
    # Leftover text after the revision makes a version sort before the clean one.
    return (not a.remainder) - (not b.remainder)


class ApkComparator:
    """apk-tools version order."""

    name = "apk"
    ecosystems = frozenset({"Alpine", "Wolfi", "Chainguard", "MinimOS"})

    def compare(self, a: str, b: str) -> int:
        """Compare two apk versions."""
        if a == b:
            return 0
        return compare_apk(parse_apk(a), parse_apk(b))
