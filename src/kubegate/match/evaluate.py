"""OSV ``affected[]`` evaluation, exactly as the OSV schema's algorithm states it.

Called by the matcher with the affected entries of one record for one package. Events are sorted
in the ecosystem's version order (``introduced: "0"`` first), then walked: ``introduced`` <= v
makes v affected, ``fixed`` <= v and ``last_affected`` < v make it not; ``limit`` events bound
the range from above. The explicit ``versions`` list also counts. GIT ranges name commits, not
package versions, and are ignored.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_logger = logging.getLogger(__name__)

Compare = Callable[[str, str], int]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a version is affected and, if so, the fixed versions that end its range."""

    affected: bool
    fixed: tuple[str, ...] = ()


class EvaluationError(ValueError):
    """A version in a range cannot be ordered by the ecosystem's comparator."""


def _event_value(event: dict[str, str]) -> tuple[str, str]:
    ((kind, value),) = event.items()
    return kind, value


def sort_events(events: Sequence[dict[str, str]], compare: Compare) -> list[dict[str, str]]:
    """Events in version order, ``introduced: "0"`` before everything (OSV schema)."""

    def order(a: dict[str, str], b: dict[str, str]) -> int:
        kind_a, value_a = _event_value(a)
        kind_b, value_b = _event_value(b)
        zero_a = kind_a == "introduced" and value_a == "0"
        zero_b = kind_b == "introduced" and value_b == "0"
        if zero_a or zero_b:
            return int(zero_b) - int(zero_a)
        return compare(value_a, value_b)

    return sorted(events, key=functools.cmp_to_key(order))


def in_range(version: str, events: Sequence[dict[str, str]], compare: Compare) -> Verdict:
    """One ECOSYSTEM/SEMVER range: the schema's event walk, then the ``limit`` bound."""
    # ``limit`` only bounds the range (and may be "*"): it takes no part in the walk.
    ordered = sort_events([e for e in events if "limit" not in e], compare)
    affected = False
    closing: str | None = None
    for event in ordered:
        kind, value = _event_value(event)
        if kind == "introduced":
            if value == "0" or compare(version, value) >= 0:
                affected = True
                closing = None
        elif kind == "fixed":
            if compare(version, value) >= 0:
                affected = False
            elif affected and closing is None:
                closing = value
        elif kind == "last_affected" and compare(version, value) > 0:
            affected = False
    limits = [value for kind, value in map(_event_value, events) if kind == "limit"]
    if affected and limits:
        affected = any(limit == "*" or compare(version, limit) < 0 for limit in limits)
    if not affected:
        return Verdict(False)
    return Verdict(True, (closing,) if closing else ())


def evaluate(entries: Sequence[dict[str, Any]], version: str, compare: Compare) -> Verdict:
    """Whether ``version`` is affected by any of the entries (ranges or ``versions``)."""
    affected = False
    fixed: list[str] = []
    for entry in entries:
        if version in (entry.get("versions") or ()):
            affected = True
        for rng in entry.get("ranges") or ():
            if rng.get("type") == "GIT":
                continue
            try:
                verdict = in_range(version, rng.get("events") or (), compare)
            except (ValueError, TypeError) as exc:
                raise EvaluationError(f"cannot order versions of a range: {exc}") from exc
            if verdict.affected:
                affected = True
                fixed.extend(verdict.fixed)
    return Verdict(affected, tuple(dict.fromkeys(fixed)) if affected else ())
