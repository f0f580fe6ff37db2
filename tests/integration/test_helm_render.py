"""HelmReleases rendered through the real helm, each fixture compared with ``helm template``.

Charts are made by the real ``helm create`` and edited (tests/fixtures/helmchart.py); kustomize
is the real one (post-renderers, a Flux Kustomization's generator). Charts from repositories go
through a small :class:`LocalFetcher` here that serves local archives through the
``SourceFetcher`` protocol: the real fetcher (HTTP and OCI repositories) is helper A's
``kubegate.fetch`` and is tested there; the protocol is the boundary this stage relies on. The
HelmRelease/HelmRepository/OCIRepository shapes follow helm-controller's and source-controller's
v1 API types (``api/v2/helmrelease_types.go``: ``chart.spec.sourceRef``, ``chartRef``,
``valuesFrom[].targetPath/optional``, ``postRenderers[].kustomize.images/patches``,
``test.enable``, ``install/upgrade.disableHooks``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import textwrap
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubegate.errors import RenderError
from kubegate.images.find import find_images
from kubegate.images.reference import parse_reference
from kubegate.models import ChartInfo, NotSeen
from kubegate.render import RenderResult, render
from kubegate.render.fetch import (
    ArtifactRequest,
    ChartRequest,
    FetchedArtifact,
    FetchedChart,
    HelmOptions,
)
from kubegate.render.helm.locator import HelmLocator
from kubegate.report.revision import use_object
from tests.conftest import RunCli
from tests.fixtures.helmchart import helm_binary, make_chart, oracle_images, package


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def _release(name: str = "web", spec: str = "", chart: str = "./charts/app") -> str:
    """A HelmRelease in namespace ``apps`` reading ``chart`` from the scanned GitRepository."""
    return textwrap.dedent(
        f"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: {name}
              namespace: apps
            spec:
              interval: 10m
              chart:
                spec:
                  chart: {chart}
                  sourceRef:
                    kind: GitRepository
                    name: flux-system
                    namespace: flux-system
            """
    ).lstrip() + textwrap.indent(textwrap.dedent(spec), "  ")


def _render(root: Path, path: str = "deploy", **kwargs: Any) -> RenderResult:
    kwargs.setdefault("helm", HelmOptions(path=helm_binary()))
    return render(root, path, **kwargs)


def _refs(result: RenderResult) -> set[str]:
    scan = find_images(result.objects)
    assert scan.problems == ()
    return {str(use.ref) for use in scan.uses}


def _uses(result: RenderResult) -> Any:
    return find_images(result.objects).uses


def _one_not_seen(result: RenderResult) -> NotSeen:
    (item,) = result.not_seen
    assert item.kind == "HelmRelease"
    return item


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    (number,) = [i + 1 for i, line in enumerate(lines) if needle in line]
    return number


