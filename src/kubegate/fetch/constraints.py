"""Masterminds/semver v3 versions and constraints, ported literally, and Flux's version choice.

Flux chooses chart versions and OCI tags with ``github.com/Masterminds/semver/v3`` (v3.5 in
source-controller's go.mod): ``NewConstraint`` / ``Constraints.Check`` and the version
comparison, plus fluxcd/pkg ``version.ParseVersion`` (three dot-separated parts, then
``semver.NewVersion``, which coerces a ``v`` prefix and leading zeros). This module reproduces
them from Masterminds/semver's ``constraints.go`` and ``version.go`` (read at v3.4.0+6, whose
constraint code v3.5 keeps), so that kubegate picks the chart Flux would:

- ``,`` or spaces AND constraints, ``||`` ORs them; ``A - B`` is ``>= A, <= B``;
- operators ``=`` (or none), ``!=``, ``>``, ``<``, ``>=``/``=>``, ``<=``/``=<``, ``~``/``~>``,
  ``^``; ``x``, ``X`` and ``*`` are wildcards, and a wildcard or a missing part makes the
  constraint "dirty" (``1.2`` means ``1.2.x``);
- prereleases match only when the AND group holds a constraint with a prerelease.

Go's regular expressions are leftmost-first like Python's, so the patterns are the upstream
ones; only the character classes are spelt out (Go's ``\\s`` is ASCII) and ``$`` becomes
``\\Z`` (Python's ``$`` also matches before a final newline). Go's ``strconv.ParseUint`` takes
digits only and fails above 2**64-1; :func:`_parse_uint` does the same. Called by
:mod:`kubegate.fetch.select`; tested against the upstream tables (tests/unit/test_semver.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import total_ordering

from kubegate.errors import RenderError

_UINT_MAX = 2**64 - 1
_WS = r"[\t\n\f\r ]"
_NUM = "0123456789"
_ALLOWED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-" + _NUM

#: version.go ``looseSemVerRegex`` (``NewVersion`` with ``CoerceNewVersion``, the default).
_LOOSE_VERSION = re.compile(
    r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)

#: constraints.go ``cvRegex`` (``|`` inside the classes is a literal pipe, as upstream).
_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
#: The operators, in upstream order (note the empty alternative after ``=``).
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CONSTRAINT = re.compile(rf"^{_WS}*({_OPS}){_WS}*({_CV}){_WS}*\Z")
_RANGE = re.compile(rf"{_WS}*({_CV}){_WS}+-{_WS}+({_CV}){_WS}*")
_FIND = re.compile(rf"({_OPS}){_WS}*({_CV})")
_VALID = re.compile(
    rf"^({_WS}*({_OPS}){_WS}*({_CV}){_WS}*)((?:{_WS}+|,{_WS}*)({_OPS}){_WS}*({_CV}){_WS}*)*\Z"
)


class SemverError(ValueError):
    """A version or constraint that Masterminds/semver would refuse."""


def _parse_uint(text: str) -> int | None:
    """Go's ``strconv.ParseUint(text, 10, 64)``: None where it fails."""
    if not text or not all(c in _NUM for c in text):
        return None
    value = int(text)
    return value if value <= _UINT_MAX else None


def _contains_only(text: str, allowed: str) -> bool:
    return all(c in allowed for c in text)


def _validate_prerelease(pre: str) -> None:
    for part in pre.split("."):
        if part == "":
            raise SemverError("invalid prerelease string")
        if _contains_only(part, _NUM):
            if len(part) > 1 and part[0] == "0":
                raise SemverError("version segment starts with 0")
        elif not _contains_only(part, _ALLOWED):
            raise SemverError("invalid prerelease string")


def _validate_metadata(metadata: str) -> None:
    for part in metadata.split("."):
        if part == "" or not _contains_only(part, _ALLOWED):
            raise SemverError("invalid metadata string")


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A parsed version; equality and order are semver precedence (metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: str = ""
    metadata: str = ""
    original: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """``semver.NewVersion`` (coercing: ``v`` prefix, missing parts, leading zeros)."""
        match = _LOOSE_VERSION.fullmatch(text)
        if match is None:
            raise SemverError(f"invalid semantic version {text[:80]!r}")
        major = _parse_uint(match.group(1))
        minor = _parse_uint(match.group(2)[1:]) if match.group(2) else 0
        patch = _parse_uint(match.group(3)[1:]) if match.group(3) else 0
        if major is None or minor is None or patch is None:
            raise SemverError(f"version segment out of range in {text[:80]!r}")
        pre, metadata = match.group(5) or "", match.group(8) or ""
        if pre:
            _validate_prerelease(pre)
        if metadata:
            _validate_metadata(metadata)
        return cls(major, minor, patch, pre, metadata, text)

    def compare(self, other: Version) -> int:
        """``Version.Compare``: -1, 0 or 1."""
        for mine, theirs in (
            (self.major, other.major),
            (self.minor, other.minor),
            (self.patch, other.patch),
        ):
            if mine != theirs:
                return -1 if mine < theirs else 1
        if not self.pre and not other.pre:
            return 0
        if not self.pre:
            return 1
        if not other.pre:
            return -1
        return _compare_prerelease(self.pre, other.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.pre))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text


