"""``kubegate db import|update|status``: fill the advisory database and inspect it (docs/db.md).

``update`` fetches from the OSV bucket or a mirror (:mod:`kubegate.vulndb.update`). ``import``
takes zips (``<Ecosystem>/all.zip`` as the OSV bucket serves them) or directories of
OSV JSON; invalid records are skipped and counted (exit 0). ``status`` prints the schema version,
size, and per ecosystem the record count, last import and newest ``modified``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubegate.cli.common import add_limit_arguments, add_output_arguments, transfer_limits
from kubegate.display import visible
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
    importer = actions.add_parser("import", help="import OSV zips or directories of OSV JSON")
    importer.add_argument("paths", nargs="+", metavar="PATH", help="zip, directory or .json file")
    _add_db_argument(importer)
    add_output_arguments(importer)
    importer.set_defaults(run=run_import)
    updater = actions.add_parser(
        "update",
        help="download or refresh OSV advisories from the OSV bucket or a mirror",
        description="Per ecosystem: a first full all.zip download, then incremental updates "
        "from modified_id.csv. Default ecosystems: those of images seen in the inventory cache, "
        f"then {', '.join(DEFAULT_ECOSYSTEMS)}.",
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
    """Import and print the counts."""
    from kubegate.vulndb import import_paths, resolve_db_path

    db_path = resolve_db_path(args.db)
    stats = import_paths(db_path, [Path(p) for p in args.paths])
    print(
        f"imported {stats.read} records into {db_path}: {stats.added} added, "
        f"{stats.replaced} replaced, {stats.unchanged} unchanged, {stats.withdrawn} withdrawn, "
        f"{stats.invalid} invalid (skipped)"
    )
    for ecosystem, count in sorted(stats.ecosystems.items()):
        print(f"  {ecosystem}: {count}")
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    """Update, print one line per ecosystem; exit 2 if any ecosystem failed."""
    from kubegate.cli.dbupdate import (
        default_source,
        describe,
        fetch_options,
        ordered_defaults,
        update_progress,
    )
    from kubegate.vulndb import resolve_db_path
    from kubegate.vulndb.update import parse_ecosystems, update

    limits = transfer_limits(args, time.monotonic())
    ecosystems = parse_ecosystems(args.ecosystem) if args.ecosystem else ordered_defaults()
    db_path = resolve_db_path(args.db)
    with update_progress(args.quiet) as progress:
        results = update(
            db_path,
            ecosystems,
            source=args.source or default_source(),
            options=fetch_options(args, limits),
            progress=progress,
        )
    failed = [r for r in results if r.error is not None]
    for result in results:
        if result.error is None:
            print(describe(result))
    # One line per distinct problem: an unreachable source fails every ecosystem the same way.
    problems: dict[str, list[str]] = {}
    for result in failed:
        if result.error is not None:
            problems.setdefault(result.error.diagnostics(), []).append(result.ecosystem)
    for problem, names in problems.items():
        line = visible(f"{', '.join(names)}: update failed: {problem}")
        print(f"kubegate: error: {line}", file=sys.stderr)
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
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return EXIT_OK
