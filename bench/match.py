"""Benchmark: import a 200,000-record generated OSV corpus and match a 1,000-package inventory.

Run: ``PYTHONPATH=src python -m bench.match [--records N]``. Prints import records/s and DB size
against a baseline measured in the same run (reading the zip and ``json.loads`` of every record,
no database), and the match time of a 1,000-package Debian 12 inventory, cold (new Matcher) and
warm (the same Matcher again), against a trivial indexed SQL lookup loop over the same packages.
Targets (issue): import >= 10,000 records/s; warm match < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path

from bench.corpus import sources, write_zip
from kubegate.match import Matcher
from kubegate.models import OSInfo, Package
from kubegate.vulndb import VulnDB, import_paths


def _baseline_parse(archive: Path) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            json.loads(zf.read(info))
            count += 1
    return count, time.perf_counter() - start


def _inventory(total_records: int, size: int) -> list[Package]:
    rng = random.Random(7)
    pool = sources(total_records, random.Random(1))
    packages: list[Package] = []
    chosen = [pool[0], *rng.sample(pool[1:], min(len(pool) - 1, size // 2))]
    for source in chosen:
        for binary in range(rng.randint(1, 3)):
            if len(packages) == size:
                return packages
            name = f"{source.name}-bin{binary}"
            packages.append(
                Package(
                    name=name,
                    version=source.installed,
                    type="deb",
                    purl=f"pkg:deb/debian/{name}@{source.installed}",
                    extractor="dpkg",
                    source_name=source.name,
                    source_version=source.installed,
                )
            )
    return packages


def _baseline_lookup(db_path: Path, packages: list[Package]) -> float:
    conn = sqlite3.connect(db_path)
    start = time.perf_counter()
    for package in packages:
        conn.execute(
            "SELECT id FROM affects WHERE ecosystem=? AND name=?",
            ("Debian:12", package.source_name),
        ).fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--packages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp, "Debian-all.zip")
        zip_size = write_zip(archive, args.records)
        parsed, parse_s = _baseline_parse(archive)
        db_path = Path(tmp, "osv.sqlite3")
        start = time.perf_counter()
        stats = import_paths(db_path, [archive])
        import_s = time.perf_counter() - start
        db_size = db_path.stat().st_size
        print(f"corpus: {parsed} records, zip {zip_size / 1e6:.1f} MB")
        print(
            f"baseline zip read + json.loads: {parsed / parse_s:,.0f} records/s ({parse_s:.2f} s)"
        )
        print(
            f"import: {stats.added:,} records in {import_s:.2f} s = {stats.added / import_s:,.0f} "
            f"records/s ({parse_s / import_s:.2f}x baseline speed); DB {db_size / 1e6:.1f} MB"
        )
        packages = _inventory(args.records, args.packages)
        lookup_s = _baseline_lookup(db_path, packages)
        os_info = OSInfo("debian", "12")
        with VulnDB(db_path) as db:
            matcher = Matcher(db)
            start = time.perf_counter()
            cold = matcher.match(packages, os_info)
            cold_s = time.perf_counter() - start
            warm_runs = []
            for _ in range(5):
                start = time.perf_counter()
                warm = matcher.match(packages, os_info)
                warm_runs.append(time.perf_counter() - start)
            warm_s = min(warm_runs)
            fresh = Matcher(db)
            start = time.perf_counter()
            fresh.match(packages, os_info)
            fresh_s = time.perf_counter() - start
        assert warm == cold
        print(
            f"inventory: {len(packages)} packages from "
            f"{len({p.source_name for p in packages})} sources; {len(cold.findings)} findings"
        )
        print(f"baseline indexed SQL lookup loop: {lookup_s * 1000:.1f} ms")
        print(f"match cold (first Matcher): {cold_s * 1000:.1f} ms ({cold_s / lookup_s:.1f}x)")
        print(f"match cold (second Matcher, DB pages cached): {fresh_s * 1000:.1f} ms")
        print(f"match warm (same Matcher): {warm_s * 1000:.1f} ms ({warm_s / lookup_s:.1f}x)")


if __name__ == "__main__":
    main()
