"""The OSV event algorithm, with the real dpkg comparator (OSV schema "Evaluation")."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from kubegate.match.evaluate import evaluate, in_range, sort_events
from kubegate.match.versions import comparator_for

DPKG = comparator_for("Debian:12")
assert DPKG is not None
CMP = DPKG.compare


def _entry(*events: dict[str, str], versions: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"ranges": [{"type": "ECOSYSTEM", "events": list(events)}], "versions": list(versions)}]


def test_introduced_fixed() -> None:
    entries = _entry({"introduced": "1.0-1"}, {"fixed": "1.0-3"})
    assert not evaluate(entries, "0.9-1", CMP).affected
    assert evaluate(entries, "1.0-1", CMP).affected
    assert evaluate(entries, "1.0-2", CMP).fixed == ("1.0-3",)
    assert not evaluate(entries, "1.0-3", CMP).affected
    assert not evaluate(entries, "1.0-3+b1", CMP).affected


def test_introduced_zero_sorts_first_and_tilde_versions() -> None:
    entries = _entry({"fixed": "2.0~rc1-1"}, {"introduced": "0"})
    assert evaluate(entries, "1.9-1", CMP).affected
    assert evaluate(entries, "2.0~beta-1", CMP).affected
    assert not evaluate(entries, "2.0-1", CMP).affected


def test_unsorted_events_with_two_intervals() -> None:
    events = (
        {"fixed": "3.0-1"},
        {"introduced": "2.5-1"},
        {"fixed": "1.5-1"},
        {"introduced": "1.0-1"},
    )
    entries = _entry(*events)
    assert [evaluate(entries, v, CMP).affected for v in ("0.5", "1.2", "1.7", "2.6", "3.1")] == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert evaluate(entries, "2.6", CMP).fixed == ("3.0-1",)
    assert [next(iter(e.values())) for e in sort_events(events, CMP)] == [
        "1.0-1",
        "1.5-1",
        "2.5-1",
        "3.0-1",
    ]


def test_last_affected_includes_the_version_itself() -> None:
    entries = _entry({"introduced": "0"}, {"last_affected": "1.2-4"})
    assert evaluate(entries, "1.2-4", CMP).affected
    assert evaluate(entries, "1.2-4", CMP).fixed == ()
    assert not evaluate(entries, "1.2-4+deb12u1", CMP).affected


def test_limit_bounds_the_range() -> None:
    entries = _entry({"introduced": "1.0"}, {"limit": "2.0"})
    assert evaluate(entries, "1.5", CMP).affected
    assert not evaluate(entries, "2.0", CMP).affected
    assert not evaluate(entries, "2.1", CMP).affected
    star = _entry({"introduced": "1.0"}, {"limit": "*"})
    assert evaluate(star, "99", CMP).affected


def test_versions_list_and_git_ranges() -> None:
    entries: list[dict[str, Any]] = [
        {
            "versions": ["1.1-1"],
            "ranges": [{"type": "GIT", "repo": "x", "events": [{"introduced": "0"}]}],
        }
    ]
    assert evaluate(entries, "1.1-1", CMP).affected
    # A GIT range with introduced 0 would affect everything if it were (wrongly) evaluated.
    assert not evaluate(entries, "1.2-1", CMP).affected


def test_epochs_order_ranges() -> None:
    entries = _entry({"introduced": "0"}, {"fixed": "1:1.2.11.dfsg-1+deb10u2"})
    assert evaluate(entries, "1:1.2.11.dfsg-1+deb10u1", CMP).affected
    assert not evaluate(entries, "1:1.2.11.dfsg-1+deb10u2", CMP).affected
    # An epoch-less 2.0 sorts below epoch 1: still affected.
    assert evaluate(entries, "2.0-1", CMP).affected


_VERSIONS = st.integers(min_value=0, max_value=40).map(lambda n: f"{n // 10}.{n % 10}-1")


@given(introduced=_VERSIONS, fixed=_VERSIONS, version=_VERSIONS)
def test_single_interval_matches_half_open_definition(
    introduced: str, fixed: str, version: str
) -> None:
    assume(CMP(introduced, fixed) < 0)
    expected = CMP(introduced, version) <= 0 < CMP(fixed, version)
    assert (
        in_range(version, [{"fixed": fixed}, {"introduced": introduced}], CMP).affected is expected
    )


@given(
    events=st.permutations([{"introduced": "1.0-1"}, {"fixed": "2.0-1"}, {"introduced": "3.0-1"}])
)
def test_event_order_in_record_does_not_matter(events: list[dict[str, str]]) -> None:
    assert [in_range(v, events, CMP).affected for v in ("0.5", "1.5", "2.5", "3.5")] == [
        False,
        True,
        False,
        True,
    ]
