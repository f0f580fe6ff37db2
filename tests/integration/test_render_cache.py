"""The render cache (issue 16 item 3): a cache hit never hides a change.

Real kustomize, real files: every test compares a render through the cache with one without it
(:func:`snapshot`: every object with its Kustomization, cluster and document origin, every image
use with its file:line, and the not-seen items, problems, remote bases and notes), and counts
what the cache did. The fleet (tests/fixtures/cachefleet.py) uses every kind of file reference
kustomize follows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubegate.images.find import find_images
from kubegate.render import render
from kubegate.render.buildcache import MAX_BYTES, RenderCache, default_cache
from kubegate.render.confine import trace_build
from kubegate.render.result import RenderResult
from tests.conftest import RunCli
from tests.fixtures.cachefleet import BUILDS, cache_fleet
from tests.fixtures.fleets import write
from tests.fixtures.httpserve import HTTPServe


def snapshot(result: RenderResult) -> tuple[Any, ...]:
    """Everything a render hands on, in comparable form (locators hold parsed nodes)."""
    objects = [(o.value, o.kustomization, o.cluster, o.locator.document()) for o in result.objects]
    uses = find_images(result.objects, ())
    return (
        objects,
        uses.uses,
        uses.problems,
        result.not_seen,
        result.problems,
        result.remote_bases,
        result.notes,
    )


def _images(result: RenderResult) -> set[str]:
    return {str(use.ref) for use in find_images(result.objects, ()).uses}


def _sub(root: Path, rel: str, pattern: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    changed = re.sub(pattern, new, text, count=1)
    assert changed != text or re.search(pattern, text), (rel, pattern)
    path.write_text(changed)


@pytest.fixture
def cache(tmp_path: Path) -> RenderCache:
    return RenderCache(tmp_path / "render-cache")


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return cache_fleet(tmp_path / "fleet")


def test_a_warm_render_builds_nothing_and_equals_a_cold_one(
    fleet: Path, cache: RenderCache
) -> None:
    cold = render(fleet, cache=cache)
    assert cold.problems == ()
    assert (cache.stats.misses, cache.stats.stored, cache.stats.hits) == (BUILDS, BUILDS, 0)
    warm = render(fleet, cache=cache)
    assert cache.stats.hits == BUILDS and cache.stats.misses == BUILDS
    assert snapshot(warm) == snapshot(cold) == snapshot(render(fleet, cache=False))
    assert "docker.io/library/nginx:1.25" in _images(warm)


#: (file, pattern, replacement, Kustomizations rebuilt): one edit per kind of reference.
EDITS: dict[str, tuple[str, str, str, int]] = {
    "resources file in a base directory": ("apps/base/deploy.yaml", "nginx:1.25", "nginx:1.26", 1),
    "resources file": ("apps/web/extra.yaml", '"alpine:3.19"', '"alpine:3.20"', 1),
    "kustomization file of a base": (
        "apps/base/kustomization.yaml",
        "resources:",
        "commonLabels: {base: v2}\nresources:",
        1,
    ),
    "component's patch": ("components/sidecar/sidecar.yaml", "envoy:1.29", "envoy:1.30", 1),
    "component's kustomization": (
        "components/sidecar/kustomization.yaml",
        "name: web",
        "name: worker",
        1,
    ),
    "patches path": ("apps/web/patches/replicas.yaml", "replicas: 2", "replicas: 3", 1),
    "inline patch": ("apps/web/kustomization.yaml", "tier: front", "tier: back", 1),
    "patchesStrategicMerge": ("apps/web/patches/smp.yaml", "busybox:1.35", "busybox:1.34", 1),
    "patchesJson6902 path": ("apps/web/patches/json6902.yaml", "web-team", "ops", 1),
    "replacements path": ("apps/web/replacements/worker.yaml", "data.worker", "data.other", 1),
    "crds": ("apps/web/crds/widget.json", '"spec"', '"status": {"type": "object"}, "spec"', 1),
    "configurations": ("apps/web/config/widget-images.yaml", "kind: Widget", "kind: Gadget", 1),
    "transformers file": ("apps/web/transformers/labels.yaml", "team: web", "team: core", 1),
    "file a transformer config names": (
        "apps/jobs/job-patch.yaml",
        "curl:8.0.0",
        "curl:8.1.0",
        1,
    ),
    "configMapGenerator files": ("apps/base/config/app.properties", "blue", "red", 1),
    "configMapGenerator envs": ("apps/base/config/app.env", "prod", "dev", 1),
    "secretGenerator files": ("apps/base/config/token.txt", "s3cr3t", "rotated", 1),
    "file of a generated kustomization": ("apps/api/deploy.yaml", "redis:", "valkey:", 1),
    # The bootstrap Kustomization reads apps.yaml; jobs' prepared kustomization changes too.
    "Flux spec.images": ("clusters/prod/apps.yaml", '"1.36"', '"1.37"', 2),
    # Substituted after the build: only the bootstrap Kustomization (which holds the
    # variables in its output) is built again; api's build output is reused.
    "postBuild variable": ("clusters/prod/apps.yaml", '"7.0"', '"7.2"', 1),
    "file nothing references": ("docs/README.md", "fleet", "the fleet", 0),
    "file in a built directory nothing references": ("apps/web/notes.txt", "not", "never", 0),
}
#: Edits read by kustomize that leave this fleet's output as it was (no Widget object).
SAME_OUTPUT = frozenset({"crds", "configurations"})


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_reference_kind_invalidates_its_build_only(
    fleet: Path, cache: RenderCache, edit: str
) -> None:
    rel, old, new, rebuilt = EDITS[edit]
    before = render(fleet, cache=cache)
    _sub(fleet, rel, re.escape(old), new)
    after = render(fleet, cache=cache)
    assert cache.stats.misses == BUILDS + rebuilt
    assert cache.stats.hits == BUILDS - rebuilt
    assert snapshot(after) == snapshot(render(fleet, cache=False))
    assert after.problems == ()
    if rebuilt and edit not in SAME_OUTPUT:
        assert snapshot(after) != snapshot(before)


def test_a_new_file_in_a_directory_without_kustomization_invalidates(
    fleet: Path, cache: RenderCache
) -> None:
    # Flux generates the kustomization from the directory's files (FLUX.md step 2).
    render(fleet, cache=cache)
    write(fleet, {"apps/api/cache.yaml": (fleet / "apps/jobs/job.yaml").read_text()})
    after = render(fleet, cache=cache)
    assert cache.stats.misses == BUILDS + 1
    assert snapshot(after) == snapshot(render(fleet, cache=False))


def test_a_new_resource_line_invalidates(fleet: Path, cache: RenderCache) -> None:
    render(fleet, cache=cache)
    write(fleet, {"apps/web/more.yaml": (fleet / "apps/jobs/job.yaml").read_text()})
    _sub(fleet, "apps/web/kustomization.yaml", re.escape("extra.yaml]"), "extra.yaml, more.yaml]")
    after = render(fleet, cache=cache)
    assert cache.stats.misses == BUILDS + 1
    assert snapshot(after) == snapshot(render(fleet, cache=False))
    assert "docker.io/library/busybox:1.0" in _images(after)


def test_a_retargeted_symlink_invalidates(fleet: Path, cache: RenderCache) -> None:
    extra = fleet / "apps/web/extra.yaml"
    write(fleet, {"apps/web/extra-a.yaml": extra.read_text()})
    write(fleet, {"apps/web/extra-b.yaml": extra.read_text().replace("3.19", "3.99")})
    extra.unlink()
    extra.symlink_to("extra-a.yaml")
    render(fleet, cache=cache)
    extra.unlink()
    extra.symlink_to("extra-b.yaml")
    after = render(fleet, cache=cache)
    assert cache.stats.misses == BUILDS + 1
    assert snapshot(after) == snapshot(render(fleet, cache=False))
    assert "docker.io/library/alpine:3.99" in _images(after)


def test_a_second_kustomization_file_is_not_hidden(fleet: Path, cache: RenderCache) -> None:
    # kustomize refuses a directory holding two kustomization file names.
    render(fleet, cache=cache)
    write(fleet, {"apps/base/kustomization.yml": "resources: []\n"})
    after = render(fleet, cache=cache)
    assert snapshot(after) == snapshot(render(fleet, cache=False))
    assert any("kustomization" in p.message for p in after.problems), after.problems


def test_a_remote_base_disables_the_cache_for_its_kustomization(
    fleet: Path, cache: RenderCache, http_serve: HTTPServe
) -> None:
    deploy = (fleet / "apps/jobs/job.yaml").read_text().replace("name: jobs", "name: remote")
    url = http_serve.add("deploy.yaml", deploy.replace("busybox:1.0", "nginx:1.1").encode())
    _sub(fleet, "apps/jobs/kustomization.yaml", re.escape("[job.yaml]"), f"[job.yaml, {url}]")
    first = render(fleet, cache=cache, allow_remote_bases=True)
    assert first.problems == ()
    assert "docker.io/library/nginx:1.1" in _images(first)
    assert (cache.stats.uncacheable, cache.stats.stored) == (1, BUILDS - 1)
    # The server now answers differently: the cache must not answer for it.
    http_serve.add("deploy.yaml", deploy.replace("busybox:1.0", "nginx:1.2").encode())
    second = render(fleet, cache=cache, allow_remote_bases=True)
    assert "docker.io/library/nginx:1.2" in _images(second)
    assert "docker.io/library/nginx:1.1" not in _images(second)
    assert cache.stats.uncacheable == 2 and cache.stats.hits == BUILDS - 1
    assert http_serve.requests["/deploy.yaml"] == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("resources: [https://example.com/x.yaml]\n", "is remote"),
        ("helmCharts: [{name: x, repo: https://example.com}]\n", "helm charts"),
        ("resources: []\nnotAField: 1\n", "unknown field"),
        (
            "transformers:\n- |\n  apiVersion: example.com/v1\n  kind: MyPlugin\n"
            "  metadata: {name: p}\n",
            "of kind",
        ),
    ],
)
def test_what_the_walk_cannot_follow_is_reported(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "kustomization.yaml").write_text(text)
    import yaml

    _, reads = trace_build(tmp_path, tmp_path, yaml.safe_load(text), "kustomization.yaml")
    assert any(reason in why for why in reads.unfollowed), reads.unfollowed


def test_the_walk_follows_every_reference_of_the_fleet(fleet: Path) -> None:
    import yaml

    web = fleet / "apps/web"
    _, reads = trace_build(
        fleet, web, yaml.safe_load((web / "kustomization.yaml").read_text()), "k"
    )
    assert reads.unfollowed == []
    read = {real for real in reads.paths.values() if real is not None}
    assert read >= {
        "apps/base",
        "apps/base/deploy.yaml",
        "apps/base/config/app.properties",
        "apps/base/config/app.env",
        "apps/base/config/token.txt",
        "apps/web/extra.yaml",
        "components/sidecar",
        "components/sidecar/sidecar.yaml",
        "apps/web/patches/replicas.yaml",
        "apps/web/patches/smp.yaml",
        "apps/web/patches/json6902.yaml",
        "apps/web/replacements/worker.yaml",
        "apps/web/crds/widget.json",
        "apps/web/config/widget-images.yaml",
        "apps/web/transformers/labels.yaml",
    }
    assert "apps/web/notes.txt" not in read
    assert reads.directories == {"apps/web", "apps/base", "components/sidecar"}


def _corrupt(path: Path, how: int) -> None:
    data = path.read_bytes()
    if how == 0:
        path.write_bytes(data[: len(data) // 2])  # cut short
    elif how == 1:
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one bit of the payload
    elif how == 2:
        path.write_bytes(b"")  # empty
    else:
        path.write_bytes(b"not a cache entry at all\n" * 10)


def test_a_corrupt_entry_is_ignored_and_rebuilt(fleet: Path, cache: RenderCache) -> None:
    render(fleet, cache=cache)
    entries = sorted(p for p in cache.directory.iterdir() if not p.name.startswith("."))
    assert len(entries) == BUILDS
    for how, entry in enumerate(entries):
        _corrupt(entry, how)
    again = render(fleet, cache=cache)
    assert cache.stats.corrupt == BUILDS and cache.stats.hits == 0
    assert snapshot(again) == snapshot(render(fleet, cache=False))
    # Built again and stored afresh: the next render is served from the cache.
    render(fleet, cache=cache)
    assert cache.stats.hits == BUILDS


def test_two_trees_with_the_same_paths_do_not_share_what_differs(
    tmp_path: Path, cache: RenderCache
) -> None:
    one = cache_fleet(tmp_path / "one")
    two = cache_fleet(tmp_path / "two")
    _sub(two, "apps/base/deploy.yaml", "nginx:1.25", "nginx:1.99")
    first = render(one, cache=cache)
    second = render(two, cache=cache)
    # Only the Kustomization whose files differ is built; the others are the same files.
    assert (cache.stats.misses, cache.stats.hits) == (BUILDS + 1, BUILDS - 1)
    assert snapshot(second) == snapshot(render(two, cache=False))
    assert "docker.io/library/nginx:1.99" in _images(second)
    assert "docker.io/library/nginx:1.99" not in _images(first)


def test_a_supplied_source_with_the_same_paths_is_not_confused(
    tmp_path: Path, cache: RenderCache
) -> None:
    scanned = cache_fleet(tmp_path / "scanned")
    tenant = cache_fleet(tmp_path / "tenant")
    _sub(tenant, "apps/base/deploy.yaml", "nginx:1.25", "nginx:1.77")
    write(
        scanned,
        {
            "clusters/prod/tenant.yaml": """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: tenant, namespace: flux-system}
