"""Benchmark: ``kubegate scan`` of a Flux fleet of 300 image uses of 60 distinct images.

Run by hand from the repository root (never in CI)::

    /work/venv/bin/python bench/gate.py [--runs 2] [--keep DIR] [--strict]

What it does, in one run:

1. Generates 60 images deterministically (same bytes every run), each of four or five gzip
   layers: three shared base layers (a Debian 10 like layer whose ``var/lib/dpkg/status`` holds
   400 packages in ~1.3 MB, with their ``info/*.list`` files and ~6 MB of other files; a
   "python" and a "node" runtime layer of ~3 MB each, files without package metadata since
   this tree matches dpkg versions only), then one or two small application layers of its own.
   Half of the images sit on Debian + python, half on Debian + node.
2. Starts Debian's ``docker-registry`` on 127.0.0.1 (``start_registry`` from
   ``tests/fixtures/registry.py``, temporary storage) and pushes the images, shared blobs
   mounted across repositories instead of uploaded again.
3. Writes a Flux fleet: ``clusters/bench`` holds six Flux Kustomizations, each rendering an
   ``apps/teamN`` directory of 50 Deployments; the 300 containers name the 60 images by tag.
4. Imports ``examples/osv`` and ``examples/nvd`` into a private advisory database with
   kubegate's importers.
5. Times ``python -m kubegate scan FLEET --db DB --format json --skip-db-update`` as a
   subprocess (PYTHONPATH=src), rounds interleaved, best of ``--runs``: cold (a fresh
   ``KUBEGATE_CACHE_DIR``), cold with ``--concurrency 1``, warm (the cache of the cold run: only
   tag -> digest requests reach the registry) and ``kubegate images`` on the same fleet (render
   alone, the floor of every scan). Every scan must exit 1 (the Debian base carries the
   vulnerable openssl and zlib of ``examples/osv``) with 60 images, 300 uses and the same
   findings in every run, nothing unproven; the first warm scan is repeated with ``-v``
   (untimed) to check it made one ``HEAD`` per image and no other request but the ``/v2/``
   ping. Anything else stops the bench (exit 2).

Targets (PASS/MISS; ``--strict`` exits 1 on a MISS): warm < 2 s and >= 20x faster than cold;
cold with the default concurrency >= 1.6x faster than with ``--concurrency 1``.

``--wan [--repeat 3] [--images 60] [--latency-ms 20] [--mbit 100]`` runs the WAN bench instead
(issue 16): the same fleet with the registry behind ``bench/wan.py``, kubegate cold (default and
``--concurrency 1``), warm (same revision, one tag changed, and on loopback) against Trivy 0.59.1
once per image (sequential cold and warm, four at a time), connections counted by the proxy;
see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.oci import (  # noqa: E402
    OCI_LAYER_GZIP,
    Blob,
    BuiltImage,
    build_image,
    put_manifest,
    tar_layer,
)
from tests.fixtures.registry import RegistryServer, start_registry, stop_registry  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))
from kubegate.cli.scan import DEFAULT_CONCURRENCY  # noqa: E402

IMAGES = 60
KUSTOMIZATIONS = 6
WORKLOADS_PER_KUSTOMIZATION = 50
USES = KUSTOMIZATIONS * WORKLOADS_PER_KUSTOMIZATION
DEB_PACKAGES = 400
RUNTIME_MODULES = 800
WARM_LIMIT_SECONDS = 2.0
WARM_SPEEDUP = 20.0
CONCURRENCY_SPEEDUP = 1.6

BUSTER = (
    'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nNAME="Debian GNU/Linux"\nVERSION_ID="10"\n'
    'VERSION="10 (buster)"\nVERSION_CODENAME=buster\nID=debian\n'
)
#: Real packages whose versions examples/osv judges vulnerable: every image is BLOCKED.
REAL_DEBS = (
    ("libssl1.1", "openssl", "1.1.1d-0+deb10u6"),
    ("openssl", "openssl", "1.1.1d-0+deb10u6"),
    ("zlib1g", "zlib", "1:1.2.11.dfsg-1"),
)
WORDS = (
    "library runtime shared data utilities common files support module system network "
    "protocol client server daemon config parser binding crypto compression locale "
    "terminal database graphics kernel interface documentation development tools"
).split()

FLUX_KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: team{t}
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/team{t}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  targetNamespace: team{t}
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{n:02d}
spec:
  selector:
    matchLabels:
      app: app-{n:02d}
  template:
    metadata:
      labels:
        app: app-{n:02d}
    spec:
      containers:
        - name: app
          image: {image}
"""