def _compare_prerelease(mine: str, theirs: str) -> int:
    left, right = mine.split("."), theirs.split(".")
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else ""
        b = right[index] if index < len(right) else ""
        result = _compare_pre_part(a, b)
        if result:
            return result
    return 0


def _compare_pre_part(s: str, o: str) -> int:
    """``comparePrePart``: numbers below identifiers, a missing part below any."""
    if s == o:
        return 0
    if s == "":
        return -1
    if o == "":
        return 1
    si, oi = _parse_uint(s), _parse_uint(o)
    if si is None and oi is None:
        return 1 if s > o else -1
    if oi is None:
        return -1
    if si is None:
        return 1
    return 1 if si > oi else -1


def parse_flux_version(text: str) -> Version:
    """fluxcd/pkg ``version.ParseVersion``: exactly three dot-separated parts, then NewVersion.

    This is what source-controller accepts as a chart version or a tag (``v1.2.3``,
    ``2025.02.03-rc.1``); ``1.2`` or ``latest`` are not versions there.
    """
    if len(text.split(".", 2)) != 3:
        raise SemverError(f"invalid semantic version {text[:80]!r}")
    return Version.parse(text)


@dataclass(frozen=True, slots=True)
class _Constraint:
    con: Version
    orig: str
    op: str
    minor_dirty: bool = False
    patch_dirty: bool = False
    dirty: bool = False

    def check(self, version: Version, include_pre: bool) -> bool:
        return _OPERATIONS[self.op](version, self, include_pre)


def _is_x(text: str) -> bool:
    return text in ("x", "*", "X")


def _parse_constraint(text: str) -> _Constraint:
    if not text:
        # An empty constraint is ``*`` (>= 0.0.0), dirty.
        return _Constraint(Version(0, 0, 0, original="0.0.0"), text, "", dirty=True)
    match = _CONSTRAINT.match(text)
    if match is None:
        raise SemverError(f"improper constraint: {text!r}")
    op, orig = match.group(1), match.group(2)
    major, minor, patch = match.group(3), match.group(4) or "", match.group(5) or ""
    pre = match.group(6) or ""
    version, minor_dirty, patch_dirty, dirty = orig, False, False, False
    if _is_x(major):
        version, dirty = f"0.0.0{pre}", True
    elif _is_x(minor.removeprefix(".")) or minor == "":
        version, minor_dirty, dirty = f"{major}.0.0{pre}", True, True
    elif _is_x(patch.removeprefix(".")) or patch == "":
        version, patch_dirty, dirty = f"{major}{minor}.0{pre}", True, True
    try:
        con = Version.parse(version)
    except SemverError as exc:
        raise SemverError(f"improper constraint: {text!r} ({exc})") from exc
    return _Constraint(con, orig, op, minor_dirty, patch_dirty, dirty)