def test_git_chart_with_values_and_provenance(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    _write(
        root,
        {
            "deploy/release.yaml": _release(
                spec="""
                  values:
                    image:
                      tag: "2.0.0"
                """
            )
        },
    )
    result = _render(root)
    assert result.not_seen == () and result.problems == ()
    oracle = oracle_images(chart, "web", "apps", {"image": {"tag": "2.0.0"}}, ["--skip-tests"])
    assert oracle == {"registry.example/app:2.0.0"}
    assert _refs(result) == oracle
    kinds = {(obj.kind, obj.namespace, obj.name) for obj in result.objects}
    assert ("Service", "apps", "web-app") in kinds
    (use,) = _uses(result)
    assert use.helm_release == "apps/web"
    assert use.chart == ChartInfo("app", "0.1.0", None, "charts/app")
    # The values key that set the image: the tag line of spec.values.
    release = root / "deploy" / "release.yaml"
    assert (use.origin.file, use.origin.line) == ("deploy/release.yaml", _line_of(release, "tag:"))
    assert use.declared == "registry.example/app:2.0.0"
    document = use_object(use)
    assert document["helmRelease"] == "apps/web"
    assert document["chart"] == {
        "name": "app",
        "version": "0.1.0",
        "digest": None,
        "source": "charts/app",
    }
    # Objects without an image point at the HelmRelease's document.
    service = next(obj for obj in result.objects if obj.kind == "Service")
    assert isinstance(service.locator, HelmLocator)
    assert service.locator.document().where == "deploy/release.yaml:1"


def test_image_from_chart_defaults_points_at_the_chart_line(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    _write(root, {"deploy/release.yaml": _release()})
    result = _render(root)
    assert _refs(result) == oracle_images(chart, "web", "apps", {}, ["--skip-tests"])
    (use,) = _uses(result)
    line = _line_of(root / "deploy" / "release.yaml", "chart: ./charts/app")
    assert (use.origin.file, use.origin.line) == ("deploy/release.yaml", line)


def test_values_files_replace_the_chart_values(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    _write(root, {"values/prod.yaml": 'image:\n  tag: "3.0.0"\n'})
    release = _release().replace(
        "      sourceRef:",
        "      valuesFiles: [charts/app/values.yaml, values/prod.yaml]\n      sourceRef:",
    )
    _write(root, {"deploy/release.yaml": release})
    result = _render(root)
    assert result.not_seen == ()
    oracle = oracle_images(
        chart, "web", "apps", {}, ["-f", str(root / "values/prod.yaml"), "--skip-tests"]
    )
    assert oracle == {"registry.example/app:3.0.0"}
    assert _refs(result) == oracle


VALUES_CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: app-values, namespace: apps}
data:
  values.yaml: |
    image:
      repository: registry.example/other
"""
TAG_SECRET = """
apiVersion: v1
kind: Secret
metadata: {name: app-tag, namespace: apps}
data:
  tag: NC4wLjA=
"""


def test_values_from_with_target_path_and_optional(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    spec = """
      valuesFrom:
        - kind: ConfigMap
          name: app-values
        - kind: Secret
          name: app-tag
          valuesKey: tag
          targetPath: image.tag
        - kind: ConfigMap
          name: absent
          optional: true
    """
    _write(
        root,
        {
            "deploy/release.yaml": _release(spec=spec),
            "deploy/values.yaml": VALUES_CONFIGMAP,
            "deploy/tag.yaml": TAG_SECRET,
        },
    )
    result = _render(root)
    assert result.not_seen == ()
    values = {"image": {"repository": "registry.example/other", "tag": "4.0.0"}}
    oracle = oracle_images(chart, "web", "apps", values, ["--skip-tests"])
    assert oracle == {"registry.example/other:4.0.0"}
    assert _refs(result) == oracle

    # Not optional and missing: not rendered, the reason names it and the way out.
    _write(root, {"deploy/release.yaml": _release(spec=spec.replace("optional: true", ""))})
    item = _one_not_seen(_render(root))
    assert item.reason.startswith("valuesFrom ConfigMap apps/absent is not rendered")
    assert "--values-from apps/ConfigMap/absent=FILE" in item.reason

    # ... unless --values-from supplies it (a YAML file of data keys to text).
    supplied = tmp_path / "absent.yaml"
    supplied.write_text('values.yaml: |\n  image:\n    tag: "5.0.0"\n')
    options = HelmOptions(path=helm_binary(), values_from={"apps/ConfigMap/absent": supplied})
    result = _render(root, helm=options)
    assert result.not_seen == ()
    assert _refs(result) == {"registry.example/other:5.0.0"}


FLUX_KS = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
"""


@pytest.mark.parametrize("hashed", [True, False])
def test_generated_configmap_is_matched_by_exact_name_only(tmp_path: Path, hashed: bool) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    options = "" if hashed else "generatorOptions: {disableNameSuffixHash: true}\n"
    _write(
        root,
        {
            "clusters/prod/apps.yaml": FLUX_KS,
            "apps/kustomization.yaml": f"""
                resources: [release.yaml]
                configMapGenerator:
                  - name: app-values
                    namespace: apps
                    files: [values.yaml]
                {options}""",
            "apps/values.yaml": "image:\n  tag: 6.0.0\n",
            "apps/release.yaml": _release(
                spec="""
                  valuesFrom:
                    - kind: ConfigMap
                      name: app-values
                """
            ),
        },
    )
    result = render(root, "", helm=HelmOptions(path=helm_binary()))
    if hashed:
        # kustomize appends a hash to the name; helm-controller looks up the exact name.
        item = _one_not_seen(result)
        assert item.reason.startswith("valuesFrom ConfigMap apps/app-values is not rendered")
        return
    assert result.not_seen == ()
    oracle = oracle_images(chart, "web", "apps", {"image": {"tag": "6.0.0"}}, ["--skip-tests"])
    assert _refs(result) == oracle == {"registry.example/app:6.0.0"}
    (use,) = _uses(result)
    assert use.kustomization == "flux-system/apps"
    assert use.helm_release == "apps/web"
    assert use.origin.file == "apps/release.yaml"


def test_post_renderer_images_and_sidecar_patch(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    spec = """
      postRenderers:
        - kustomize:
            images:
              - name: registry.example/app
                newName: mirror.example/app
                newTag: "9.9.9"
            patches:
              - target: {kind: Deployment}
                patch: |
                  - op: add
                    path: /spec/template/spec/containers/-
                    value: {name: sidecar, image: registry.example/sidecar:1.0}
    """
    _write(root, {"deploy/release.yaml": _release(spec=spec)})
    result = _render(root)
    assert result.not_seen == () and result.problems == ()
    # The oracle: helm's own images, then the post-renderer's edits applied by hand.
    rendered = oracle_images(chart, "web", "apps", {}, ["--skip-tests"])
    assert rendered == {"registry.example/app:1.0.0"}
    expected = {"mirror.example/app:9.9.9", "registry.example/sidecar:1.0"}
    assert _refs(result) == expected
    uses = {str(use.ref): use for use in _uses(result)}
    release = root / "deploy" / "release.yaml"
    overridden = uses["mirror.example/app:9.9.9"]
    assert overridden.origin.line == _line_of(release, "- name: registry.example/app")
    assert overridden.declared == "registry.example/app:1.0.0"
    sidecar = uses["registry.example/sidecar:1.0"]
    assert sidecar.origin.line == _line_of(release, "- target: {kind: Deployment}")


HOOK_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: registry.example/migrate:1
"""


@pytest.mark.parametrize(
    ("spec", "extra"),
    [
        ("", ["--skip-tests"]),
        ("  test:\n    enable: true\n", []),
        (
            "  install: {disableHooks: true}\n  upgrade: {disableHooks: true}\n",
            ["--no-hooks"],
        ),
    ],
    ids=["hooks-no-tests", "tests-enabled", "hooks-disabled"],
)
def test_hooks_and_tests(tmp_path: Path, spec: str, extra: list[str]) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app", templates={"migrate.yaml": HOOK_JOB})
    _write(root, {"deploy/release.yaml": _release() + spec})
    result = _render(root)
    assert result.not_seen == ()
    # helm create's test Pod says `busybox`: kubegate reports references normalised.
    oracle = {str(parse_reference(i)) for i in oracle_images(chart, "web", "apps", {}, extra)}
    assert _refs(result) == oracle
    # helm create's test Pod runs busybox; the pre-install Job runs migrate.
    assert ("registry.example/migrate:1" in oracle) == ("--no-hooks" not in extra)
    assert ("docker.io/library/busybox:latest" in _refs(result)) == ("test" in spec)


def test_subchart_and_release_name_truncation(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    make_chart(chart / "charts", "sub", repository="registry.example/sub", tag="7.0.0")
    name = "a-helmrelease-name-long-enough-to-need-shortening"
    target = "some-target-namespace"
    _write(root, {"deploy/release.yaml": _release(name, f"targetNamespace: {target}\n")})
    result = _render(root)
    assert result.not_seen == ()
    # helm-controller's release name: TARGET-NAME, over 53 characters: 40 + "-" + 12 hex.
    full = f"{target}-{name}"
    assert len(full) > 53
    release = full[:40] + "-" + hashlib.sha256(full.encode()).hexdigest()[:12]
    oracle = oracle_images(chart, release, target, {}, ["--skip-tests"])
    assert oracle == {"registry.example/app:1.0.0", "registry.example/sub:7.0.0"}
    assert _refs(result) == oracle
    deployments = {obj.name for obj in result.objects if obj.kind == "Deployment"}
    assert deployments == {f"{release}-app", f"{release}-sub"}
    assert {obj.namespace for obj in result.objects if obj.kind == "Deployment"} == {target}


def test_lookup_and_kube_config_are_noted(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    lookup = """
        {{- $existing := lookup "v1" "Secret" .Release.Namespace "app-secret" }}
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: seen}
        data: {found: {{ ternary "yes" "no" (not (empty $existing)) | quote }}}
    """
    chart = make_chart(root / "charts", "app", templates={"lookup.yaml": lookup})
    spec = "kubeConfig:\n  secretRef: {name: remote}\n"
    _write(root, {"deploy/release.yaml": _release(spec=spec)})
    result = _render(root)
    assert result.not_seen == ()
    assert _refs(result) == oracle_images(chart, "web", "apps", {}, ["--skip-tests"])
    reasons = [note.reason for note in result.notes]
    assert len(reasons) == 2
    assert reasons[0].startswith("chart app calls lookup")
    assert reasons[1].startswith("spec.kubeConfig is set")
    assert {(n.kind, n.namespace, n.name) for n in result.notes} == {("HelmRelease", "apps", "web")}


def test_without_helm_the_release_is_not_seen(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_chart(root / "charts", "app")
    _write(root, {"deploy/release.yaml": _release()})
    result = _render(root, helm=HelmOptions(path=str(tmp_path / "no-helm")))
    item = _one_not_seen(result)
    assert "helm is not found" in item.reason and "helm >= 3.14" in item.reason
    assert result.objects == ()


def test_chart_path_leaving_the_source_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_chart(tmp_path, "outside")
    _write(root, {"deploy/release.yaml": _release(chart="../outside")})
    item = _one_not_seen(_render(root))
    assert item.reason == "chart path '../outside' leaves its source"


# -- charts from repositories, through the fetcher protocol --------------------------------


@dataclass
class LocalFetcher:
    """Serves one local chart archive through the SourceFetcher protocol (see module doc)."""

    archive: Path
    info: ChartInfo
    requests: list[ChartRequest] = field(default_factory=list)

    def chart(self, request: ChartRequest) -> FetchedChart:
        self.requests.append(request)
        return FetchedChart(self.archive, self.info)

    def artifact(self, request: ArtifactRequest) -> FetchedArtifact:
        raise RenderError("no artifacts here")


HELM_REPOSITORY = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: flux-system}
spec: {url: "https://charts.example/stable"}
"""
OCI_REPOSITORY = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: app, namespace: apps}
spec:
  url: oci://registry.example/charts/app
  ref: {tag: 1.2.3}
"""
FROM_REPOSITORY = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: apps}
spec:
  chart:
    spec:
      chart: app
      version: "1.x"
      sourceRef: {kind: HelmRepository, name: charts, namespace: flux-system}
"""
FROM_CHART_REF = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: apps}
spec:
  chartRef: {kind: OCIRepository, name: app}
  values:
    image: {repository: registry.example/pinned}