#: kubegate's debug line for each registry request: "REF: METHOD URL -> STATUS".
REQUEST = re.compile(r": (HEAD|GET) https?://[^/\s]+(/\S*) -> \d+$", re.MULTILINE)


class BenchError(Exception):
    """The bench could not run, or kubegate did something other than expected."""


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- layers -------------------------------------------------------------------------------------


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _gzip_layer(files: dict[str, bytes]) -> Blob:
    return Blob(tar_layer(files), OCI_LAYER_GZIP)


def debian_layer() -> Blob:
    """A Debian 10 like base: dpkg status of ~400 packages, their .list files, ~6 MB of files."""
    rng = random.Random(10)
    files: dict[str, bytes] = {"etc/os-release": BUSTER.encode()}
    stanzas = []
    for n in range(DEB_PACKAGES):
        if n < len(REAL_DEBS):
            name, source, version = REAL_DEBS[n]
        else:
            name = f"lib{rng.choice(WORDS)}{n}"
            source, version = name, f"{n % 7}.{n % 13}.{n % 5}-{n % 4 + 1}"
        description = "\n".join(f" {_text(rng, 11)}" for _ in range(32))
        depends = ", ".join(
            f"lib{rng.choice(WORDS)}{rng.randrange(n + 1)} (>= 1.{n % 9})" for _ in range(8)
        )
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
            f"Section: libs\nInstalled-Size: {rng.randrange(50, 9000)}\n"
            f"Maintainer: Debian Team <team{n % 17}@lists.example.org>\nArchitecture: amd64\n"
            f"Multi-Arch: same\nSource: {source}\nVersion: {version}\nDepends: {depends}\n"
            f"Description: {_text(rng, 6)}\n{description}\n"
        )
        owned = [f"usr/lib/x86_64-linux-gnu/{name}.so.{k}" for k in range(3)] + [
            f"usr/share/doc/{name}/{doc}" for doc in ("copyright", "changelog.Debian.gz", "NEWS")
        ]
        files[f"var/lib/dpkg/info/{name}:amd64.list"] = "\n".join(
            ["/.", "/usr", *(f"/{path}" for path in owned)]
        ).encode()
        # ~4 KB binary (incompressible) and ~10 KB of text per package: ~6 MB in all.
        files[owned[0]] = rng.randbytes(4096)
        files[owned[3]] = "\n".join(_text(rng, 12) for _ in range(130)).encode()
    files["var/lib/dpkg/status"] = "\n".join(stanzas).encode()
    return _gzip_layer(files)


def runtime_layer(name: str, seed: int) -> Blob:
    """A language runtime without package metadata: a ~1 MB binary and ~2 MB of library code.

    (Installed language packages are left out: this tree's matcher compares dpkg versions only,
    so PyPI or npm packages would make every image unproven.)
    """
    rng = random.Random(seed)
    files: dict[str, bytes] = {f"usr/bin/{name}": rng.randbytes(1_000_000)}
    for n in range(RUNTIME_MODULES):
        files[f"usr/lib/{name}/{rng.choice(WORDS)}/mod{n}.src"] = "\n".join(
            f"# {_text(rng, 10)}" for _ in range(25)
        ).encode()
    return _gzip_layer(files)


def app_layers(index: int) -> list[Blob]:
    """One or two small layers of the image's own: a binary, config, a second layer on odd."""
    rng = random.Random(1000 + index)
    layers = [
        _gzip_layer(
            {
                f"app/bin/svc-{index:02d}": rng.randbytes(150_000 + 1000 * index),
                "app/config.yaml": f"name: svc-{index:02d}\nport: {8000 + index}\n".encode(),
            }
        )
    ]
    if index % 2:
        layers.append(_gzip_layer({"app/static/index.html": _text(rng, 4000).encode()}))
    return layers