spec: {interval: 1m, url: https://example.com/tenant.git, ref: {branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: tenant-web, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps/web
  prune: true
  sourceRef: {kind: GitRepository, name: tenant}
  targetNamespace: web
"""
        },
    )
    sources = {"flux-system/tenant": tenant}
    for _ in range(2):  # cold, then warm
        cached = render(scanned, sources=sources, cache=cache)
        assert snapshot(cached) == snapshot(render(scanned, sources=sources, cache=False))
        images = _images(cached)
        assert {"docker.io/library/nginx:1.25", "docker.io/library/nginx:1.77"} <= images
    assert cache.stats.hits == BUILDS + 1


def test_the_cache_stays_within_its_bound(tmp_path: Path) -> None:
    small = RenderCache(tmp_path / "c", max_bytes=16 * 1024)
    keys = [f"{n:064x}" for n in range(40)]
    for key in keys:
        small.store(key, os.urandom(1500).hex())  # ~3 kB each, barely compressible
        total = sum(p.stat().st_size for p in small.directory.iterdir())
        assert total <= small.max_bytes + 4 * 1024
    assert small.load(keys[-1]) is not None  # the newest stays
    assert small.load(keys[0]) is None  # the oldest went
    assert MAX_BYTES >= 64 * 1024 * 1024


def test_kubegate_render_cache_0_turns_it_off(
    run_cli: RunCli, fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on, off = tmp_path / "on", tmp_path / "off"
    first = run_cli("images", str(fleet), "--format", "json", env={"KUBEGATE_CACHE_DIR": str(on)})
    assert first.returncode == 0, first.stderr
    assert len(list((on / "renders").iterdir())) == BUILDS
    warm = run_cli("images", str(fleet), "--format", "json", env={"KUBEGATE_CACHE_DIR": str(on)})
    second = run_cli(
        "images",
        str(fleet),
        "--format",
        "json",
        env={"KUBEGATE_CACHE_DIR": str(off), "KUBEGATE_RENDER_CACHE": "0"},
    )
    assert second.returncode == 0, second.stderr
    assert not (off / "renders").exists()

    def images(out: str) -> Any:
        document = json.loads(out)
        document.pop("source", None)
        return document

    assert images(first.stdout) == images(warm.stdout) == images(second.stdout)
    monkeypatch.setenv("KUBEGATE_RENDER_CACHE", "off")
    assert default_cache() is None


# -- the property: random edits to random files never make the cached render differ ---------

Edit = Callable[[Path, int], None]


def _add_resource(root: Path, n: int) -> None:
    write(root, {f"apps/web/more-{n}.yaml": (root / "apps/jobs/job.yaml").read_text()})
    _sub(root, f"apps/web/more-{n}.yaml", "name: jobs", f"name: more-{n}")
    kus = root / "apps/web/kustomization.yaml"
    if f"more-{n}.yaml" not in kus.read_text():
        _sub(
            root,
            "apps/web/kustomization.yaml",
            re.escape("extra.yaml"),
            f"extra.yaml, more-{n}.yaml",
        )


def _add_generated(root: Path, n: int) -> None:
    text = (root / "apps/api/deploy.yaml").read_text().replace("name: api", f"name: api-{n}")
    write(root, {f"apps/api/extra-{n}.yaml": text})


def _append(rel: str) -> Edit:
    def edit(root: Path, n: int) -> None:
        with (root / rel).open("a") as handle:
            handle.write(f"# note {n}\n")

    return edit


def _value(rel: str, pattern: str, values: tuple[str, ...]) -> Edit:
    def edit(root: Path, n: int) -> None:
        _sub(root, rel, pattern, values[n % len(values)])

    return edit


PROPERTY_EDITS: dict[str, Edit] = {
    "add a resource line": _add_resource,
    "add a file to a generated kustomization": _add_generated,
    "base image": _value("apps/base/deploy.yaml", r"nginx:[\d.]+", ("nginx:1.25", "nginx:1.3")),
    "patch": _value("apps/web/patches/replicas.yaml", r"replicas: \d+", ("replicas: 5",)),
    "inline patch": _value("apps/web/kustomization.yaml", r"tier: \w+", ("tier: a", "tier: b")),
    "strategic merge patch": _value(
        "apps/web/patches/smp.yaml", r"busybox:[\d.]+", ("busybox:1.2", "busybox:1.35")
    ),
    "json6902 patch": _value("apps/web/patches/json6902.yaml", r"owner: [\w-]+", ("owner: x",)),
    "generator file": _value("apps/base/config/app.properties", r"color=\w+", ("color=red",)),
    "generator env file": _value("apps/base/config/app.env", r"MODE=\w+", ("MODE=a", "MODE=b")),
    "component": _value(
        "components/sidecar/sidecar.yaml", r"envoy:[\d.]+", ("envoy:1.29", "envoy:2.0")
    ),
    "replacement": _value(
        "apps/web/replacements/worker.yaml", r"data\.\w+", ("data.other", "data.worker")
    ),
    "transformer config": _value("apps/web/transformers/labels.yaml", r"team: \w+", ("team: x",)),
    "file a transformer names": _value(
        "apps/jobs/job-patch.yaml", r"curl:[\d.]+", ("curl:8.2.0", "curl:8.0.0")
    ),
    "Flux images": _value("clusters/prod/apps.yaml", r'newTag: "[\d.]+"', ('newTag: "2.0"',)),
    "postBuild variable": _value(
        "clusters/prod/apps.yaml", r'api_tag: "[\d.]+"', ('api_tag: "7.4"', 'api_tag: "7.0"')
    ),
    "unreferenced file": _append("docs/README.md"),
    "unreferenced file in a built directory": _append("apps/web/notes.txt"),
}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderCache]:
    """One cache for every example: edited states meet entries of earlier examples."""
    shared = RenderCache(tmp_path_factory.mktemp("shared-render-cache"))
    with tempfile.TemporaryDirectory() as tmp:
        render(cache_fleet(Path(tmp) / "fleet"), cache=shared)  # the unedited fleet, cached
    yield shared


# Each example renders twice with real kustomize (about 1 s here): a modest count.
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(sorted(PROPERTY_EDITS)), st.integers(0, 1)),
        min_size=1,
        max_size=4,
    )
)
def test_random_edits_never_make_the_cached_render_differ(
    shared_cache: RenderCache, edits: list[tuple[str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = cache_fleet(Path(tmp) / "fleet")
        for name, n in edits:
            PROPERTY_EDITS[name](root, n)
        cached = render(root, cache=shared_cache)
        assert snapshot(cached) == snapshot(render(root, cache=False))
        shutil.rmtree(root)
