"""Benchmark: a full ``db update`` of a 200,000-record generated corpus served on 127.0.0.1.

Run: ``PYTHONPATH=src python -m bench.dbupdate [--records N]``. Writes the corpus as
``Debian/all.zip`` (bench/corpus.py) plus a ``modified_id.csv``, serves the tree with a threaded
``http.server`` on 127.0.0.1, and times :func:`kubegate.vulndb.update.update` into an empty
database (HEAD, download to a temp file, zip check, import). The baseline, measured in the same
run, is :func:`kubegate.vulndb.import_paths` of the same zip from local disk into an empty
database: the ratio is what the network path and its checks cost on top of the import.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.corpus import write_zip
from kubegate.vulndb import VulnDB, import_paths
from kubegate.vulndb.update import update


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(root: Path) -> tuple[ThreadingHTTPServer, threading.Thread]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def main() -> None:
    """Print the full-update time against the local-import baseline."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubegate-bench-") as work:
        root = Path(work, "bucket")
        (root / "Debian").mkdir(parents=True)
        archive = root / "Debian" / "all.zip"
        size = write_zip(archive, args.records)
        (root / "Debian" / "modified_id.csv").write_text("2025-12-31T00:00:00Z,DSA-1-1\n")
        print(f"corpus: {args.records} records, all.zip {size / (1 << 20):.1f} MiB")

        start = time.perf_counter()
        stats = import_paths(Path(work, "baseline.db"), [archive])
        baseline = time.perf_counter() - start
        print(f"baseline import_paths from local disk: {baseline:.2f}s ({stats.added} added)")

        server, thread = _serve(root)
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            db_path = Path(work, "db", "osv.db")
            start = time.perf_counter()
            (result,) = update(db_path, ["Debian"], source=url)
            elapsed = time.perf_counter() - start
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        if result.error is not None:
            raise SystemExit(f"update failed: {result.error.diagnostics()}")
        with VulnDB(db_path) as db:
            held = db.status().records
        assert result.stats is not None
        print(
            f"full db update over HTTP: {elapsed:.2f}s ({result.stats.added} added, "
            f"{held} held, {result.downloaded / (1 << 20):.1f} MiB downloaded)"
        )
        print(f"ratio update/import: {elapsed / baseline:.2f}x")


if __name__ == "__main__":
    main()
