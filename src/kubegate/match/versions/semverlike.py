"""Lenient semver-style version parsing shared by the semver, NuGet, Pub and Hackage comparators.

OSV data carries versions that only look like semver (``v1.2``, ``3.10``, ``1.0.0.1-beta``), so
the parse never fails: a leading ``v`` is dropped, the leading run of dot-separated numbers are the
components, and everything from the first other character on is the pre-release/build string.
Also home of the digit-run helpers (``number_value``, ``is_number``) every comparator uses.
Called by :mod:`kubegate.match.versions.semver` and its siblings, never by the matcher directly.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Sort key of one pre-release identifier: numbers before words, as semver 2.0.0 item 11.4.
Identifier = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class SemverLike:
    """The numeric components and the rest (pre-release and ``+build``) of a version string."""

    components: tuple[int, ...]
    rest: str


#: Digit runs longer than this saturate: CPython's ``int()`` refuses over 4300 digits (a DoS
#: guard), and no real version has such numbers, so they all compare equal and largest.
_MAX_DIGITS = 4000
_SATURATED: int = 10**_MAX_DIGITS


def number_value(digits: str) -> int:
    """The value of an ASCII digit run (``""`` is 0); absurdly long runs saturate, never raise."""
    if not digits:
        return 0
    if len(digits) > _MAX_DIGITS:
        digits = digits.lstrip("0")
        if len(digits) > _MAX_DIGITS:
            return _SATURATED
    return int(digits)


def is_number(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``str.isdigit`` also accepts ``²``)."""
    return text.isascii() and text.isdigit()


def parse_semver_like(version: str) -> SemverLike:
    """Split ``version`` into numeric components and the remaining pre-release/build text."""
    text = version[1:] if version.startswith("v") else version
    components: list[int] = []
    start = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if "0" <= char <= "9":
            index += 1
            continue
        if index > start:
            components.append(number_value(text[start:index]))
        if char != ".":
            return SemverLike(tuple(components), text[index:])
        index += 1
        start = index
    if index > start:
        components.append(number_value(text[start:index]))
    return SemverLike(tuple(components), "")


def limit_components(parsed: SemverLike, limit: int) -> SemverLike:
    """Keep ``limit`` components; the extra ones join the rest as ``.N`` (``1.2.3.4`` → ``.4``)."""
    if len(parsed.components) <= limit:
        return parsed
    extra = "".join(f".{number}" for number in parsed.components[limit:])
    return SemverLike(parsed.components[:limit], parsed.rest + extra)


def pad(components: tuple[int, ...], width: int) -> tuple[int, ...]:
    """``components`` padded with zeros to ``width`` so ``1.2`` equals ``1.2.0``."""
    return components + (0,) * (width - len(components))


def strip_zeros(components: tuple[int, ...]) -> tuple[int, ...]:
    """Trailing zeros dropped: comparing the results equals comparing zero-padded components."""
    end = len(components)
    while end and components[end - 1] == 0:
        end -= 1
    return components[:end]


def prerelease_key(rest: str) -> tuple[int, tuple[Identifier, ...]]:
    """Sort key of the pre-release part of ``rest`` (``+build`` ignored, semver 2.0.0 item 10).

    A version without a pre-release sorts after every pre-release of the same components;
    identifiers compare numerically when all digits, else as ASCII text, numbers first; a longer
    list of equal leading identifiers sorts later (item 11).
    """
    pre = rest.split("+", 1)[0]
    # node-semver compares without the hyphen that introduces the pre-release.
    if pre.startswith("-"):
        pre = pre[1:]
    if not pre:
        return (1, ())
    identifiers: list[Identifier] = []
    for part in pre.split("."):
        if is_number(part):
            identifiers.append((0, number_value(part), ""))
        else:
            identifiers.append((1, 0, part))
    return (0, tuple(identifiers))
