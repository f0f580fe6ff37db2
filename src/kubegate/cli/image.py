"""``kubegate image REF``: judge one image (registry reference or local layout) under the policy.

registry -> inventory -> match -> policy -> report, through ``kubegate.scan``'s shared pieces.
Exit 0 nothing blocks, 1 a finding blocks, 2 the image could not be proven clean (registry,
inventory or database trouble, a package that could not be matched, findings that cannot be
rated without fresh NVD data), 3 usage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

from kubegate.cli.common import (
    DEFAULT_TIMEOUT,
    add_limit_arguments,
    add_output_arguments,
    add_registry_arguments,
    login_registry_of,
    print_line,
    registry_options,
    transfer_limits,
)
from kubegate.cli.scan_options import (
    add_db_arguments,
    add_db_update_arguments,
    add_policy_arguments,
    db_max_age_from_args,
    policy_from_args,
)
from kubegate.errors import EXIT_UNPROVEN
from kubegate.report import ImageInfo, OutputFormat, PlatformInfo, render_image_report


def register(subparsers: Any) -> None:
    """Add the ``image`` sub-command."""
    parser = subparsers.add_parser(
        "image",
        help="judge one image under the policy",
        description="Inventory one image (registry reference, oci:PATH[:TAG], oci-archive:PATH "
        "or docker-archive:PATH), match it against the advisory database and judge it.",
    )
    parser.add_argument("reference", metavar="REF", help="image reference or local image")
    parser.add_argument(
        "--format",
        choices=[f.value for f in OutputFormat],
        default=OutputFormat.TABLE.value,
        help="output format (default table)",
    )
    add_policy_arguments(parser)
    add_db_arguments(parser)
    add_db_update_arguments(parser)
    add_registry_arguments(parser)
    add_limit_arguments(
        parser,
        default_timeout=DEFAULT_TIMEOUT,
        timeout_help="bound the whole command; a registry not done by then is exit 2",
    )
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Judge the image and print the report."""
    # Imported here, not at start-up (STYLE.md: start-up time counts).
    from kubegate.cli.dbupdate import refresh_db
    from kubegate.decide.policy import exit_code, judge, missing_severity, missing_severity_message
    from kubegate.inventory import InventoryCache
    from kubegate.match.matcher import Matcher
    from kubegate.registry import RegistryClient
    from kubegate.scan import ImageInspector, match_image, rating_data, tracker_fresh
    from kubegate.vulndb import VulnDB, resolve_db_path

    limits = transfer_limits(args, time.monotonic())
    policy = policy_from_args(args)
    max_age = db_max_age_from_args(args)
    options = registry_options(args, login_registry_of(args.reference), limits)
    db_path = resolve_db_path(args.db)
    refresh_db(args, db_path, max_age, limits=limits)
    with VulnDB(db_path) as db:
        cache = InventoryCache()
        try:
            with RegistryClient(options) as client:
                image = ImageInspector(client, cache).inspect(args.reference)
        finally:
            cache.close()
        matched = match_image(Matcher(db, tracker=tracker_fresh(db, max_age)), image)
        db.check_fresh(matched.ecosystems, max_age)
        sources = rating_data(db, max_age)
    judged = judge(matched.findings, policy)
    unrated = missing_severity(judged, policy, sources)
    info = ImageInfo(
        reference=image.reference,
        digest=image.digest,
        os=image.os,
        platforms=tuple(PlatformInfo(p.platform, p.manifest_digest) for p in image.platforms),
    )
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print(render_image_report(info, judged, args.format, width=width), end="")
    for problem in matched.problems:
        print_line(f"error: {image.reference}: cannot match {problem}")
    for platform, reason in matched.gaps:
        print_line(f"error: {image.reference}: {platform}: {reason}")
    if unrated:
        message = missing_severity_message(len(unrated), sources)
        print_line(f"error: {image.reference}: {message}")
    code = exit_code(judged, undecided=bool(matched.problems or matched.gaps or unrated))
    if code == EXIT_UNPROVEN:
        reasons = [
            f"{count} {what}"
            for count, what in (
                (len(matched.problems), "package(s) could not be matched"),
                (len(unrated), "finding(s) cannot be rated"),
            )
            if count
        ]
        why = "; ".join(reasons) or "its inventory proves nothing"
        print_line(f"error: {image.reference}: not proven clean ({why})")
    return code
