"""Benchmark: ``kubegate images`` on a fleet of 2,000 workloads in 40 Flux Kustomizations.

Generates a bootstrap layout (clusters/bench/flux-system renders 40 Kustomizations, each for one
``apps/teamNN`` kustomize directory of 50 Deployments with postBuild variables), then times
``kubegate images --format json`` against a baseline measured in the same run: plain
``kustomize`` builds (the same binary kubegate picks) of the same 40 paths, one after another.
Run: ``python bench/render.py [--keep DIR]``. Target: < 10 s on a 2-core machine.

``--clusters N`` is the multi-cluster variant: N bootstrapped clusters (``clusters/benchK``)
applying the same 40 Kustomizations, as fleets do with one ``apps`` tree per environment; it
times one cluster (``--cluster bench0``) against all N. Target: all N take < N times one.

``--incremental`` times the render cache (docs/images.md "Render cache"): the same fleet with
the cache off (``KUBEGATE_RENDER_CACHE=0``, the baseline), cold (empty cache), warm (nothing
changed) and after a commit that changes one app's file; best of 3 each, as ratios to the
baseline. It also checks that the one-change run built exactly one Kustomization (one new
cache entry) and that every run lists the same images as the baseline (the changed tag aside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from kubegate.render.kustomize import BUILD_WORKERS

REPO = Path(__file__).resolve().parent.parent
KUSTOMIZATIONS = 40
WORKLOADS_PER_KUSTOMIZATION = 50

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
      initContainers:
        - name: migrate
          image: ${{registry}}/team{t:02d}/migrate:1.{n}.0
      containers:
        - name: app
          image: ${{registry}}/team{t:02d}/app-{n:02d}:${{version:=2.0.{n}}}
"""

KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: team{t:02d}
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/team{t:02d}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  targetNamespace: team{t:02d}
  postBuild:
    substitute:
      registry: registry.example.com
"""

SYNC = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  path: ./clusters/bench
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def generate(root: Path, clusters: tuple[str, ...] = ("bench",)) -> list[Path]:
    """Write the fleet under ``root``; return the 40 app directories."""
    for cluster in clusters:
        bootstrap = root / "clusters" / cluster / "flux-system"
        bootstrap.mkdir(parents=True)
        (bootstrap / "gotk-sync.yaml").write_text(
            SOURCE + SYNC.replace("./clusters/bench", f"./clusters/{cluster}")
        )
        (bootstrap / "kustomization.yaml").write_text("resources: [gotk-sync.yaml]\n")
        for t in range(KUSTOMIZATIONS):
            (root / "clusters" / cluster / f"team{t:02d}.yaml").write_text(KS.format(t=t))
    paths = []
    for t in range(KUSTOMIZATIONS):
        app = root / "apps" / f"team{t:02d}"
        app.mkdir(parents=True)
        files = []
        for n in range(WORKLOADS_PER_KUSTOMIZATION):
            name = f"app-{n:02d}.yaml"
            (app / name).write_text(DEPLOYMENT.format(t=t, n=n))
            files.append(name)
        (app / "kustomization.yaml").write_text(
            "resources:\n" + "".join(f"  - {f}\n" for f in files)
        )
        paths.append(app)
    return paths


# The bootstrap GitRepository beside the sync makes each directory a cluster (docs/images.md).
SOURCE = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@git.example.com/acme/fleet
  ref:
    branch: main
---
"""


