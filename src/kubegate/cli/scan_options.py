"""Options of the commands that judge images (``image``, ``scan``): DB, its update, policy.

``kubegate image`` and ``kubegate scan`` call :func:`add_db_arguments` and
:func:`add_policy_arguments` when registering, then :func:`policy_from_args` and
:func:`db_max_age_from_args` when running; flags mirror Trivy's (README "Policy").
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from kubegate.decide.policy import DEFAULT_DB_MAX_AGE, Policy, parse_duration


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db PATH`` and ``--db-max-age DURATION``."""
    parser.add_argument(
        "--db", metavar="PATH", help="advisory database file (default: $KUBEGATE_DB, else cache)"
    )
    parser.add_argument(
        "--db-max-age",
        metavar="DURATION",
        default="120h",
        help="refuse advisories older than this (counted from their last import; default 120h)",
    )


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """``--severity``, ``--severity-threshold``, ``--ignore-unfixed``."""
    parser.add_argument(
        "--severity",
        metavar="LIST",
        help="severities that block, comma-separated (default CRITICAL,HIGH)",
    )
    parser.add_argument(
        "--severity-threshold", metavar="SEVERITY", help="block this severity and above"
    )
    parser.add_argument(
        "--ignore-unfixed",
        action="store_true",
        help="findings without a fixed version do not block (still reported)",
    )


def policy_from_args(args: argparse.Namespace) -> Policy:
    """The policy the options ask for (UsageError, exit 3, on bad values)."""
    return Policy.from_options(
        args.severity, args.severity_threshold, ignore_unfixed=args.ignore_unfixed
    )


def db_max_age_from_args(args: argparse.Namespace) -> timedelta:
    """``--db-max-age`` as a duration."""
    value = getattr(args, "db_max_age", None)
    return parse_duration(value) if value else DEFAULT_DB_MAX_AGE


def add_db_update_arguments(parser: argparse.ArgumentParser) -> None:
    """``--skip-db-update`` and ``--db-source`` of the image-judging commands."""
    parser.add_argument(
        "--skip-db-update",
        action="store_true",
        help="do not update the advisory database before scanning",
    )
    parser.add_argument(
        "--db-source",
        metavar="URL|DIR",
        help="OSV bucket mirror to update from (default: $KUBEGATE_DB_SOURCE, else the public "
        "OSV bucket)",
    )