"""


def test_charts_from_repositories_through_the_fetcher(tmp_path: Path) -> None:
    chart = make_chart(tmp_path / "made", "app", tag="1.2.3")
    archive = package(chart, tmp_path / "packaged")
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    info = ChartInfo("app", "0.1.0", digest, "https://charts.example/stable")
    fetcher = LocalFetcher(archive, info)
    root = _write(
        tmp_path / "repo",
        {
            "deploy/repo.yaml": HELM_REPOSITORY,
            "deploy/oci.yaml": OCI_REPOSITORY,
            "deploy/release.yaml": FROM_REPOSITORY,
            "deploy/other.yaml": FROM_CHART_REF.replace("name: web,", "name: pinned,"),
        },
    )
    result = _render(root, fetcher=fetcher)
    assert result.not_seen == ()
    requests = sorted(fetcher.requests, key=lambda r: r.kind)
    assert [(r.kind, r.url, r.chart, r.version, dict(r.ref)) for r in requests] == [
        ("helm-repository", "https://charts.example/stable", "app", "1.x", {}),
        ("oci-repository", "oci://registry.example/charts/app", "", "*", {"tag": "1.2.3"}),
    ]
    assert requests[0].source == "HelmRepository flux-system/charts"
    assert _refs(result) == oracle_images(chart, "web", "apps", {}, ["--skip-tests"]) | (
        oracle_images(
            chart,
            "pinned",
            "apps",
            {"image": {"repository": "registry.example/pinned"}},
            ["--skip-tests"],
        )
    )
    assert {use.chart for use in _uses(result)} == {info}

    # Without a fetcher, or with the source object missing: not seen, with the reason.
    item = next(n for n in _render(root).not_seen if n.name == "web")
    assert item.reason.startswith("its chart comes from HelmRepository flux-system/charts")
    (root / "deploy/repo.yaml").unlink()
    item = next(n for n in _render(root, fetcher=fetcher).not_seen if n.name == "web")
    assert item.reason == "its source HelmRepository flux-system/charts is not in the revision"


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = b"\0" * count
        self.left -= count
        return count


def _hostile_archive(path: Path, kind: str) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as raw, tarfile.open(fileobj=raw, mode="w|") as tar:
        meta = b"apiVersion: v2\nname: app\nversion: 0.1.0\n"
        entry = tarfile.TarInfo("app/Chart.yaml")
        entry.size = len(meta)
        tar.addfile(entry, io.BytesIO(meta))
        if kind == "dotdot":
            evil = tarfile.TarInfo("app/../../evil.yaml")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        else:
            # 150 MiB of zeros: about 150 KiB compressed, past helm's 100 MiB chart ceiling.
            bomb = tarfile.TarInfo("app/templates/bomb.yaml")
            bomb.size = 150 * 1024 * 1024
            tar.addfile(bomb, io.BufferedReader(_Zeros(bomb.size)))
    return path


@pytest.mark.parametrize("kind", ["dotdot", "bomb"])
def test_hostile_chart_archive_is_not_rendered(tmp_path: Path, kind: str, run_cli: RunCli) -> None:
    archive = _hostile_archive(tmp_path / "app-0.1.0.tgz", kind)
    assert archive.stat().st_size < 2 * 1024 * 1024
    fetcher = LocalFetcher(archive, ChartInfo("app", "0.1.0", None, "https://charts.example/"))
    root = _write(
        tmp_path / "repo",
        {"deploy/repo.yaml": HELM_REPOSITORY, "deploy/release.yaml": FROM_REPOSITORY},
    )
    tracemalloc.start()
    started = time.monotonic()
    result = _render(root, fetcher=fetcher)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    item = _one_not_seen(result)
    assert item.reason.startswith("chart archive refused: ")
    assert (
        ("'..'" in item.reason or "leaves" in item.reason)
        if kind == "dotdot"
        else ("bytes in all" in item.reason)
    )
    assert not (tmp_path / "evil.yaml").exists()
    # Generous bounds: refused on the way in, never decompressed into memory.
    assert elapsed < 60
    assert peak < 64 * 1024 * 1024


def test_dependencies_from_file_and_through_the_fetcher(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    make_chart(root / "charts", "common", repository="registry.example/common", tag="2.2.2")
    remote = make_chart(tmp_path / "made", "remote", repository="registry.example/remote")
    archive = package(remote, tmp_path / "packaged")
    info = ChartInfo("remote", "0.1.0", None, "oci://registry.example/charts")
    fetcher = LocalFetcher(archive, info)
    meta = chart / "Chart.yaml"
    meta.write_text(
        meta.read_text()
        + textwrap.dedent(
            """
            dependencies:
              - name: common
                version: 0.1.0
                repository: file://../common
              - name: remote
                version: ">=0.1.0"
                repository: oci://registry.example/charts
            """
        )
    )
    _write(root, {"deploy/release.yaml": _release()})
    result = _render(root, fetcher=fetcher)
    assert result.not_seen == ()
    ((request),) = fetcher.requests
    assert (request.kind, request.url, request.chart, request.version) == (
        "oci-helm-repository",
        "oci://registry.example/charts",
        "remote",
        ">=0.1.0",
    )
    # The oracle: helm renders the same chart once its dependencies are vendored by hand.
    vendored = tmp_path / "vendored"
    shutil.copytree(chart, vendored)
    (vendored / "charts").mkdir(exist_ok=True)
    shutil.copy(package(root / "charts" / "common", tmp_path / "common-pkg"), vendored / "charts")
    shutil.copy(archive, vendored / "charts")
    oracle = oracle_images(vendored, "web", "apps", {}, ["--skip-tests"])
    assert oracle == {
        "registry.example/app:1.0.0",
        "registry.example/common:2.2.2",
        "registry.example/remote:1.0.0",
    }
    assert _refs(result) == oracle


def test_legacy_post_renderer_nohooks_strategy_and_suspend(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app", templates={"migrate.yaml": HOOK_JOB})
    release = _release(
        spec="""
        postRenderStrategy: nohooks
        suspend: true
        postRenderers:
          - kustomize:
              patchesStrategicMerge:
                - apiVersion: apps/v1
                  kind: Deployment
                  metadata: {name: web-app}
                  spec:
                    template:
                      spec:
                        containers:
                          - name: app
                            image: registry.example/patched:1
              images:
                - name: registry.example/migrate
                  newTag: "2"
        """
    ).replace("helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta2")
    _write(root, {"deploy/release.yaml": release})
    result = _render(root)
    assert result.not_seen == ()
    rendered = oracle_images(chart, "web", "apps", {}, ["--skip-tests"])
    assert rendered == {"registry.example/app:1.0.0", "registry.example/migrate:1"}
    # The patch replaces the app image; the hook is not post-rendered (nohooks).
    assert _refs(result) == {"registry.example/patched:1", "registry.example/migrate:1"}
    (note,) = result.notes
    assert note.reason.startswith("spec.suspend is true")


def test_images_cli_reports_the_chart(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_chart(root / "charts", "app")
    _write(
        root,
        {
            "deploy/release.yaml": _release(spec="values:\n  image: {tag: 2.0.0}\n"),
            "deploy/broken.yaml": FROM_REPOSITORY.replace("name: web,", "name: broken,"),
        },
    )
    # The CLI finds helm on PATH (the bootstrap's .venv/bin).
    env = {"PATH": f"{Path(helm_binary()).parent}:{os.environ.get('PATH', '')}"}
    result = run_cli("images", str(root), "--path", "deploy", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    ((image),) = document["images"]
    assert image["image"] == "registry.example/app:2.0.0"
    ((use),) = image["uses"]
    assert use["helmRelease"] == "apps/web"
    assert use["chart"] == {
        "name": "app",
        "version": "0.1.0",
        "digest": None,
        "source": "charts/app",
    }
    assert (use["file"], use["kind"], use["namespace"]) == (
        "deploy/release.yaml",
        "Deployment",
        "apps",
    )
    ((missing),) = document["notSeen"]
    assert (missing["kind"], missing["name"]) == ("HelmRelease", "broken")
    assert "HelmRepository flux-system/charts is not in the revision" in missing["reason"]
    table = run_cli("images", str(root), "--path", "deploy", env=env)
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0]
    assert header.split()[-1] == "HELMRELEASE"
    assert "apps/web (app@0.1.0)" in table.stdout


GIT_REPOSITORY = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: charts, namespace: flux-system}
spec:
  url: https://git.example/charts.git
  ref: {branch: main}
"""