@dataclass(frozen=True, slots=True)
class FleetImage:
    repository: str
    tag: str
    built: BuiltImage


def build_images(count: int = IMAGES) -> list[FleetImage]:
    """The 60 images: Debian + (Python | Node) + one or two app layers."""
    debian = debian_layer()
    python, node = runtime_layer("python3.11", 311), runtime_layer("node", 20)
    images = []
    for index in range(count):
        runtime = python if index % 2 == 0 else node
        built = build_image([debian, runtime, *app_layers(index)])
        images.append(FleetImage(f"bench/svc-{index:02d}", f"1.{index}.0", built))
    return images


# -- registry -----------------------------------------------------------------------------------


def push_all(server: RegistryServer, images: Sequence[FleetImage]) -> None:
    """Push every image; a blob already pushed to another repository is mounted, not sent."""
    where: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for image in images:
            for blob in image.built.blobs:
                _push_blob(client, image.repository, blob, where.get(blob.digest))
                where.setdefault(blob.digest, image.repository)
            put_manifest(client, image.repository, image.tag, image.built.manifest)


def _push_blob(client: httpx.Client, repository: str, blob: Blob, source: str | None) -> None:
    params = {"mount": blob.digest, "from": source} if source else {}
    started = client.post(f"/v2/{repository}/blobs/uploads/", params=params)
    if started.status_code == 201:
        return  # mounted
    if started.status_code != 202:
        raise BenchError(f"blob upload start: HTTP {started.status_code}")
    done = client.put(
        httpx.URL(started.headers["Location"]).copy_merge_params({"digest": blob.digest}),
        content=blob.data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if done.status_code != 201:
        raise BenchError(f"blob upload: HTTP {done.status_code}")


@contextmanager
def registry(base: Path) -> Iterator[RegistryServer]:
    server = start_registry(base, "plain")
    try:
        yield server
    finally:
        stop_registry(server)


# -- fleet and database -------------------------------------------------------------------------


def write_fleet(root: Path, references: Sequence[str]) -> None:
    """clusters/bench: 6 Flux Kustomizations of 50 Deployments, images used 5 times each."""
    clusters = root / "clusters" / "bench"
    clusters.mkdir(parents=True)
    for t in range(KUSTOMIZATIONS):
        (clusters / f"team{t}.yaml").write_text(FLUX_KS.format(t=t))
        apps = root / "apps" / f"team{t}"
        apps.mkdir(parents=True)
        names = []
        for n in range(WORKLOADS_PER_KUSTOMIZATION):
            image = references[(t * WORKLOADS_PER_KUSTOMIZATION + n) % len(references)]
            names.append(f"app-{n:02d}.yaml")
            (apps / names[-1]).write_text(DEPLOYMENT.format(n=n, image=image))
        (apps / "kustomization.yaml").write_text(
            "resources:\n" + "".join(f"  - {name}\n" for name in names)
        )


def write_db(work: Path) -> Path:
    """examples/osv and the NVD excerpt examples/nvd (the severities: OSV's Debian records rate
    nothing) imported by kubegate's own importers into a private database."""
    from kubegate.vulndb import import_paths
    from kubegate.vulndb.nvdimport import feed_file, import_nvd

    db = work / "osv.sqlite3"
    import_paths(db, [ROOT / "examples" / "osv"])
    feeds = sorted((ROOT / "examples" / "nvd").glob("nvdcve-2.0-*.json.gz"))
    import_nvd(db, [feed_file(path, require_meta=True) for path in feeds])
    return db


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Tools:
    fleet: Path
    db: Path
    work: Path

    def env(self, cache: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        env["KUBEGATE_CACHE_DIR"] = str(cache)
        return env

    def scan(
        self, cache: Path, *extra: str, fleet: Path | None = None, count: int = IMAGES
    ) -> tuple[float, dict[str, Any]]:
        fleet = fleet or self.fleet
        argv = [sys.executable, "-m", "kubegate", "scan", str(fleet), "--db", str(self.db)]
        argv += ["--format", "json", "--skip-db-update", *extra]
        start = time.perf_counter()
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, env=self.env(cache), cwd=self.work
        )
        elapsed = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise BenchError(f"kubegate scan exited {done.returncode}:\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout)
        return elapsed, check_report(report, done.returncode, count)

    def warm_requests(self, cache: Path, count: int = IMAGES) -> list[tuple[str, str]]:
        """The registry requests of a warm scan (``-v`` debug log, untimed): method and path."""
        argv = [sys.executable, "-m", "kubegate", "scan", str(self.fleet), "--db", str(self.db)]
        argv += ["--format", "json", "--skip-db-update", "-v"]
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, env=self.env(cache), cwd=self.work
        )
        check_report(json.loads(done.stdout), done.returncode, count)
        return REQUEST.findall(done.stderr)

    def images(self, cache: Path) -> float:
        argv = [sys.executable, "-m", "kubegate", "images", str(self.fleet), "--format", "json"]
        start = time.perf_counter()
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, env=self.env(cache), cwd=self.work
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise BenchError(f"kubegate images exited {done.returncode}:\n{done.stderr[-3000:]}")
        uses = sum(len(image["uses"]) for image in json.loads(done.stdout)["images"])
        if uses != USES:
            raise BenchError(f"kubegate images found {uses} uses, expected {USES}")
        return elapsed


def check_report(report: dict[str, Any], code: int, count: int = IMAGES) -> dict[str, Any]:
    """The facts every scan must agree on: verdict, counts, findings per image."""
    images = report["images"]
    uses = report["summary"]["uses"]
    if code != 1 or report["verdict"] != "BLOCKED":
        raise BenchError(f"expected BLOCKED (exit 1), got {report['verdict']} (exit {code})")
    if len(images) != count or uses != USES:
        raise BenchError(f"{len(images)} images / {uses} uses, expected {count} / {USES}")
    if report["unseen"]:
        raise BenchError(f"unexpected unproven items, first: {report['unseen'][0]}")
    findings = {image["image"]: sorted(f["id"] for f in image["findings"]) for image in images}
    if not all(findings.values()):
        raise BenchError("an image of the vulnerable base has no finding")
    return findings


def check_warm_requests(requests: list[tuple[str, str]], count: int = IMAGES) -> None:
    """Warm means one ``HEAD`` per image (tag -> digest) and nothing else but the ``/v2/`` ping."""
    heads = [path for method, path in requests if method == "HEAD"]
    others = [f"{method} {path}" for method, path in requests if method != "HEAD"]
    if len(heads) != count or any(other != "GET /v2/" for other in others):
        raise BenchError(f"warm scan made {len(heads)} HEAD requests and {others or 'no other'}")
    _log(f"  warm requests: {len(heads)} HEAD, {' '.join(others) or 'nothing else'}")


@dataclass
class Figures:
    cold: list[float]
    cold_one: list[float]
    warm: list[float]
    images: list[float]


def measure(tools: Tools, runs: int) -> Figures:
    figures = Figures([], [], [], [])
    expected: dict[str, Any] | None = None
    warm_cache = tools.work / "cache-warm"
    for round_number in range(runs):
        _log(f"round {round_number + 1}/{runs}")
        for label, extra, into in (
            ("cold", (), figures.cold),
            ("cold --concurrency 1", ("--concurrency", "1"), figures.cold_one),
        ):
            cache = tools.work / f"cache-{round_number}-{len(extra)}"
            elapsed, findings = tools.scan(cache, *extra)
            expected = expected or findings
            if findings != expected:
                raise BenchError(f"{label}: findings differ from the first run")
            into.append(elapsed)
            _log(f"  {label}: {elapsed:.2f} s")
            if not warm_cache.exists():
                shutil.copytree(cache, warm_cache)
            shutil.rmtree(cache)
        elapsed, findings = tools.scan(warm_cache)
        if findings != expected:
            raise BenchError("warm: findings differ from the cold run")
        figures.warm.append(elapsed)
        if round_number == 0:
            check_warm_requests(tools.warm_requests(warm_cache))
        figures.images.append(tools.images(tools.work / "cache-images"))
        _log(f"  warm: {figures.warm[-1]:.2f} s, images: {figures.images[-1]:.2f} s")
    return figures


def report(figures: Figures, sizes: str) -> bool:
    """Print the figures, the ratios and PASS/MISS; True when every target is met."""
    cold, cold_one = min(figures.cold), min(figures.cold_one)
    warm, images = min(figures.warm), min(figures.images)
    warm_ratio, concurrency_ratio = cold / warm, cold_one / cold

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    def stage(total: float) -> float:
        # What the scan adds to rendering: resolve, inventory, match, decide, report.
        return max(total - images, 0.001)

    checks = [
        warm < WARM_LIMIT_SECONDS,
        warm_ratio >= WARM_SPEEDUP,
        concurrency_ratio >= CONCURRENCY_SPEEDUP,
    ]
    print(f"fleet: {USES} uses of {IMAGES} images in {KUSTOMIZATIONS} Flux Kustomizations")
    print(f"images: {sizes}")
    print(f"best of {len(figures.cold)}          total   past render (kubegate images)")
    rows = [
        ("kubegate images", images, None),
        (f"scan cold, -c {DEFAULT_CONCURRENCY}", cold, stage(cold)),
        ("scan cold, -c 1", cold_one, stage(cold_one)),
        ("scan warm", warm, stage(warm)),
    ]
    for label, total, past in rows:
        print(f"  {label:<18} {total:6.2f} s" + ("" if past is None else f"   {past:6.2f} s"))
    print(f"warm < {WARM_LIMIT_SECONDS:.0f} s: {warm:.2f} s {verdict(checks[0])}")
    print(
        f"cold / warm >= {WARM_SPEEDUP:.0f}x: {warm_ratio:.1f}x {verdict(checks[1])} "
        f"(image stage alone: {stage(cold) / stage(warm):.1f}x)"
    )
    print(
        f"cold -c 1 / cold -c {DEFAULT_CONCURRENCY} >= {CONCURRENCY_SPEEDUP}x: "
        f"{concurrency_ratio:.2f}x {verdict(checks[2])} "
        f"(image stage alone: {stage(cold_one) / stage(cold):.2f}x)"
    )
    print(
        "per round, cold/warm and c1/c4: "
        + ", ".join(
            f"{c / w:.1f}x {c1 / c:.2f}x"
            for c, c1, w in zip(figures.cold, figures.cold_one, figures.warm, strict=True)
        )
    )
    return all(checks)


def _sizes(images: Sequence[FleetImage]) -> str:
    blobs = {blob.digest: blob.size for image in images for blob in image.built.layers}
    first = images[0].built.layers
    base = ", ".join(f"{layer.size / 1e6:.2f}" for layer in first[:2])
    return (
        f"{len(blobs)} distinct layers, {sum(blobs.values()) / 1e6:.1f} MB gzip in all; "
        f"shared base layers {base} MB (+ Node {images[1].built.layers[1].size / 1e6:.2f} MB)"
    )


# -- WAN: the registry behind bench/wan.py, against a per-image Trivy loop ----------------------

TRIVY_VERSION = "0.59.1"
#: Targets of ``--wan`` (issue 16).
WAN_COLD_VS_TRIVY_SEQ = 0.35
WAN_COLD_VS_TRIVY_X4 = 0.8
WAN_CONCURRENCY_SPEEDUP = 3.0
WAN_WARM_LOOPBACK = 0.5
WAN_WARM_PROXY = 1.5
WAN_WARM_CHANGED = 2.0
TRIVY_PARALLEL = 4


@dataclass(frozen=True, slots=True)
class Connections:
    """What the proxy saw during one timed step: connections accepted (``tls``: of them, HTTPS
    probes a plain-HTTP registry refuses), the most open at once."""

    accepted: int
    tls: int
    peak: int

    def __str__(self) -> str:
        probes = f" (+{self.tls} HTTPS probe)" if self.tls else ""
        return f"{self.accepted - self.tls}{probes}, peak {self.peak} open"


@dataclass
class WanTools:
    """Everything a ``--wan`` round runs: kubegate (via :class:`Tools`), Trivy, the proxy."""

    tools: Tools
    proxy: Any  # bench.wan.WanProxy
    trivy: Path
    refs: list[str]  # through the proxy
    changed_fleet: Path
    loopback_fleet: Path
    count: int

    def counted(self, step: Any) -> tuple[Any, Connections]:
        self.proxy.reset_peak()
        before = self.proxy.counters()
        result = step()
        after = self.proxy.counters()
        return result, Connections(
            after.accepted - before.accepted, after.tls - before.tls, after.peak_open
        )

    def trivy_argv(self, cache: Path, ref: str) -> list[str]:
        # As bench/sbom.py runs it (inventory only), with the file system cache a loop shares.
        argv = [str(self.trivy), "image", "--image-src", "remote", "--insecure", "--scanners", ""]
        argv += ["--list-all-pkgs", "--format", "json", "--quiet", "--output", os.devnull]
        return [*argv, "--cache-dir", str(cache), ref]

    def trivy_one(self, cache: Path, ref: str) -> None:
        done = subprocess.run(self.trivy_argv(cache, ref), capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"trivy {ref} exited {done.returncode}:\n{done.stderr[-2000:]}")

    def trivy_loop(self, cache: Path, parallel: int) -> float:
        """``for ref in refs: trivy image ref`` (``parallel`` at a time, as ``xargs -P``)."""
        from concurrent.futures import ThreadPoolExecutor

        start = time.perf_counter()
        if parallel == 1:
            for ref in self.refs:
                self.trivy_one(cache, ref)
        else:
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(lambda ref: self.trivy_one(cache, ref), self.refs))
        return time.perf_counter() - start


