"""Benchmark: importing NVD 2.0 feeds of 300,000 generated CVEs, against ``gzip -dc | json.load``.

Run: ``PYTHONPATH=src:. python -m bench.nvd [--cves 300000] [--modified 5000] [--strict]``.
Generates (once, cached under ``bench/.out/nvd-<N>/``) yearly ``nvdcve-2.0-YYYY.json.gz`` feeds
with ``.meta`` files shaped like the real ones (bench/nvdcorpus.py: several metrics per CVE,
descriptions, CPE configurations, references) and a ``modified`` feed of ``--modified`` CVEs
(half of them changed, half new). Then, each in its own subprocess so that its peak RSS
(``ru_maxrss`` from ``wait4``) is its own:

- **baseline**: ``gzip -dc FILE | python -c 'import json,sys; json.load(sys.stdin)'`` per yearly
  feed (what merely parsing the same files costs);
- **full import**: :func:`kubegate.vulndb.nvdimport.import_nvd` of every yearly feed (``.meta``
  sha256 checked) into an empty database;
- **incremental**: the ``modified`` feed into that database.

Targets (issue 11): full import >= 20,000 CVEs/s, peak RSS < 300 MB, database growth < 150 MB,
incremental < 2 s. Wall and CPU (user+sys) times are both printed: on a shared machine the wall
time depends on the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.nvdcorpus import write_corpus, write_modified
from kubegate.vulndb.nvd import parse_meta

ROOT = Path(__file__).resolve().parent
OUT = ROOT / ".out"

_IMPORT = """
import sys, time
from pathlib import Path
from kubegate.vulndb.nvdimport import feed_file, import_nvd
db, files = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
start = time.perf_counter()
stats = import_nvd(db, [feed_file(f, require_meta=True) for f in files])
print(time.perf_counter() - start, stats.read, stats.added, stats.replaced, stats.unchanged)
"""
_EMPTY = """
import sys
from pathlib import Path
from kubegate.vulndb.store import connect
connect(Path(sys.argv[1]), create=True).close()
"""


@dataclass(frozen=True, slots=True)
class Run:
    """One measured subprocess."""

    wall: float
    cpu: float
    max_rss_mb: float
    stdout: str


def _run(argv: list[str]) -> Run:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT.parent / "src"), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


def _corpus(cves: int, modified: int) -> tuple[list[Path], Path]:
    directory = OUT / f"nvd-{cves}"
    done = directory / ".complete"
    if not done.exists():
        print(f"generating {cves} CVEs into {directory} (once) ...", flush=True)
        start = time.perf_counter()
        write_corpus(directory, cves)
        write_modified(directory / "modified", modified // 2, modified - modified // 2)
        done.write_text("ok\n")
        print(f"  generated in {time.perf_counter() - start:.0f}s")
    return sorted(directory.glob("nvdcve-2.0-*.json.gz")), directory / "modified"


def _mb(size: int) -> float:
    return size / (1 << 20)


def main() -> int:
    """Print the figures and PASS/MISS per target; exit 1 on a MISS with --strict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cves", type=int, default=300_000)
    parser.add_argument("--modified", type=int, default=5_000)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    files, modified_dir = _corpus(args.cves, args.modified)
    gz = sum(f.stat().st_size for f in files)
    raw = sum(
        parse_meta(meta.read_text(), str(meta)).size or 0
        for meta in sorted(files[0].parent.glob("*.meta"))
    )
    print(
        f"corpus: {args.cves} CVEs in {len(files)} yearly feeds, {_mb(gz):.0f} MiB gzip, "
        f"{_mb(raw):.0f} MiB JSON ({raw / args.cves / 1024:.1f} KiB per CVE)"
    )

    parse = "import json,sys; json.load(sys.stdin)"
    base_wall = base_cpu = 0.0
    for feed in files:
        run = _run(["/bin/sh", "-c", f"gzip -dc '{feed}' | {sys.executable} -c '{parse}'"])
        base_wall += run.wall
        base_cpu += run.cpu
    print(
        f"baseline gzip -dc | json.load: {base_wall:.1f}s wall, {base_cpu:.1f}s CPU "
        f"({args.cves / base_wall:,.0f} CVEs/s wall)"
    )

    db = OUT / "nvd-bench.sqlite3"
    for leftover in (db, db.with_name(db.name + "-journal")):
        leftover.unlink(missing_ok=True)
    _run([sys.executable, "-c", _EMPTY, str(db)])
    empty = db.stat().st_size
    full = _run([sys.executable, "-c", _IMPORT, str(db), *map(str, files)])
    seconds, read = float(full.stdout.split()[0]), int(full.stdout.split()[1])
    assert read == args.cves, full.stdout
    growth = db.stat().st_size - empty
    rate = args.cves / seconds
    print(
        f"full import: {seconds:.1f}s in the importer ({full.wall:.1f}s process wall, "
        f"{full.cpu:.1f}s CPU): {rate:,.0f} CVEs/s wall, {args.cves / full.cpu:,.0f} CVEs/s CPU; "
        f"{full.wall / base_wall:.2f}x the baseline wall, {full.cpu / base_cpu:.2f}x its CPU"
    )
    print(f"  peak RSS {full.max_rss_mb:.0f} MB, database growth {_mb(growth):.1f} MiB")

    modified = sorted(modified_dir.glob("*.json.gz"))
    inc = _run([sys.executable, "-c", _IMPORT, str(db), *map(str, modified)])
    inc_seconds, inc_read, added, replaced, _ = inc.stdout.split()
    print(
        f"incremental modified feed: {float(inc_seconds):.2f}s in the importer "
        f"({inc.wall:.2f}s process wall incl. start-up), {inc_read} CVEs: {added} added, "
        f"{replaced} replaced"
    )

    targets = [
        ("full import >= 20,000 CVEs/s", rate >= 20_000),
        ("peak RSS < 300 MB", full.max_rss_mb < 300),
        ("database growth < 150 MB", growth < 150 * 1_000_000),
        ("incremental < 2 s", float(inc_seconds) < 2.0),
    ]
    for name, ok in targets:
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    return 1 if args.strict and not all(ok for _, ok in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