def test_chart_in_another_git_repository_needs_it_supplied(tmp_path: Path) -> None:
    other = tmp_path / "other"
    chart = make_chart(other / "charts", "app", tag="8.0.0")
    root = _write(
        tmp_path / "repo",
        {
            "deploy/git.yaml": GIT_REPOSITORY,
            "deploy/release.yaml": _release().replace("name: flux-system\n", "name: charts\n", 1),
        },
    )
    item = _one_not_seen(_render(root))
    assert item.reason.startswith(
        "its chart's source GitRepository flux-system/charts (https://git.example/charts.git)"
    )
    assert item.reason.endswith("supply it with --source flux-system/charts=DIR|GIT-URL[@REF]")
    result = _render(root, sources={"flux-system/charts": other})
    assert result.not_seen == ()
    assert _refs(result) == oracle_images(chart, "web", "apps", {}, ["--skip-tests"])
    (use,) = _uses(result)
    assert use.chart == ChartInfo("app", "0.1.0", None, "flux-system/charts:charts/app")


@pytest.mark.parametrize("kind", ["HelmChart", "ExternalArtifact"])
def test_chart_refs_only_the_cluster_can_resolve(tmp_path: Path, kind: str) -> None:
    root = _write(
        tmp_path / "repo",
        {"deploy/release.yaml": FROM_CHART_REF.replace("kind: OCIRepository", f"kind: {kind}")},
    )
    item = _one_not_seen(_render(root))
    assert item.reason.startswith(f"charts from a {kind} ({kind} apps/app) are not rendered")