WAN_ROWS = (
    ("trivy_seq_cold", "Trivy loop, sequential, cold"),
    ("trivy_seq_warm", "Trivy loop, sequential, warm"),
    ("trivy_x4_cold", f"Trivy loop, {TRIVY_PARALLEL} at a time, cold"),
    ("cold", f"kubegate cold, -c {DEFAULT_CONCURRENCY}"),
    ("cold_one", "kubegate cold, -c 1"),
    ("warm", "kubegate warm, same revision"),
    ("warm_changed", "kubegate warm, one tag changed"),
    ("warm_loopback", "kubegate warm, loopback (no proxy)"),
    ("images", "kubegate images (render alone)"),
)


def measure_wan(
    wan: WanTools, repeat: int
) -> tuple[dict[str, list[float]], dict[str, Connections]]:
    """Rounds of every step, interleaved; connections as the proxy counted them in round 1."""
    tools, work = wan.tools, wan.tools.work
    times: dict[str, list[float]] = {key: [] for key, _ in WAN_ROWS}
    connections: dict[str, Connections] = {}
    expected: dict[str, Any] | None = None
    warm_cache = work / "wan-cache-warm"
    loop_cache = work / "wan-cache-loopback"

    def record(key: str, elapsed: float, seen: Connections | None) -> None:
        times[key].append(elapsed)
        if seen is not None:
            connections.setdefault(key, seen)
        _log(f"  {key}: {elapsed:.2f} s" + (f", connections {seen}" if seen else ""))

    for round_number in range(repeat):
        _log(f"wan round {round_number + 1}/{repeat}")
        trivy_cache = work / f"trivy-{round_number}"
        elapsed, seen = wan.counted(partial(wan.trivy_loop, trivy_cache, 1))
        record("trivy_seq_cold", elapsed, seen)
        elapsed, seen = wan.counted(partial(wan.trivy_loop, trivy_cache, 1))
        record("trivy_seq_warm", elapsed, seen)
        shutil.rmtree(trivy_cache)
        elapsed, seen = wan.counted(partial(wan.trivy_loop, trivy_cache, TRIVY_PARALLEL))
        record("trivy_x4_cold", elapsed, seen)
        shutil.rmtree(trivy_cache)

        for key, extra in (("cold", ()), ("cold_one", ("--concurrency", "1"))):
            cache = work / f"wan-cache-{round_number}-{key}"
            (elapsed, findings), seen = wan.counted(
                partial(tools.scan, cache, *extra, count=wan.count)
            )
            expected = expected or findings
            if findings != expected:
                raise BenchError(f"{key}: findings differ from the first run")
            record(key, elapsed, seen)
            if not warm_cache.exists():
                shutil.copytree(cache, warm_cache)
            shutil.rmtree(cache)

        (elapsed, findings), seen = wan.counted(partial(tools.scan, warm_cache, count=wan.count))
        if findings != expected:
            raise BenchError("warm: findings differ from the cold run")
        record("warm", elapsed, seen)
        if round_number == 0:
            check_warm_requests(tools.warm_requests(warm_cache, wan.count), wan.count)

        # One image changed: a fresh copy of the warm cache each round, so it stays one change.
        changed_cache = work / "wan-cache-changed"
        shutil.copytree(warm_cache, changed_cache)
        (elapsed, _), seen = wan.counted(
            partial(tools.scan, changed_cache, fleet=wan.changed_fleet, count=wan.count)
        )
        record("warm_changed", elapsed, seen)
        shutil.rmtree(changed_cache)

        if not loop_cache.exists():
            shutil.copytree(warm_cache, loop_cache)
            tools.scan(loop_cache, fleet=wan.loopback_fleet, count=wan.count)  # untimed fill
        elapsed, _ = tools.scan(loop_cache, fleet=wan.loopback_fleet, count=wan.count)
        record("warm_loopback", elapsed, None)
        record("images", tools.images(work / "cache-images"), None)
    return times, connections