def kustomize_argv() -> list[str]:
    """The same choice kubegate makes: `kustomize build`, else `kubectl kustomize`."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return ["kubectl", "kustomize"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    parser.add_argument("--clusters", type=int, default=0, help="multi-cluster variant: N clusters")
    parser.add_argument(
        "--incremental", action="store_true", help="render cache variant: cold, warm, one change"
    )
    args = parser.parse_args()
    if args.clusters:
        return clusters_variant(args.clusters, args.keep)
    if args.incremental:
        return incremental_variant(args.keep)
    base = args.keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-"))
    try:
        root = base / "fleet"
        paths = generate(root)
        argv = kustomize_argv()

        start = time.perf_counter()
        for path in paths:
            subprocess.run([*argv, str(path)], check=True, capture_output=True)
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(BUILD_WORKERS) as pool:
            list(
                pool.map(
                    lambda p: subprocess.run([*argv, str(p)], check=True, capture_output=True),
                    paths,
                )
            )
        parallel = time.perf_counter() - start

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "kubegate", "images", str(root), "--format", "json"],
            check=False,
            capture_output=True,
            text=True,
            env=env,
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return 1
        document = json.loads(result.stdout)
        uses = sum(len(image["uses"]) for image in document["images"])
        expected = KUSTOMIZATIONS * WORKLOADS_PER_KUSTOMIZATION * 2
        assert uses == expected, f"{uses} uses, expected {expected}"
        workloads = KUSTOMIZATIONS * WORKLOADS_PER_KUSTOMIZATION
        print(f"workloads: {workloads} in {KUSTOMIZATIONS} Flux Kustomizations ({uses} uses)")
        name = " ".join(argv)
        print(f"baseline `{name}` x{KUSTOMIZATIONS}, one at a time: {baseline:.2f} s")
        print(f"baseline `{name}` x{KUSTOMIZATIONS}, {BUILD_WORKERS} at once: {parallel:.2f} s")
        print(
            f"kubegate images: {elapsed:.2f} s ({elapsed / baseline:.2f}x the sequential "
            f"baseline, {elapsed / parallel:.2f}x the concurrent one; target < 10 s)"
        )
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


def _images(
    root: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[float, dict[str, list[str]]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "kubegate", "images", str(root), "--format", "json", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    document = json.loads(result.stdout)
    by_cluster: dict[str, list[str]] = {}
    for image in document["images"]:
        for use in image["uses"]:
            by_cluster.setdefault(use["cluster"], []).append(image["image"])
    return elapsed, by_cluster


def clusters_variant(count: int, keep: Path | None) -> int:
    """Time one cluster against ``count`` clusters of the same fleet."""
    base = keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-"))
    try:
        root = base / "fleet"
        generate(root, tuple(f"bench{k}" for k in range(count)))
        one, found = _images(root, "--cluster", "bench0")
        uses = KUSTOMIZATIONS * WORKLOADS_PER_KUSTOMIZATION * 2
        assert {c: len(u) for c, u in found.items()} == {"clusters/bench0": uses}
        every, found = _images(root)
        assert {c: len(u) for c, u in found.items()} == {
            f"clusters/bench{k}": uses for k in range(count)
        }
        print(f"{count} clusters x {KUSTOMIZATIONS} Flux Kustomizations ({uses} uses each)")
        print(f"kubegate images --cluster bench0: {one:.2f} s")
        print(
            f"kubegate images, all {count} clusters: {every:.2f} s "
            f"({every / one:.2f}x one cluster; target < {count}x)"
        )
        return 0
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def incremental_variant(keep: Path | None, rounds: int = 3) -> int:
    """Render cache: off, cold, warm and one changed app, best of ``rounds`` each."""
    base = keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-"))
    try:
        root = base / "fleet"
        generate(root)
        changed = root / "apps" / "team07" / "app-03.yaml"
        original = changed.read_text()
        off: list[float] = []
        cold: list[float] = []
        warm: list[float] = []
        one: list[float] = []
        expected: dict[str, list[str]] = {}
        for index in range(rounds):
            changed.write_text(original)
            cache = base / f"cache{index}"
            env = {"KUBEGATE_CACHE_DIR": str(cache)}
            elapsed, expected = _images(root, env_extra={**env, "KUBEGATE_RENDER_CACHE": "0"})
            off.append(elapsed)
            for times in (cold, warm):
                elapsed, found = _images(root, env_extra=env)
                assert sorted(found["clusters/bench"]) == sorted(expected["clusters/bench"])
                times.append(elapsed)
            entries = len(list((cache / "renders").iterdir()))
            assert entries == KUSTOMIZATIONS + 1, entries  # the 40 apps and the bootstrap one
            # One commit: one app's Deployment gets a new init container tag.
            changed.write_text(original.replace("migrate:1.3.0", f"migrate:9.{index}.0"))
            elapsed, found = _images(root, env_extra=env)
            one.append(elapsed)
            assert f"${{registry}}/team07/migrate:9.{index}.0" not in found  # substituted
            assert any(f"team07/migrate:9.{index}.0" in image for image in found["clusters/bench"])
            # Exactly one Kustomization was built again (one new entry): team07's.
            assert len(list((cache / "renders").iterdir())) == entries + 1
        best = {name: min(t) for name, t in (("off", off), ("cold", cold), ("warm", warm))}
        best["one"] = min(one)
        print(
            f"render cache, {KUSTOMIZATIONS} Flux Kustomizations x {WORKLOADS_PER_KUSTOMIZATION} "
            f"Deployments, `kubegate images --format json`, best of {rounds}:"
        )
        print(f"  cache off (KUBEGATE_RENDER_CACHE=0): {best['off']:.2f} s (1.00x)")
        for name, label in (
            ("cold", "cold (empty cache)"),
            ("warm", "warm (nothing changed)"),
            ("one", "one app changed (1 of 41 builds)"),
        ):
            print(f"  {label}: {best[name]:.2f} s ({best[name] / best['off']:.2f}x)")
        print(
            f"  warm / cold: {best['warm'] / best['cold']:.2f}x; "
            f"one change / cold: {best['one'] / best['cold']:.2f}x"
        )
        return 0
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
