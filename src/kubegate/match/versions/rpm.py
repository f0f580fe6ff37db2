"""RPM version order (``[epoch:]version[-release]``) for Red Hat and the other rpm distributions.

Each part is compared with rpm's ``rpmvercmp`` (``rpmio/rpmvercmp.c``): separators (anything but
ASCII letters, digits, ``~`` and ``^``) only split segments; ``~`` sorts before everything, even
the end of the string (``1.0~rc1 < 1.0``); ``^`` sorts after the end but before any further
segment (``1.0 < 1.0^git1 < 1.0.1``); digit runs compare numerically and beat letter runs.
A missing epoch is 0; a prefix before ``:`` that is not all digits is not an epoch. Dropping the
epoch is a classic false-positive source (OSV.md, mistake 4). ``univers``' RPM version was
measured against the vectors and does not pass them all, hence this implementation. Listed in
:data:`kubegate.match.versions.COMPARATORS`.
"""

from __future__ import annotations

from functools import lru_cache


def _is_alpha(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _is_separator(char: str) -> bool:
    return not (_is_alpha(char) or _is_digit(char) or char in "~^")


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment-wise comparison of one version or release string."""
    if a == b:
        return 0
    # An absent part sorts before a present one (``1 < 1-0``): OSV gives releases as "-rel".
    if not a or not b:
        return -1 if not a else 1
    i = j = 0
    len_a, len_b = len(a), len(b)
    while True:
        while i < len_a and _is_separator(a[i]):
            i += 1
        while j < len_b and _is_separator(b[j]):
            j += 1
        tilde_a = i < len_a and a[i] == "~"
        tilde_b = j < len_b and b[j] == "~"
        if tilde_a or tilde_b:
            if tilde_a and tilde_b:
                i += 1
                j += 1
                continue
            return -1 if tilde_a else 1
        caret_a = i < len_a and a[i] == "^"
        caret_b = j < len_b and b[j] == "^"
        if caret_a or caret_b:
            if caret_a and caret_b:
                i += 1
                j += 1
                continue
            # "^" beats the end of the other string but loses to any further segment.
            if caret_a:
                return 1 if j == len_b else -1
            return -1 if i == len_a else 1
        if i == len_a or j == len_b:
            break
        numeric = _is_digit(a[i])
        is_kind = _is_digit if numeric else _is_alpha
        start_a, start_b = i, j
        while i < len_a and is_kind(a[i]):
            i += 1
        while j < len_b and is_kind(b[j]):
            j += 1
        segment_a, segment_b = a[start_a:i], b[start_b:j]
        if not segment_b:
            # Different kinds: a digit run is newer than a letter run.
            return 1 if numeric else -1
        if numeric:
            segment_a = segment_a.lstrip("0")
            segment_b = segment_b.lstrip("0")
            if len(segment_a) != len(segment_b):
                return 1 if len(segment_a) > len(segment_b) else -1
        if segment_a != segment_b:
            return 1 if segment_a > segment_b else -1
    left_a, left_b = len_a - i, len_b - j
    return (left_a > left_b) - (left_a < left_b)


@lru_cache(maxsize=65536)
def split_evr(version: str) -> tuple[str, str, str]:
    """``(epoch, version, release)``; epoch ``"0"`` when absent, release keeps its ``-``."""
    epoch, colon, rest = version.partition(":")
    if not colon or not epoch.isascii() or not epoch.isdigit():
        epoch, rest = "0", version
    upstream, dash, release = rest.partition("-")
    return epoch, upstream, dash + release


class RpmComparator:
    """``[epoch:]version[-release]`` compared part by part with rpmvercmp."""

    name = "rpm"
    ecosystems = frozenset(
        {
            "Red Hat",
            "AlmaLinux",
            "Rocky Linux",
            "SUSE",
            "openSUSE",
            "Mageia",
            "openEuler",
            "Photon OS",
            "Azure Linux",
        }
    )

    def compare(self, a: str, b: str) -> int:
        """Compare two rpm EVR strings."""
        if a == b:
            return 0
        for part_a, part_b in zip(split_evr(a), split_evr(b), strict=True):
            if result := rpmvercmp(part_a, part_b):
                return result
        return 0