def report_wan(
    times: dict[str, list[float]], connections: dict[str, Connections], header: str
) -> bool:
    """One table, ratios against the Trivy baselines of the same run, PASS/MISS per target."""
    best = {key: min(values) for key, values in times.items()}
    seq, x4 = best["trivy_seq_cold"], best["trivy_x4_cold"]
    repeat = len(times["cold"])
    print(header)
    print(f"best of {repeat:<2}{'':34}{'s':>7} {'/seq cold':>10} {'/x4 cold':>9}   connections")
    for key, label in WAN_ROWS:
        seen = connections.get(key)
        print(
            f"  {label:<40}{best[key]:7.2f} {best[key] / seq:9.2f}x {best[key] / x4:8.2f}x"
            + (f"   {seen}" if seen else "")
        )

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    speedup = best["cold_one"] / best["cold"]
    checks = [
        (
            f"cold <= {WAN_COLD_VS_TRIVY_SEQ}x Trivy sequential",
            f"{best['cold'] / seq:.2f}x",
            best["cold"] <= WAN_COLD_VS_TRIVY_SEQ * seq,
        ),
        (
            f"cold <= {WAN_COLD_VS_TRIVY_X4}x Trivy x{TRIVY_PARALLEL}",
            f"{best['cold'] / x4:.2f}x",
            best["cold"] <= WAN_COLD_VS_TRIVY_X4 * x4,
        ),
        (
            f"cold -c 1 / cold -c {DEFAULT_CONCURRENCY} >= {WAN_CONCURRENCY_SPEEDUP:.0f}x",
            f"{speedup:.2f}x",
            speedup >= WAN_CONCURRENCY_SPEEDUP,
        ),
        (
            f"warm, loopback < {WAN_WARM_LOOPBACK} s",
            f"{best['warm_loopback']:.2f} s",
            best["warm_loopback"] < WAN_WARM_LOOPBACK,
        ),
        (
            f"warm, through the proxy < {WAN_WARM_PROXY} s",
            f"{best['warm']:.2f} s",
            best["warm"] < WAN_WARM_PROXY,
        ),
        (
            f"warm, one tag changed < {WAN_WARM_CHANGED:.0f} s",
            f"{best['warm_changed']:.2f} s",
            best["warm_changed"] < WAN_WARM_CHANGED,
        ),
    ]
    for key, limit in (
        ("cold", DEFAULT_CONCURRENCY),
        ("cold_one", 1),
        ("warm", DEFAULT_CONCURRENCY),
    ):
        seen = connections[key]
        # The HTTPS probe is refused by the plain-HTTP test registry and closed; against a TLS
        # registry it would be the first pooled connection.
        checks.append(
            (
                f"{key}: connections <= {limit} (reused)",
                str(seen),
                seen.accepted - seen.tls <= limit,
            )
        )
    for label, figure, ok in checks:
        print(f"{label}: {figure} {verdict(ok)}")
    print(
        "per round, s: "
        + "; ".join(
            f"{key} " + " ".join(f"{value:.2f}" for value in times[key]) for key, _ in WAN_ROWS
        )
    )
    return all(ok for _, _, ok in checks)


