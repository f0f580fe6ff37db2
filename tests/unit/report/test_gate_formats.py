"""Scan report formats: every :class:`GateFormat` has exactly one writer."""

from __future__ import annotations

from kubegate.report.gate import GATE_WRITERS, GateFormat


def test_every_format_has_one_writer() -> None:
    assert set(GATE_WRITERS) == set(GateFormat)
    assert [f.value for f in GateFormat] == ["table", "json", "sarif", "junit", "markdown"]
