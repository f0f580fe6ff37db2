"""``kubegate db import|update|status``: fill the advisory database and inspect it (docs/db.md).

``update`` fetches from the OSV bucket or a mirror (:mod:`kubegate.vulndb.update`). ``import``
takes zips (``<Ecosystem>/all.zip`` as the OSV bucket serves them) or directories of
OSV JSON; invalid records are skipped and counted (exit 0). ``status`` prints the schema version,
size, and per ecosystem the record count, last import and newest ``modified``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubegate.cli.common import (
    add_limit_arguments,
    add_output_arguments,
    print_line,
    transfer_limits,
)
from kubegate.errors import EXIT_OK, EXIT_UNPROVEN
from kubegate.vulndb.feeds import DEFAULT_ECOSYSTEMS

if TYPE_CHECKING:
    from kubegate.vulndb import DBStatus


def _add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="PATH", help="advisory database file (default: $KUBEGATE_DB, else cache)"
    )


def register(subparsers: Any) -> None:
    """Add the ``db`` command and its sub-commands."""
    parser = subparsers.add_parser("db", help="manage the OSV advisory database")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    importer = actions.add_parser(
        "import",
        help="import OSV zips or directories of OSV JSON, NVD 2.0 feeds, the Debian tracker",
        description="Files are told apart by content: an NVD CVE 2.0 feed (.json or .json.gz, "
        '"format": "NVD_CVE"; a .meta beside it is checked), the Debian security tracker JSON, '
        "else OSV (zips, directories of OSV JSON, single records).",
    )
    importer.add_argument(
        "paths", nargs="+", metavar="PATH", help="zip, directory, .json or .json.gz file"
    )
    _add_db_argument(importer)
    add_output_arguments(importer)
    importer.set_defaults(run=run_import)
    updater = actions.add_parser(
        "update",
        help="download or refresh OSV advisories, NVD feeds and the Debian security tracker",
        description="Per ecosystem: a first full all.zip download, then incremental updates "
        "from modified_id.csv. Default ecosystems: those of images seen in the inventory cache, "
        f"then {', '.join(DEFAULT_ECOSYSTEMS)}. Then the NVD 2.0 feeds (every yearly feed "
        "first and weekly, else the modified feed; unchanged .meta skips a download) and the "
        "Debian security tracker (optional: a failure only warns).",
    )
    updater.add_argument(
        "--ecosystem",
        action="append",
        default=[],
        metavar="NAME",
        help="ecosystem to update (repeatable; default: see above)",
    )
    updater.add_argument(
        "--source",
        metavar="URL|DIR",
        help="mirror with the bucket's layout (default: $KUBEGATE_DB_SOURCE, else the public "
        "OSV bucket)",
    )
    updater.add_argument(
        "--nvd-source",
        metavar="URL|DIR",
        help="NVD 2.0 feeds (default: $KUBEGATE_NVD_SOURCE, else config db.nvdSource, else "
        "<mirror>/nvd/ with a mirror, else the public NVD feeds)",
    )
    updater.add_argument(
        "--debian-tracker-source",
        metavar="URL|FILE",
        help="Debian security tracker JSON (default: $KUBEGATE_DEBIAN_TRACKER_SOURCE, else "
        "config db.debianTrackerSource, else <mirror>/debian-tracker.json with a mirror, else "
        "the public tracker)",
    )
    updater.add_argument(
        "--config",
        type=Path,
        help="configuration file for db.nvdSource/db.debianTrackerSource (default "
        "kubegate.yaml in the user config dir)",
    )
    _add_db_argument(updater)
    add_limit_arguments(
        updater,
        default_timeout=None,
        timeout_help="bound the whole update; downloads are otherwise bounded by "
        "--idle-timeout and --min-rate, and retries by a budget",
    )
    add_output_arguments(updater)
    updater.set_defaults(run=run_update)
    status = actions.add_parser("status", help="show what the advisory database holds")
    _add_db_argument(status)
    status.add_argument("--format", choices=("table", "json"), default="table")
    add_output_arguments(status)
    status.set_defaults(run=run_status)


def run_import(args: argparse.Namespace) -> int:
    """Import and print the counts (OSV, NVD feeds and the Debian tracker told by content)."""
    from kubegate.vulndb import resolve_db_path
    from kubegate.vulndb.importer import check_paths, import_records, iter_sources
    from kubegate.vulndb.nvdimport import classify, feed_file, import_nvd, import_tracker

    db_path = resolve_db_path(args.db)
    paths = [Path(p) for p in args.paths]
    check_paths(paths)
    kinds = classify(paths)
    if kinds.osv:
        stats = import_records(db_path, iter_sources(kinds.osv))  # paths checked above
        print(
            f"imported {stats.read} records into {db_path}: {stats.added} added, "
            f"{stats.replaced} replaced, {stats.unchanged} unchanged, {stats.withdrawn} withdrawn, "
            f"{stats.invalid} invalid (skipped)"
        )
        for ecosystem, count in sorted(stats.ecosystems.items()):
            print(f"  {ecosystem}: {count}")
    if kinds.nvd:
        nvd = import_nvd(db_path, [feed_file(path) for path in kinds.nvd])
        print(
            f"imported {nvd.read} NVD CVEs from {nvd.files} feed(s) into {db_path}: "
            f"{nvd.added} added, {nvd.replaced} replaced, {nvd.unchanged} unchanged, "
            f"{nvd.invalid} invalid (skipped)"
        )
    for path in kinds.tracker:
        tracker = import_tracker(db_path, path)
        print(
            f"imported the Debian security tracker into {db_path}: {tracker.packages} packages, "
            f"{tracker.entries} CVE entries with an urgency"
        )
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    """Update, print one line per feed; exit 2 if any feed failed (the tracker only warns)."""
    from kubegate.cli.dbupdate import (
        default_source,
        describe,
        fetch_options,
        ordered_defaults,
        resolve_severity_sources,
        update_progress,
    )
    from kubegate.config import find_config, user_config_dir
    from kubegate.vulndb import resolve_db_path
    from kubegate.vulndb.update import parse_ecosystems, update

    limits = transfer_limits(args, time.monotonic())
    ecosystems = parse_ecosystems(args.ecosystem) if args.ecosystem else ordered_defaults()
    config = find_config(args.config, user_config_dir())
    db_path = resolve_db_path(args.db)
    source = args.source or default_source()
    severity = resolve_severity_sources(
        source,
        nvd=args.nvd_source,
        tracker=args.debian_tracker_source,
        config_nvd=config.db.nvd_source,
        config_tracker=config.db.debian_tracker_source,
    )
    with update_progress(args.quiet) as progress:
        results = update(
            db_path,
            ecosystems,
            source=source,
            options=fetch_options(args, limits),
            progress=progress,
            severity=severity,
        )
    failed = [r for r in results if r.error is not None and not r.optional]
    for result in results:
        if result.error is None:
            print(describe(result))
        elif result.optional:
            print(f"{result.ecosystem}: update failed (optional): {result.error.diagnostics()}")
    # One line per distinct problem: an unreachable source fails every ecosystem the same way.
    problems: dict[str, list[str]] = {}
    for result in failed:
        if result.error is not None:
            problems.setdefault(result.error.diagnostics(), []).append(result.ecosystem)
    for problem, names in problems.items():
        print_line(f"error: {', '.join(names)}: update failed: {problem}")
    return EXIT_UNPROVEN if failed else EXIT_OK


def status_document(status: DBStatus) -> dict[str, Any]:
    """The ``db status --format json`` document."""
    return {
        "path": str(status.path),
        "schemaVersion": status.schema_version,
        "sizeBytes": status.size_bytes,
        "records": status.records,
        "ecosystems": [
            {
                "ecosystem": eco.ecosystem,
                "records": eco.records,
                "lastImport": eco.last_import.isoformat(),
                "newestModified": eco.newest_modified.isoformat() if eco.newest_modified else None,
            }
            for eco in status.ecosystems
        ],
        "nvd": _nvd_document(status),
        "debianTracker": (
            None
            if status.debian_tracker is None
            else {
                "lastImport": status.debian_tracker.last_import.isoformat(),
                "entries": status.debian_tracker.entries,
            }
        ),
    }


def _nvd_document(status: DBStatus) -> dict[str, Any] | None:
    nvd = status.nvd
    if nvd is None:
        return None
    return {
        "cves": nvd.cves,
        "newestModified": nvd.newest_modified.isoformat() if nvd.newest_modified else None,
        "lastImport": nvd.last_import.isoformat(),
        "lastFullFetch": nvd.last_full.isoformat() if nvd.last_full else None,
    }


def run_status(args: argparse.Namespace) -> int:
    """Print the database status."""
    from kubegate.vulndb import VulnDB

    with VulnDB.open(args.db) as db:
        status = db.status()
    if args.format == "json":
        print(json.dumps(status_document(status), indent=2))
        return EXIT_OK
    print(f"database: {status.path}")
    print(f"schema version: {status.schema_version}")
    print(f"size: {status.size_bytes} bytes")
    print(f"records: {status.records}")
    header = ("ECOSYSTEM", "RECORDS", "LAST IMPORT (UTC)", "NEWEST MODIFIED (UTC)")
    rows = [
        (
            eco.ecosystem,
            str(eco.records),
            f"{eco.last_import:%Y-%m-%d %H:%M:%S}",
            f"{eco.newest_modified:%Y-%m-%d %H:%M:%S}" if eco.newest_modified else "-",
        )
        for eco in status.ecosystems
    ]
    _print_table([header, *rows])
    print()
    source_header = (
        "SEVERITY SOURCE",
        "ENTRIES",
        "LAST IMPORT (UTC)",
        "NEWEST MODIFIED (UTC)",
        "LAST FULL FETCH (UTC)",
    )
    sources = [("NVD", "-", "never imported", "-", "-")]
    if status.nvd is not None:
        nvd = status.nvd
        sources = [
            (
                "NVD",
                str(nvd.cves),
                f"{nvd.last_import:%Y-%m-%d %H:%M:%S}",
                f"{nvd.newest_modified:%Y-%m-%d %H:%M:%S}" if nvd.newest_modified else "-",
                f"{nvd.last_full:%Y-%m-%d %H:%M:%S}" if nvd.last_full else "-",
            )
        ]
    tracker = status.debian_tracker
    sources.append(
        ("Debian tracker", "-", "never imported", "-", "-")
        if tracker is None
        else (
            "Debian tracker",
            str(tracker.entries),
            f"{tracker.last_import:%Y-%m-%d %H:%M:%S}",
            "-",
            "-",
        )
    )
    _print_table([source_header, *sources])
    return EXIT_OK


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