def changed_image(images: Sequence[FleetImage]) -> FleetImage:
    """A new release of the first image: same base layers, a new app layer, tag ``X.Y.1``."""
    first = images[0]
    built = build_image([*first.built.layers[:2], *app_layers(len(images) + 1000)])
    return FleetImage(first.repository, first.tag.replace(".0", ".1", 1)[:-1] + "1", built)


def wan_main(args: argparse.Namespace) -> int:
    from bench.sbom import BenchError as SbomError
    from bench.sbom import ensure_trivy
    from bench.wan import WanProxy

    base = args.keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-wan-"))
    try:
        trivy = ensure_trivy()
        version = subprocess.run([str(trivy), "--version"], capture_output=True, text=True).stdout
        if TRIVY_VERSION not in version:
            _log(f"warning: expected Trivy {TRIVY_VERSION}, have {version.splitlines()[:1]}")
        work = base / "work"
        work.mkdir(parents=True)
        images = build_images(args.images)
        changed = changed_image(images)
        with registry(base / "registry") as server:
            push_all(server, [*images, changed])
            host, _, port = server.host.rpartition(":")
            proxy = WanProxy(
                (host, int(port)), latency=args.latency_ms / 1000, rate=args.mbit * 1e6 / 8
            )
            with proxy:
                refs = [f"{proxy.address}/{i.repository}:{i.tag}" for i in images]
                write_fleet(base / "fleet", refs)
                swapped = [f"{proxy.address}/{changed.repository}:{changed.tag}", *refs[1:]]
                write_fleet(base / "fleet-changed", swapped)
                write_fleet(
                    base / "fleet-loopback", [server.ref(i.repository, i.tag) for i in images]
                )
                wan = WanTools(
                    Tools(base / "fleet", write_db(work), work),
                    proxy,
                    trivy,
                    refs,
                    base / "fleet-changed",
                    base / "fleet-loopback",
                    args.images,
                )
                times, connections = measure_wan(wan, args.repeat)
        header = (
            f"fleet: {USES} uses of {args.images} images; registry behind bench/wan.py: "
            f"{args.latency_ms:g} ms one way ({2 * args.latency_ms:g} ms RTT), {args.mbit:g} Mbit/s"
            f"\nimages: {_sizes(images)}\n{version.splitlines()[0] if version else 'Trivy ?'}; "
            f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end"
        )
        on_target = report_wan(times, connections, header)
    except (BenchError, SbomError) as exc:
        _log(f"error: {exc}")
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 1 if args.strict and not on_target else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="rounds (best of each is kept)")
    parser.add_argument("--keep", type=Path, help="work in this (new) directory and keep it")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    wan = parser.add_argument_group("--wan: the registry behind bench/wan.py, against Trivy")
    wan.add_argument("--wan", action="store_true", help="run the WAN bench instead")
    wan.add_argument("--repeat", type=int, default=3, help="--wan rounds (best of each is kept)")
    wan.add_argument("--images", type=int, default=IMAGES, help="--wan: images in the fleet")
    wan.add_argument("--latency-ms", type=float, default=20.0, help="one-way latency")
    wan.add_argument("--mbit", type=float, default=100.0, help="bandwidth, each direction")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeat < 1:
        parser.error("--runs and --repeat must be at least 1")
    if not 1 <= args.images <= USES:
        parser.error(f"--images must be between 1 and {USES}")
    if args.wan:
        return wan_main(args)
    base = args.keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-gate-"))
    try:
        work = base / "work"
        work.mkdir(parents=True)
        start = time.perf_counter()
        images = build_images()
        generated = time.perf_counter() - start
        with registry(base / "registry") as server:
            push_all(server, images)
            prepared = time.perf_counter() - start
            _log(f"generated in {generated:.1f} s, generated and pushed in {prepared:.1f} s")
            write_fleet(base / "fleet", [server.ref(i.repository, i.tag) for i in images])
            tools = Tools(base / "fleet", write_db(work), work)
            figures = measure(tools, args.runs)
        on_target = report(figures, _sizes(images))
    except BenchError as exc:
        _log(f"error: {exc}")
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 1 if args.strict and not on_target else 0


if __name__ == "__main__":
    sys.exit(main())
