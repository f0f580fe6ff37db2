"""Benchmark: ``kubegate images`` of a fleet of 60 HelmReleases over 10 charts.

Run by hand from the repository root (never in CI), after ``./scripts/bootstrap`` (it installs
helm into ``.venv/bin``)::

    .venv/bin/python bench/helm.py [--runs 3] [--keep DIR] [--strict]

What it does, in one run:

1. Makes 10 charts with the real ``helm create`` (``tests/fixtures/charts.py``), two versions
   each (1.0.0 and 1.1.0, their own image each), packaged with ``helm package``. Charts 0-4 are
   served by an HTTP HelmRepository on 127.0.0.1 (``helm repo index``); charts 5-9 are pushed
   with ``helm push`` to Debian's ``docker-registry`` on 127.0.0.1 (``start_registry`` from
   ``tests/fixtures/registry.py``): 5-7 reached through a ``type: oci`` HelmRepository, 8-9
   through an OCIRepository ``chartRef`` each.
2. Writes a bootstrapped Flux fleet whose Kustomization applies 60 HelmReleases, six per chart
   (namespaces ``team0``..``team5``), with version constraints (``1.x``, ``~1.0``, exact),
   ``spec.values`` setting each release's own image tag and replica count.
3. Baseline, in the same run: what a user would do by hand with the charts already downloaded,
   ``helm template`` of each of the 60 releases with the same values, one after another and
   ``HELM_WORKERS`` at once (kubegate's own concurrency).
4. Times ``python -m kubegate images FLEET --format json`` (PYTHONPATH=src) cold (a fresh
   ``KUBEGATE_CACHE_DIR``: every chart fetched, digest checked, cached) and warm (the same cache:
   indexes and tags are read again, charts come from the cache, and ``helm template`` outputs
   from the helm render cache, keyed by each chart's files and values), best of ``--runs``
   each. Every run must list the 60 HelmReleases with exactly the images ``helm template``
   gave by hand, nothing not seen, no error (else exit 2).

Target (PASS/MISS; ``--strict`` exits 1 on a MISS): warm < 5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
from tests.fixtures.charts import (  # noqa: E402
    helm_path,
    helm_repository,
    make_chart,
    package_chart,
    push_chart,
)
from tests.fixtures.helmchart import oracle_images  # noqa: E402
from tests.fixtures.httpserve import HTTPServe  # noqa: E402

from bench.gate import registry  # noqa: E402
from kubegate.images.reference import parse_reference  # noqa: E402
from kubegate.render.helm.stage import HELM_WORKERS  # noqa: E402

CHARTS = 10
RELEASES_PER_CHART = 6
HTTP_CHARTS = range(5)
OCI_HELM_CHARTS = range(5, 8)
OCI_REF_CHARTS = range(8, 10)
VERSIONS = ("1.0.0", "1.1.0")
#: Version constraint per release index: the highest 1.x, the highest 1.0.x, an exact one.
CONSTRAINTS = ("1.x", "~1.0", "1.1.0", ">=1.0.0 <2.0.0", "1.0.0", "*")
TARGET_WARM = 5.0


class BenchError(Exception):
    """The bench could not measure what it claims (wrong output, a failed command)."""


@dataclass(frozen=True, slots=True)
class Release:
    """One HelmRelease of the fleet and the chart version its constraint selects."""

    name: str
    namespace: str
    chart: int
    constraint: str
    values: dict[str, Any]

    @property
    def version(self) -> str:
        """What Flux picks: an exact version wins, else the highest satisfying the range."""
        return "1.0.0" if self.constraint in ("~1.0", "1.0.0") else "1.1.0"


def chart_name(index: int) -> str:
    return f"bench-chart-{index:02d}"


def releases() -> list[Release]:
    return [
        Release(
            name=f"app-{chart:02d}-{k}",
            namespace=f"team{k}",
            chart=chart,
            constraint=CONSTRAINTS[k],
            values={"image": {"tag": f"{chart}.{k}.0"}, "replicaCount": k + 1},
        )
        for chart in range(CHARTS)
        for k in range(RELEASES_PER_CHART)
    ]


# -- charts and where they are served -----------------------------------------------------------


def make_charts(base: Path) -> dict[tuple[int, str], Path]:
    """Every chart version, packaged: (chart, version) -> archive."""
    archives: dict[tuple[int, str], Path] = {}
    for index in range(CHARTS):
        for version in VERSIONS:
            directory = make_chart(
                base / "src" / f"{index}-{version}",
                chart_name(index),
                version,
                image=f"bench.example/{chart_name(index)}:{version}",
                home=base / ".helm",
            )
            archives[index, version] = package_chart(
                directory, base / "packaged", home=base / ".helm"
            )
    return archives


@contextmanager
def http_server() -> Iterator[HTTPServe]:
    server = HTTPServe()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the fleet ----------------------------------------------------------------------------------

SYNC = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 1m
  url: ssh://git@git.example.com/acme/fleet
  ref: {branch: main}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 10m
  path: ./clusters/bench
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
"""
APPS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
"""


def write_fleet(root: Path, http_url: str, registry_host: str) -> list[Release]:
    bootstrap = root / "clusters" / "bench" / "flux-system"
    bootstrap.mkdir(parents=True)
    (bootstrap / "gotk-sync.yaml").write_text(SYNC)
    (root / "clusters" / "bench" / "apps.yaml").write_text(APPS)
    apps = root / "apps"
    apps.mkdir()
    sources: list[dict[str, Any]] = [
        _object(
            "HelmRepository", "http-charts", "flux-system", {"interval": "1h", "url": http_url}
        ),
        _object(
            "HelmRepository",
            "oci-charts",
            "flux-system",
            {"type": "oci", "interval": "1h", "url": f"oci://{registry_host}/bench-charts"},
        ),
    ]
    sources.extend(
        _object(
            "OCIRepository",
            chart_name(index),
            "flux-system",
            {
                "interval": "1h",
                "url": f"oci://{registry_host}/bench-charts/{chart_name(index)}",
                "ref": {"semver": "1.x"},
            },
            api="source.toolkit.fluxcd.io/v1beta2",
        )
        for index in OCI_REF_CHARTS
    )
    (apps / "sources.yaml").write_text(yaml.safe_dump_all(sources, sort_keys=False))
    fleet = releases()
    for release in fleet:
        spec: dict[str, Any] = {"interval": "10m", "values": release.values}
        if release.chart in OCI_REF_CHARTS:
            spec["chartRef"] = {
                "kind": "OCIRepository",
                "name": chart_name(release.chart),
                "namespace": "flux-system",
            }
        else:
            repository = "http-charts" if release.chart in HTTP_CHARTS else "oci-charts"
            spec["chart"] = {
                "spec": {
                    "chart": chart_name(release.chart),
                    "version": release.constraint,
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": repository,
                        "namespace": "flux-system",
                    },
                }
            }
        document = _object(
            "HelmRelease", release.name, release.namespace, spec, api="helm.toolkit.fluxcd.io/v2"
        )
        (apps / f"{release.name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return fleet


def _object(
    kind: str,
    name: str,
    namespace: str,
    spec: dict[str, Any],
    api: str = "source.toolkit.fluxcd.io/v1",
) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def chosen_version(release: Release) -> str:
    # OCIRepository chartRefs follow `semver: 1.x`, whatever the release's constraint.
    return "1.1.0" if release.chart in OCI_REF_CHARTS else release.version


# -- baseline: helm template by hand ------------------------------------------------------------


def by_hand(
    fleet: Sequence[Release], archives: dict[tuple[int, str], Path], workers: int
) -> tuple[float, float, dict[str, set[str]]]:
    """``helm template`` of every release from its local archive, with its values and
    ``--skip-tests`` (the oracle of the tests): wall and CPU seconds, images per release."""

    def run(release: Release) -> tuple[str, set[str]]:
        archive = archives[release.chart, chosen_version(release)]
        raw = oracle_images(
            archive, release.name, release.namespace, release.values, ["--skip-tests"]
        )
        return f"{release.namespace}/{release.name}", {str(parse_reference(r)) for r in raw}

    cpu = _children_cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = dict(pool.map(run, fleet))
    return time.perf_counter() - start, _children_cpu() - cpu, found


# -- kubegate -----------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kubegate_images(root: Path, cache: Path) -> tuple[float, float, dict[str, set[str]]]:
    """Wall seconds, CPU seconds (kubegate and every helm/kustomize it ran), images per
    release."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["KUBEGATE_CACHE_DIR"] = str(cache)
    env["PATH"] = f"{Path(helm_path()).parent}{os.pathsep}{env.get('PATH', '')}"
    cpu = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "kubegate", "images", str(root), "--format", "json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if result.returncode != 0:
        raise BenchError(f"kubegate images exited {result.returncode}: {result.stderr}")
    document = json.loads(result.stdout)
    if document["notSeen"] or document["errors"]:
        raise BenchError(f"not rendered: {document['notSeen'] or document['errors']}")
    found: dict[str, set[str]] = {}
    for image in document["images"]:
        for use in image["uses"]:
            found.setdefault(use["helmRelease"], set()).add(image["image"])
    return elapsed, cpu, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each kind (best kept)")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="kubegate-bench-helm-"))
    try:
        return run(base, max(1, args.runs), args.strict)
    except BenchError as exc:
        print(f"bench/helm.py: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


def run(base: Path, runs: int, strict: bool) -> int:
    archives = make_charts(base / "charts")
    with registry(base / "registry") as server, http_server() as http:
        for index in (*OCI_HELM_CHARTS, *OCI_REF_CHARTS):
            for version in VERSIONS:
                push_chart(server, archives[index, version], "bench-charts", home=base / ".push")
        url = helm_repository(
            http,
            base / "served",
            [archives[index, version] for index in HTTP_CHARTS for version in VERSIONS],
        )
        fleet = write_fleet(base / "fleet", url, server.host)

        sequential, helm_cpu, expected = by_hand(fleet, archives, workers=1)
        concurrent, _, again = by_hand(fleet, archives, workers=HELM_WORKERS)
        if again != expected:
            raise BenchError("helm template gave different images on a second run")

        colds, warms = [], []
        for round_ in range(runs):
            cache = base / f"cache-{round_}"
            cold, cold_cpu, found = kubegate_images(base / "fleet", cache)
            _check(found, expected, "cold")
            warm, warm_cpu, found = kubegate_images(base / "fleet", cache)
            _check(found, expected, "warm")
            colds.append((cold, cold_cpu))
            warms.append((warm, warm_cpu))
        downloads = sum(n for path, n in http.requests.items() if path.endswith(".tgz"))

    (cold, cold_cpu), (warm, warm_cpu) = min(colds), min(warms)
    print(
        f"fleet: {len(fleet)} HelmReleases over {CHARTS} charts x {len(VERSIONS)} versions "
        f"({len(HTTP_CHARTS)} HTTP HelmRepository, {len(OCI_HELM_CHARTS)} OCI HelmRepository, "
        f"{len(OCI_REF_CHARTS)} OCIRepository chartRef); {sum(map(len, expected.values()))} "
        "image uses"
    )
    print(
        f"baseline `helm template` x{len(fleet)} by hand, one at a time: {sequential:.2f} s "
        f"(CPU {helm_cpu:.2f} s)"
    )
    print(
        f"baseline `helm template` x{len(fleet)} by hand, {HELM_WORKERS} at once: "
        f"{concurrent:.2f} s"
    )
    print(
        f"kubegate images cold (charts fetched): {cold:.2f} s, CPU {cold_cpu:.2f} s "
        f"({cold / sequential:.2f}x sequential, {cold / concurrent:.2f}x concurrent baseline)"
    )
    verdict = "PASS" if warm < TARGET_WARM else "MISS"
    print(
        f"kubegate images warm (charts cached):  {warm:.2f} s, CPU {warm_cpu:.2f} s "
        f"({warm / sequential:.2f}x sequential, {warm / concurrent:.2f}x concurrent baseline; "
        f"target < {TARGET_WARM:g} s: {verdict})"
    )
    print(
        f"cold/warm: {cold / warm:.2f}x; chart archives downloaded over HTTP: {downloads}; "
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return 1 if strict and verdict == "MISS" else 0


def _check(found: dict[str, set[str]], expected: dict[str, set[str]], what: str) -> None:
    if found != expected:
        wrong = sorted(k for k in expected.keys() | found.keys() if found.get(k) != expected.get(k))
        raise BenchError(f"{what}: images differ from helm template for {wrong[:5]}")


if __name__ == "__main__":
    raise SystemExit(main())