def test_kustomize_mode_renders_releases(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    _write(
        root,
        {
            "deploy/kustomization.yaml": "resources: [release.yaml]\nnamespace: team\n",
            "deploy/release.yaml": _release(spec="values:\n  image: {tag: 2.1.0}\n"),
        },
    )
    result = _render(root)
    assert result.not_seen == ()
    oracle = oracle_images(chart, "web", "team", {"image": {"tag": "2.1.0"}}, ["--skip-tests"])
    assert _refs(result) == oracle
    (use,) = _uses(result)
    assert (use.namespace, use.helm_release) == ("team", "team/web")
    # The values line, found through kustomize's origin annotation of the HelmRelease.
    line = _line_of(root / "deploy" / "release.yaml", "image: {tag: 2.1.0}")
    assert (use.origin.file, use.origin.line) == ("deploy/release.yaml", line)


def test_values_reach_helm_unambiguously(tmp_path: Path) -> None:
    # `on` is a string in spec.values (YAML 1.2, as kustomize and Flux read it); helm's YAML 1.1
    # reader would take an unquoted `on` for true.
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    _write(root, {"deploy/release.yaml": _release(spec='values:\n  image: {tag: "on"}\n')})
    result = _render(root)
    oracle = oracle_images(chart, "web", "apps", {"image": {"tag": "on"}}, ["--skip-tests"])
    assert _refs(result) == oracle == {"registry.example/app:on"}


def test_loose_release_beside_the_cluster_kustomizations(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    _write(
        root,
        {
            "clusters/prod/apps.yaml": FLUX_KS,
            "apps/kustomization.yaml": "resources: []\n",
            # Applied with the cluster's Kustomizations (by bootstrap), covered by none of them;
            # so is the ConfigMap its values come from.
            "clusters/prod/release.yaml": _release(
                spec="valuesFrom:\n  - {kind: ConfigMap, name: app-values}\n"
            ),
            "clusters/prod/values.yaml": VALUES_CONFIGMAP,
        },
    )
    result = render(root, "", helm=HelmOptions(path=helm_binary()))
    assert result.not_seen == ()
    values = {"image": {"repository": "registry.example/other"}}
    oracle = oracle_images(chart, "web", "apps", values, ["--skip-tests"])
    assert _refs(result) == oracle == {"registry.example/other:1.0.0"}
    (use,) = _uses(result)
    assert (use.origin.file, use.kustomization) == ("clusters/prod/release.yaml", None)


def test_chart_link_leaving_the_source_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the source\n")
    (chart / "files").mkdir()
    (chart / "files" / "leak.txt").symlink_to(secret)
    _write(root, {"deploy/release.yaml": _release()})
    item = _one_not_seen(_render(root))
    assert item.reason == "chart file charts/app/files/leak.txt is a link leaving its source"


NESTED_RELEASE = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: inner
spec:
  chart:
    spec:
      chart: ./charts/inner
      sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
"""


def test_chart_rendering_a_release_and_a_remote_schema(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    inner = make_chart(root / "charts", "inner", repository="registry.example/inner")
    outer = make_chart(root / "charts", "app", templates={"inner.yaml": NESTED_RELEASE})
    # A schema naming a URL: helm would need the network to validate; kubegate skips it.
    (outer / "values.schema.json").write_text(
        json.dumps({"$ref": "https://schemas.invalid/values.json"})
    )
    _write(root, {"deploy/release.yaml": _release()})
    result = _render(root)
    assert result.not_seen == ()
    oracle = oracle_images(
        outer, "web", "apps", {}, ["--skip-tests", "--skip-schema-validation"]
    ) | oracle_images(inner, "inner", "apps", {}, ["--skip-tests"])
    assert oracle == {"registry.example/app:1.0.0", "registry.example/inner:1.0.0"}
    assert _refs(result) == oracle
    releases = {use.helm_release for use in _uses(result)}
    assert releases == {"apps/web", "apps/inner"}


def test_chart_link_loop_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    (chart / "templates" / "again").symlink_to(chart)
    _write(root, {"deploy/release.yaml": _release()})
    item = _one_not_seen(_render(root))
    assert item.reason == "chart link charts/app/templates/again loops"


def test_oci_helm_repository_request(tmp_path: Path) -> None:
    chart = make_chart(tmp_path / "made", "app")
    archive = package(chart, tmp_path / "packaged")
    fetcher = LocalFetcher(archive, ChartInfo("app", "0.1.0", None, "oci://registry.example/c"))
    repository = HELM_REPOSITORY.replace(
        'spec: {url: "https://charts.example/stable"}',
        "spec: {type: oci, url: oci://registry.example/c, insecure: true}",
    )
    root = _write(
        tmp_path / "repo",
        {"deploy/repo.yaml": repository, "deploy/release.yaml": FROM_REPOSITORY},
    )
    result = _render(root, fetcher=fetcher)
    assert result.not_seen == ()
    ((request),) = fetcher.requests
    assert (request.kind, request.url, request.chart, request.version, request.insecure) == (
        "oci-helm-repository",
        "oci://registry.example/c",
        "app",
        "1.x",
        True,
    )
    assert request.where == "deploy/repo.yaml:1"
    assert _refs(result) == oracle_images(chart, "web", "apps", {}, ["--skip-tests"])


@pytest.mark.parametrize("hostile", [False, True])
def test_vendored_subchart_archives_are_extracted_under_the_limits(
    tmp_path: Path, hostile: bool
) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app")
    sub = make_chart(tmp_path / "made", "sub", repository="registry.example/sub")
    (chart / "charts").mkdir(exist_ok=True)
    if hostile:
        _hostile_archive(chart / "charts" / "sub-0.1.0.tgz", "dotdot")
    else:
        shutil.copy(package(sub, tmp_path / "packaged"), chart / "charts")
    _write(root, {"deploy/release.yaml": _release()})
    result = _render(root)
    if hostile:
        item = _one_not_seen(result)
        assert item.reason.startswith("chart archive refused: ")
        assert not (tmp_path / "evil.yaml").exists()
        return
    assert result.not_seen == ()
    oracle = oracle_images(chart, "web", "apps", {}, ["--skip-tests"])
    assert oracle == {"registry.example/app:1.0.0", "registry.example/sub:1.0.0"}
    assert _refs(result) == oracle


CAPABILITY_POD = """
{{- if and (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")
           (semverCompare "~1.31.0-0" .Capabilities.KubeVersion.Version) }}
apiVersion: v1
kind: Pod
metadata: {name: exporter}
spec:
  containers:
    - name: exporter
      image: registry.example/exporter:1
{{- end }}
"""


@pytest.mark.parametrize("apis", [(), ("monitoring.coreos.com/v1",)])
def test_kube_and_api_versions_stand_for_the_cluster(tmp_path: Path, apis: tuple[str, ...]) -> None:
    root = tmp_path / "repo"
    chart = make_chart(root / "charts", "app", templates={"exporter.yaml": CAPABILITY_POD})
    _write(root, {"deploy/release.yaml": _release()})
    options = HelmOptions(path=helm_binary(), kube_version="1.31.2", api_versions=apis)
    result = _render(root, helm=options)
    extra = ["--skip-tests", "--kube-version", "1.31.2"]
    for api in apis:
        extra += ["--api-versions", api]
    oracle = oracle_images(chart, "web", "apps", {}, extra)
    assert ("registry.example/exporter:1" in oracle) == bool(apis)
    assert _refs(result) == oracle
