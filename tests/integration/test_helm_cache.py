"""The helm render cache (``render/helm/cache.py``): a hit never hides a change.

Real helm and real charts (``helm create``, tests/fixtures/helmchart.py); each test has its own
cache dir. What is compared is everything the images stage sees: every object with the file:line
its locator gives, and every image use.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kubegate.images.find import find_images
from kubegate.render import RenderResult, render
from kubegate.render.buildcache import CacheStats
from kubegate.render.fetch import HelmOptions
from kubegate.render.helm.cache import helm_cache, template_key
from kubegate.render.helm.runner import find_helm
from tests.fixtures.helmchart import helm_binary, make_chart

RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: apps
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/app
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  values:
    image:
      tag: "2.0.0"
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBEGATE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    make_chart(root / "charts", "app")
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "release.yaml").write_text(RELEASE)
    return root


def _render(root: Path, **options: Any) -> RenderResult:
    return render(root, "deploy", helm=HelmOptions(path=helm_binary(), **options))


def _seen(result: RenderResult) -> Any:
    assert result.problems == () and result.not_seen == ()
    objects = [(obj.value, obj.locator.document()) for obj in result.objects]
    return objects, find_images(result.objects).uses


def _stats() -> CacheStats:
    cache = helm_cache()
    assert cache is not None
    return cache.stats


def _uncached(root: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    with monkeypatch.context() as patch:
        patch.setenv("KUBEGATE_RENDER_CACHE", "0")
        assert helm_cache() is None
        return _seen(_render(root, **options))


def test_second_render_is_a_hit_and_equal_to_helm(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _seen(_render(repo))
    assert (_stats().hits, _stats().stored) == (0, 1)
    second = _seen(_render(repo))
    assert (_stats().hits, _stats().stored) == (1, 1)
    assert second == first == _uncached(repo, monkeypatch)
    assert {str(use.ref) for use in second[1]} == {"registry.example/app:2.0.0"}


@pytest.mark.parametrize(
    ("edit", "image"),
    [
        # A chart default changes (values.yaml of the chart): a different repository.
        (
            lambda root: (root / "charts/app/values.yaml").write_text(
                (root / "charts/app/values.yaml")
                .read_text()
                .replace("registry.example/app", "registry.example/other")
            ),
            "registry.example/other:2.0.0",
        ),
        # A template changes: a sidecar appears.
        (
            lambda root: (root / "charts/app/templates/sidecar.yaml").write_text(
                textwrap.dedent(
                    """\
                    apiVersion: v1
                    kind: Pod
                    metadata:
                      name: sidecar
                    spec:
                      containers:
                        - name: s
                          image: registry.example/sidecar:1
                    """
                )
            ),
            "registry.example/sidecar:1",
        ),
        # The HelmRelease's values change.
        (
            lambda root: (root / "deploy/release.yaml").write_text(
                RELEASE.replace('"2.0.0"', '"3.0.0"')
            ),
            "registry.example/app:3.0.0",
        ),
    ],
    ids=["chart-values", "template", "release-values"],
)
def test_any_change_helm_reads_is_a_miss(
    repo: Path, monkeypatch: pytest.MonkeyPatch, edit: Any, image: str
) -> None:
    _render(repo)
    edit(repo)
    after = _seen(_render(repo))
    assert _stats().hits == 0 and _stats().stored == 2
    assert image in {str(use.ref) for use in after[1]}
    assert after == _uncached(repo, monkeypatch)


def test_helm_options_are_in_the_key(repo: Path) -> None:
    _render(repo, kube_version="1.30.0")
    _render(repo, kube_version="1.31.0")
    _render(repo, kube_version="1.31.0", api_versions=("example.com/v1",))
    assert (_stats().hits, _stats().stored) == (0, 3)
    _render(repo, kube_version="1.31.0")
    assert _stats().hits == 1


def test_a_chart_directory_with_a_link_has_no_key(repo: Path) -> None:
    # kubegate renders a private copy of each chart (links resolved), so this guards the key
    # itself: a link's target could change without the directory changing.
    chart = repo / "charts/app"
    values = repo / "values.json"
    values.write_text("{}")
    helm = find_helm(helm_binary())
    args = ["web", str(chart), "--values", str(values)]
    assert template_key(helm, chart, values, args) is not None
    os.symlink("service.yaml", chart / "templates/linked.txt")
    assert template_key(helm, chart, values, args) is None


def test_a_damaged_entry_is_rendered_again(repo: Path) -> None:
    first = _seen(_render(repo))
    cache = helm_cache()
    assert cache is not None
    (entry,) = [p for p in cache.directory.iterdir() if not p.name.startswith(".")]
    entry.write_bytes(entry.read_bytes()[:-5])
    assert _seen(_render(repo)) == first
    assert (_stats().corrupt, _stats().stored) == (1, 2)