def _not_equal(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    if c.dirty:
        if c.con.major != v.major:
            return True
        if c.con.minor != v.minor and not c.minor_dirty:
            return True
        if c.minor_dirty:
            return False
        if c.con.patch != v.patch and not c.patch_dirty:
            return True
        if c.patch_dirty:
            if v.pre or c.con.pre:
                return _compare_prerelease(v.pre, c.con.pre) != 0
            return False
    return v != c.con


def _greater_than(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    if not c.dirty:
        return v.compare(c.con) == 1
    if v.major > c.con.major:
        return True
    if v.major < c.con.major or c.minor_dirty:
        return False
    if c.patch_dirty:
        return v.minor > c.con.minor
    return v.compare(c.con) == 1


def _less_than(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    return v.compare(c.con) < 0


def _greater_equal(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    return v.compare(c.con) >= 0


def _less_equal(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    if not c.dirty:
        return v.compare(c.con) <= 0
    if v.major > c.con.major:
        return False
    return not (v.major == c.con.major and v.minor > c.con.minor and not c.minor_dirty)


def _tilde(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    if v < c.con:
        return False
    # ~0.0.0 accepts everything (>= 0.0.0).
    if (c.con.major, c.con.minor, c.con.patch) == (0, 0, 0) and not (
        c.minor_dirty or c.patch_dirty
    ):
        return True
    if v.major != c.con.major:
        return False
    return not (v.minor != c.con.minor and not c.minor_dirty)


def _tilde_or_equal(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    if c.dirty:
        return _tilde(v, c, include_pre)
    return v == c.con


def _caret(v: Version, c: _Constraint, include_pre: bool) -> bool:
    if v.pre and not include_pre:
        return False
    if v < c.con:
        return False
    if c.con.major > 0 or c.minor_dirty:
        return v.major == c.con.major
    if v.major > 0:
        return False
    if c.con.minor > 0 or c.patch_dirty:
        return v.minor == c.con.minor
    if v.minor > 0:
        return False
    return c.con.patch == v.patch


_OPERATIONS: dict[str, Callable[[Version, _Constraint, bool], bool]] = {
    "": _tilde_or_equal,
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater_than,
    "<": _less_than,
    ">=": _greater_equal,
    "=>": _greater_equal,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


def _rewrite_range(text: str) -> str:
    """``A - B`` -> ``>= A, <= B `` (each occurrence, first textual match replaced)."""
    out = text
    for match in _RANGE.finditer(text):
        # Group 1 is the first version, group 11 the second (cvRegex has 9 groups).
        out = out.replace(match.group(0), f">= {match.group(1)}, <= {match.group(11)} ", 1)
    return out


@dataclass(frozen=True, slots=True)
class Constraints:
    """``semver.Constraints``: OR groups of AND constraints."""

    groups: tuple[tuple[_Constraint, ...], ...]
    contains_pre: tuple[bool, ...]
    text: str
    include_prerelease: bool = False

    @classmethod
    def parse(cls, text: str) -> Constraints:
        """``semver.NewConstraint``; :class:`SemverError` for what upstream refuses."""
        rewritten = _rewrite_range(text)
        groups: list[tuple[_Constraint, ...]] = []
        has_pre: list[bool] = []
        for segment in rewritten.split("||"):
            if not _VALID.match(segment):
                raise SemverError(f"improper constraint: {segment[:80]!r}")
            found = [m.group(0) for m in _FIND.finditer(segment)] or [segment]
            parsed = tuple(_parse_constraint(part) for part in found)
            groups.append(parsed)
            has_pre.append(any(c.con.pre for c in parsed))
        return cls(tuple(groups), tuple(has_pre), text)

    def check(self, version: Version) -> bool:
        """``Constraints.Check``: some OR group whose every constraint holds."""
        for group, pre in zip(self.groups, self.contains_pre, strict=True):
            include = self.include_prerelease or pre
            if all(c.check(version, include) for c in group):
                return True
        return False


def choose(
    candidates: list[str],
    constraint: str,
    *,
    what: str,
    where: str | None = None,
    exact_first: bool = True,
) -> str:
    """The candidate source-controller picks for ``constraint``: an exact string match wins,
    else the highest version (fluxcd ``ParseVersion``) satisfying the constraint (``*`` or
    empty: the latest stable). Candidates that are not versions are skipped, as upstream.

    Ties between equal versions (differing only in build metadata) keep the first listed, as
    Go's ``sort.Sort(sort.Reverse(...))`` leaves no order guarantee: callers list candidates in
    the order that should win (an index's entries newest first). ``exact_first`` False is
    OCIRepository's ``semver`` (the constraint alone decides). RenderError when nothing
    matches or the constraint is invalid.
    """
    if exact_first and constraint and constraint in candidates:
        return constraint
    try:
        parsed = Constraints.parse("*" if constraint in ("", "*") else constraint)
    except SemverError as exc:
        raise RenderError(
            f"invalid version constraint {constraint[:80]!r} ({exc})", where=where
        ) from exc
    best: tuple[Version, str] | None = None
    for candidate in candidates:
        try:
            version = parse_flux_version(candidate)
        except SemverError:
            continue
        if parsed.check(version) and (best is None or version > best[0]):
            best = (version, candidate)
    if best is None:
        raise RenderError(f"no version of {what} matches {constraint[:80] or '*'!r}", where=where)
    return best[1]
