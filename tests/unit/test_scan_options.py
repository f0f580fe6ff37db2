"""Policy and DB options shared by the image-judging commands."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubegate.cli import ArgumentParser
from kubegate.cli.scan_options import (
    add_db_arguments,
    add_policy_arguments,
    db_max_age_from_args,
    policy_from_args,
)
from kubegate.errors import UsageError
from kubegate.models import Severity


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="kubegate image")
    add_db_arguments(parser)
    add_policy_arguments(parser)
    return parser


def test_defaults() -> None:
    args = _parser().parse_args([])
    assert policy_from_args(args).blocking == {Severity.CRITICAL, Severity.HIGH}
    assert db_max_age_from_args(args) == timedelta(hours=120)


def test_values() -> None:
    args = _parser().parse_args(["--severity-threshold", "low", "--db-max-age", "2d"])
    assert Severity.LOW in policy_from_args(args).blocking
    assert db_max_age_from_args(args) == timedelta(days=2)


def test_bad_values_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        db_max_age_from_args(_parser().parse_args(["--db-max-age", "soon"]))
    with pytest.raises(UsageError):
        both = ["--severity", "HIGH", "--severity-threshold", "LOW"]
        policy_from_args(_parser().parse_args(both))
