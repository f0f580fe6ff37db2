"""Benchmark: inventory of a synthetic large layer against the floor, ``gzip -dc``.

Run: ``PYTHONPATH=src python bench/inventory.py [--mb 150] [--files 20000]``. Builds (streaming,
in a private temp dir) a gzip layer of about 150 MB uncompressed with 20k files and a 2 MB dpkg
status, then times, in the same run: ``gzip -dc`` to /dev/null (the floor), kubegate's inventory
of the layer (cold, no cache), and the same content split in two layers walked with 1 thread
and with 2 threads (is threading worth it?). Peak RSS of each inventory is measured in a child
process. Prints ratios against the floor.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from kubegate.inventory import inventory_image
from kubegate.models import Descriptor, Digest

MEDIA = "application/vnd.oci.image.layer.v1.tar+gzip"
WORDS = [f"word{i}" for i in range(2000)]


def _status(size: int) -> bytes:
    rng = random.Random(1)
    chunks: list[str] = []
    total = 0
    i = 0
    while total < size:
        stanza = (
            f"Package: pkg{i}\nStatus: install ok installed\nArchitecture: amd64\n"
            f"Source: src{i // 3} (1:{i}.0-1)\nVersion: 1:{i}.0-1+b1\n"
            f"Description: {' '.join(rng.choices(WORDS, k=40))}\n\n"
        )
        chunks.append(stanza)
        total += len(stanza)
        i += 1
    return "".join(chunks).encode()


def _content(rng: random.Random, size: int) -> bytes:
    # Half random bytes, half text: compresses about 2:1, like binaries and libraries do.
    half = size // 2
    text = " ".join(rng.choices(WORDS, k=half // 6 + 1)).encode()[: size - half]
    return rng.randbytes(half) + text


def build(path: Path, total_mb: int, files: int, parts: int) -> list[Path]:
    """Write ``parts`` gzip layers with ``files`` files and ``total_mb`` MB between them."""
    rng = random.Random(0)
    per_file = total_mb * 1024 * 1024 // files
    outputs = []
    for part in range(parts):
        out = path / f"layer{part}-of-{parts}.tar.gz"
        with (
            out.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            if part == 0:
                status = _status(2 * 1024 * 1024)
                info = tarfile.TarInfo("var/lib/dpkg/status")
                info.size = len(status)
                tar.addfile(info, io.BytesIO(status))
                data = b"PRETTY_NAME=bench\nID=debian\nVERSION_ID=12\n"
                info = tarfile.TarInfo("etc/os-release")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for i in range(part, files, parts):
                data = _content(rng, per_file)
                info = tarfile.TarInfo(f"usr/lib/bench/d{i % 100}/f{i}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        outputs.append(out)
    return outputs


def _descriptor(path: Path) -> Descriptor:
    import hashlib

    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()
    return Descriptor(MEDIA, Digest(f"sha256:{digest}"), path.stat().st_size)


def child(paths: list[str], workers: int) -> None:
    """Run one inventory and print seconds, package count and peak RSS as JSON."""
    layers = [_descriptor(Path(p)) for p in paths]
    files = {d.digest: Path(p) for d, p in zip(layers, paths, strict=True)}

    @contextmanager
    def opener(descriptor: Descriptor) -> Iterator[BinaryIO]:
        with files[descriptor.digest].open("rb") as handle:
            yield handle

    start = time.perf_counter()
    inv = inventory_image(Digest("sha256:" + "0" * 64), layers, opener, cache=None, workers=workers)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "packages": len(inv.packages), "maxrss_kib": rss}))


def _run_child(paths: list[Path], workers: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(workers), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _best(runs: int, fn):  # type: ignore[no-untyped-def]
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r["seconds"])


def _gzip_floor(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        subprocess.run(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=150)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=int)
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.child is not None:
        child(args.paths, args.child)
        return
    tmp = Path(tempfile.mkdtemp(prefix="kubegate-bench-"))
    try:
        one = build(tmp, args.mb, args.files, 1)
        two = build(tmp, args.mb, args.files, 2)
        size = sum(p.stat().st_size for p in one)
        floor = min(_gzip_floor(one) for _ in range(args.runs))
        single = _best(args.runs, lambda: _run_child(one, 1))
        split1 = _best(args.runs, lambda: _run_child(two, 1))
        split2 = _best(args.runs, lambda: _run_child(two, 2))
        floor2 = min(_gzip_floor(two) for _ in range(args.runs))
        print(f"layer: {args.mb} MB uncompressed, {args.files} files, {size / 1e6:.1f} MB gzip")
        print(f"gzip -dc (floor)           {floor:6.3f} s")
        print(
            f"inventory, 1 layer         {single['seconds']:6.3f} s  "
            f"ratio {single['seconds'] / floor:4.2f}  "
            f"peak RSS {single['maxrss_kib'] / 1024:.0f} MiB  ({single['packages']:.0f} packages)"
        )
        print(f"gzip -dc, 2 layers         {floor2:6.3f} s")
        print(
            f"inventory, 2 layers x1 thr {split1['seconds']:6.3f} s  "
            f"ratio {split1['seconds'] / floor2:4.2f}  "
            f"peak RSS {split1['maxrss_kib'] / 1024:.0f} MiB"
        )
        print(
            f"inventory, 2 layers x2 thr {split2['seconds']:6.3f} s  "
            f"ratio {split2['seconds'] / floor2:4.2f}  "
            f"peak RSS {split2['maxrss_kib'] / 1024:.0f} MiB"
            f"  (speed-up of 2 threads: {split1['seconds'] / split2['seconds']:.2f}x)"
        )
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
