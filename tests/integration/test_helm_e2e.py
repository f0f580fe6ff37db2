"""HelmReleases end to end through the CLI, as a user runs them: ``kubegate images --format
json`` and ``kubegate scan`` fetch charts with kubegate's own fetcher (built from the command's
registry options and configuration) from a loopback HTTP HelmRepository and the loopback
registry, render them with the real helm, and the image set of every HelmRelease is compared
with what ``helm template`` gives when run by hand with the same values (the oracle,
``tests.fixtures.helmchart.oracle_images``).

Charts are ``helm create`` edited (``tests.fixtures.charts``), packaged and indexed by the real
helm (``helm repo index``), pushed with ``helm push`` (Helm's own OCI media types).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunCli, user_config
from tests.fixtures.charts import (
    HELM_CHART_LAYER,
    HELM_CONFIG,
    helm_repository,
    make_chart,
    package_chart,
    push_artifact,
    push_chart,
    sha256_file,
)
from tests.fixtures.gatefleet import FIXED, VULNERABLE, gate_layer
from tests.fixtures.gitserve import git
from tests.fixtures.helmchart import helm_binary, oracle_images
from tests.fixtures.httpserve import HTTPServe, Route
from tests.fixtures.oci import build_image
from tests.fixtures.registry import RegistryServer, free_port

FLUX_KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: fleet}
  path: ./apps
  prune: true
"""
#: ``--skip-tests``: the oracle leaves out test hooks as helm-controller does without
#: ``spec.test.enable`` (helm create's chart has one, a busybox Pod).
ORACLE_FLAGS = ["--skip-tests"]


@dataclass(frozen=True, slots=True)
class Chart:
    """One packaged version of a chart: its directory (for the oracle) and archive."""

    directory: Path
    archive: Path


def _chart(base: Path, name: str, version: str, image: str) -> Chart:
    directory = make_chart(base / f"{name}-{version}", name, version, image=image)
    return Chart(directory, package_chart(directory, base / "packaged"))


def _fleet(root: Path, files: dict[str, str]) -> Path:
    """A one-cluster Flux layout: a Kustomization applying ``./apps`` holding ``files``."""
    (root / "clusters" / "test").mkdir(parents=True)
    (root / "clusters" / "test" / "apps.yaml").write_text(FLUX_KS)
    for name, text in files.items():
        path = root / "apps" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def _release(name: str, chart: str, *, values: dict[str, Any] | None = None) -> str:
    """A HelmRelease in ``apps``; ``chart`` is its ``spec.chart``/``spec.chartRef`` YAML."""
    text = (
        "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
        f"metadata: {{name: {name}, namespace: apps}}\nspec:\n  interval: 10m\n"
        + textwrap.indent(textwrap.dedent(chart).strip(), "  ")
        + "\n"
    )
    if values:
        text += f"  values: {json.dumps(values)}\n"
    return text


def _images(cli: RunCli, fleet: Path, *args: str, **kwargs: Any) -> dict[str, Any]:
    result = cli("images", str(fleet), "--format", "json", *args, **kwargs)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _by_release(document: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for image in document["images"]:
        for use in image["uses"]:
            found.setdefault(use["helmRelease"] or "-", set()).add(image["image"])
    return found


def _charts(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        use["helmRelease"]: use["chart"]
        for image in document["images"]
        for use in image["uses"]
        if use["helmRelease"]
    }


def _oracle(chart: Chart, release: str, values: dict[str, Any] | None = None) -> set[str]:
    # helm template normalises nothing: compare with kubegate's normalised references.
    from kubegate.images.reference import parse_reference

    raw = oracle_images(chart.directory, release, "apps", values or {}, ORACLE_FLAGS)
    return {str(parse_reference(ref)) for ref in raw}


@pytest.fixture
def cli(run_cli: RunCli) -> RunCli:
    """``run_cli`` with the bootstrap's helm first on PATH, as ``scripts/check`` runs the
    suite (a test that sets PATH itself keeps its own)."""
    helm_dir = str(Path(helm_binary()).parent)

    def _run(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
        path = f"{helm_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return run_cli(*args, env={"PATH": path, **(env or {})}, **kwargs)

    return _run


# -- an HTTP HelmRepository on loopback ------------------------------------------------------


@pytest.fixture
def http_repo(http_serve: HTTPServe, tmp_path: Path) -> tuple[str, dict[str, Chart]]:
    """``web`` 0.1.0, 0.2.0 and 1.0.0 (each its own image) behind ``index.yaml``."""
    charts = {
        version: _chart(tmp_path / "charts", "web", version, f"registry.example/web:{tag}")
        for version, tag in (("0.1.0", "1.0.0"), ("0.2.0", "2.0.0"), ("1.0.0", "3.0.0"))
    }
    url = helm_repository(
        http_serve, tmp_path / "served", [chart.archive for chart in charts.values()]
    )
    return url, charts


HTTP_SOURCE = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: charts, namespace: flux-system}}
spec: {{interval: 1h, url: "{url}"}}
"""


def _from_helm_repository(version: str) -> str:
    return f"""
        chart:
          spec:
            chart: web
            version: "{version}"
            sourceRef: {{kind: HelmRepository, name: charts, namespace: flux-system}}
        """


def test_http_helm_repository_semver_range_and_exact_version(
    cli: RunCli, tmp_path: Path, http_repo: tuple[str, dict[str, Chart]], http_serve: HTTPServe
) -> None:
    url, charts = http_repo
    pinned_values = {"image": {"tag": "1.0.1"}, "replicaCount": 3}
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "source.yaml": HTTP_SOURCE.format(url=url),
            "releases.yaml": _release("web", _from_helm_repository(">=0.1.0 <1.0.0"))
            + _release("pinned", _from_helm_repository("0.1.0"), values=pinned_values),
        },
    )
    document = _images(cli, fleet)
    assert document["notSeen"] == [] and document["errors"] == []
    # The highest version in the range (0.2.0, not 1.0.0); an exact version wins.
    assert _by_release(document) == {
        "apps/web": _oracle(charts["0.2.0"], "web"),
        "apps/pinned": _oracle(charts["0.1.0"], "pinned", pinned_values),
    }
    assert _by_release(document)["apps/web"] == {"registry.example/web:2.0.0"}
    chart = _charts(document)
    assert chart["apps/web"] == {
        "name": "web",
        "version": "0.2.0",
        "digest": sha256_file(charts["0.2.0"].archive),
        "source": chart["apps/web"]["source"],
    }
    assert url in chart["apps/web"]["source"]
    assert chart["apps/pinned"]["version"] == "0.1.0"

    # Warm: the charts come from the cache dir (by digest); only the index is read again.
    downloads = {path: n for path, n in http_serve.requests.items() if path.endswith(".tgz")}
    assert downloads == {"/web-0.2.0.tgz": 1, "/web-0.1.0.tgz": 1}
    assert _by_release(_images(cli, fleet)) == _by_release(document)
    assert {p: n for p, n in http_serve.requests.items() if p.endswith(".tgz")} == downloads


# -- the loopback registry: OCI HelmRepository and OCIRepository chartRef ----------------------


@pytest.fixture
def oci_charts(registry_plain: RegistryServer, tmp_path: Path) -> dict[str, Chart]:
    """``ocweb`` 0.1.0 and 0.2.0 pushed with ``helm push`` under ``HOST/e2e-charts``."""
    charts = {
        version: _chart(tmp_path / "oci", "ocweb", version, f"registry.example/ocweb:{tag}")
        for version, tag in (("0.1.0", "1.0.0"), ("0.2.0", "2.0.0"))
    }
    for chart in charts.values():
        push_chart(registry_plain, chart.archive, "e2e-charts")
    return charts


def test_oci_helm_repository_and_oci_repository_chart_ref(
    cli: RunCli,
    tmp_path: Path,
    registry_plain: RegistryServer,
    oci_charts: dict[str, Chart],
) -> None:
    host = registry_plain.host
    sources = f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata: {{name: oci-charts, namespace: flux-system}}
        spec: {{type: oci, interval: 1h, url: "oci://{host}/e2e-charts"}}
        ---
        apiVersion: source.toolkit.fluxcd.io/v1beta2
        kind: OCIRepository
        metadata: {{name: ocweb, namespace: apps}}
        spec:
          interval: 1h
          url: oci://{host}/e2e-charts/ocweb
          ref: {{semver: ">=0.2.0"}}
          layerSelector:
            mediaType: {HELM_CHART_LAYER}
            operation: copy
        """
    from_helm = """
        chart:
          spec:
            chart: ocweb
            version: "~0.1"
            sourceRef: {kind: HelmRepository, name: oci-charts, namespace: flux-system}
        """
    from_ref = "chartRef: {kind: OCIRepository, name: ocweb}"
    values = {"image": {"tag": "2.0.1"}}
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "sources.yaml": sources,
            "releases.yaml": _release("listed", from_helm)
            + _release("referenced", from_ref, values=values),
        },
    )
    document = _images(cli, fleet)
    assert document["notSeen"] == [] and document["errors"] == []
    assert _by_release(document) == {
        "apps/listed": _oracle(oci_charts["0.1.0"], "listed"),
        "apps/referenced": _oracle(oci_charts["0.2.0"], "referenced", values),
    }
    charts = _charts(document)
    assert (charts["apps/listed"]["name"], charts["apps/listed"]["version"]) == ("ocweb", "0.1.0")
    assert charts["apps/referenced"]["version"] == "0.2.0"
    # helm push's chart layer is the packaged archive itself.
    assert charts["apps/referenced"]["digest"] == sha256_file(oci_charts["0.2.0"].archive)


# -- a chart that cannot be fetched: images lists it, scan does not pass it --------------------


def test_unfetchable_chart_is_not_seen_by_images_and_unproven_by_scan(
    cli: RunCli, tmp_path: Path, registry_plain: RegistryServer, gate_dbs: dict[str, Path]
) -> None:
    registry_plain.push("gate/web", "fixed", build_image([gate_layer(*FIXED)]))
    deployment = f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: plain, namespace: apps}}
        spec:
          selector: {{matchLabels: {{app: plain}}}}
          template:
            metadata: {{labels: {{app: plain}}}}
            spec:
              containers: [{{name: web, image: "{registry_plain.ref("gate/web", "fixed")}"}}]
        """
    closed = f"http://127.0.0.1:{free_port()}/charts"
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "plain.yaml": deployment,
            "source.yaml": HTTP_SOURCE.format(url=closed),
            "release.yaml": _release("web", _from_helm_repository("*")),
        },
    )
    document = _images(cli, fleet)
    (item,) = document["notSeen"]
    assert (item["kind"], item["namespace"], item["name"]) == ("HelmRelease", "apps", "web")
    assert (item["file"], item["line"]) == ("apps/release.yaml", 2)
    assert closed in item["reason"]
    assert document["errors"] == []

    scan = cli("scan", str(fleet), "--db", str(gate_dbs["osv"]), "--skip-db-update")
    assert scan.returncode == 2, scan.stderr
    assert "Traceback" not in scan.stderr
    (line,) = [line for line in scan.stderr.splitlines() if "HelmRelease apps/web" in line]
    assert line.startswith("kubegate: error: not proven: apps/release.yaml:2: HelmRelease ")
    assert closed in line
    # The rest of the revision was judged: the plain Deployment's image passed.
    assert "UNPROVEN" in scan.stdout and "gate/web:fixed" in scan.stdout


def test_scan_judges_the_images_a_chart_deploys(
    cli: RunCli,
    tmp_path: Path,
    registry_plain: RegistryServer,
    gate_dbs: dict[str, Path],
    http_serve: HTTPServe,
) -> None:
    """The chart's image is pulled and matched like any other: vulnerable blocks (exit 1),
    the finding names the HelmRelease's file."""
    registry_plain.push("gate/chart", "vulnerable", build_image([gate_layer(*VULNERABLE)]))
    image = registry_plain.ref("gate/chart", "vulnerable")
    chart = _chart(tmp_path / "charts", "gated", "1.0.0", image)
    url = helm_repository(http_serve, tmp_path / "served", [chart.archive])
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "source.yaml": HTTP_SOURCE.format(url=url),
            "release.yaml": _release(
                "web", _from_helm_repository("1.x").replace("chart: web", "chart: gated")
            ),
        },
    )
    result = cli(
        "scan", str(fleet), "--db", str(gate_dbs["osv"]), "--skip-db-update", "--format", "json"
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "BLOCKED"
    (judged,) = report["images"]
    assert judged["image"] == image and judged["image"] in _oracle(chart, "web")
    assert {use["file"] for use in judged["uses"]} == {"apps/release.yaml"}


# -- registry options and configuration reach chart fetches ------------------------------------


def _push_private(registry: RegistryServer, tmp_path: Path) -> Chart:
    """``private`` 0.1.0 pushed over the registry API with Helm's media types (``helm push``
    would need ``helm registry login``, or the test CA) under ``e2e-private/``."""
    chart = _chart(tmp_path / "private", "private", "0.1.0", "registry.example/private:1.0.0")
    meta = {"apiVersion": "v2", "name": "private", "version": "0.1.0", "type": "application"}
    push_artifact(
        registry,
        "e2e-private/private",
        "0.1.0",
        [(HELM_CHART_LAYER, chart.archive.read_bytes())],
        config=(HELM_CONFIG, json.dumps(meta).encode()),
    )
    return chart


@pytest.fixture
def basic_chart(registry_basic: RegistryServer, tmp_path: Path) -> Chart:
    """The private chart in the basic-auth registry."""
    return _push_private(registry_basic, tmp_path)


def _private_fleet(root: Path, host: str) -> Path:
    source = f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata: {{name: private, namespace: flux-system}}
        spec: {{type: oci, interval: 1h, url: "oci://{host}/e2e-private"}}
        """
    release = _release(
        "web",
        """
        chart:
          spec:
            chart: private
            sourceRef: {kind: HelmRepository, name: private, namespace: flux-system}
        """,
    )
    return _fleet(root, {"source.yaml": source, "release.yaml": release})


def test_registry_credentials_reach_chart_fetches(
    cli: RunCli, tmp_path: Path, registry_basic: RegistryServer, basic_chart: Chart
) -> None:
    fleet = _private_fleet(tmp_path / "fleet", registry_basic.host)
    anonymous = _images(cli, fleet)
    (item,) = anonymous["notSeen"]
    assert item["name"] == "web"
    assert "401" in item["reason"] or "auth" in item["reason"].lower(), item["reason"]

    login = _images(
        cli,
        fleet,
        "--username",
        str(registry_basic.username),
        "--password-stdin",
        "--login-registry",
        registry_basic.host,
        stdin=f"{registry_basic.password}\n",
    )
    assert login["notSeen"] == []
    assert _by_release(login) == {"apps/web": _oracle(basic_chart, "web")}

    config = registry_basic.docker_config(tmp_path / "docker")
    docker = _images(cli, fleet, env={"DOCKER_CONFIG": str(config.parent)})
    assert _by_release(docker) == _by_release(login)


def test_ca_file_reaches_chart_fetches(
    cli: RunCli, tmp_path: Path, registry_tls: RegistryServer
) -> None:
    """An OCI HelmRepository over HTTPS with a private CA: not seen without ``--ca-file``
    (certificate refused), rendered with it, and with the config's ``registry.caFile``."""
    chart = _push_private(registry_tls, tmp_path)
    fleet = _private_fleet(tmp_path / "fleet", registry_tls.host)
    (item,) = _images(cli, fleet)["notSeen"]
    assert item["name"] == "web" and "certif" in item["reason"].lower(), item["reason"]
    assert registry_tls.ca_file is not None
    flagged = _images(cli, fleet, "--ca-file", str(registry_tls.ca_file))
    assert _by_release(flagged) == {"apps/web": _oracle(chart, "web")}
    (user_config(tmp_path) / "kubegate.yaml").write_text(
        f"registry:\n  caFile: {registry_tls.ca_file}\n"
    )
    assert _by_release(_images(cli, fleet)) == _by_release(flagged)


def test_mirror_and_allow_list_reach_chart_fetches(
    cli: RunCli,
    tmp_path: Path,
    registry_plain: RegistryServer,
    oci_charts: dict[str, Chart],
) -> None:
    # The revision names a registry that does not exist; the mirror serves it.
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "source.yaml": """\
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: HelmRepository
                metadata: {name: charts, namespace: flux-system}
                spec: {type: oci, interval: 1h, url: "oci://charts.mirrored.invalid/e2e-charts"}
                """,
            "release.yaml": _release(
                "web", _from_helm_repository("0.2.0").replace("chart: web", "chart: ocweb")
            ),
        },
    )
    mirrored = _images(
        cli, fleet, "--registry-mirror", f"charts.mirrored.invalid={registry_plain.host}"
    )
    assert mirrored["notSeen"] == []
    assert _by_release(mirrored) == {"apps/web": _oracle(oci_charts["0.2.0"], "web")}
    # The reports keep the canonical source, as for images.
    assert "charts.mirrored.invalid" in _charts(mirrored)["apps/web"]["source"]

    # The allow-list, from the flag or from the config's registry:, keeps the chart unfetched.
    refused = _images(
        cli,
        fleet,
        "--registry-mirror",
        f"charts.mirrored.invalid={registry_plain.host}",
        "--allowed-registries",
        "ghcr.io",
    )
    (item,) = refused["notSeen"]
    assert "charts.mirrored.invalid" in item["reason"] and "allowed" in item["reason"]
    (user_config(tmp_path) / "kubegate.yaml").write_text(
        "registry:\n  allowedRegistries: [ghcr.io]\n"
    )
    configured = _images(
        cli, fleet, "--registry-mirror", f"charts.mirrored.invalid={registry_plain.host}"
    )
    assert configured["notSeen"] == refused["notSeen"]


# -- helm settings reach helm template ---------------------------------------------------------

CAPABILITIES = """\
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
apiVersion: v1
kind: Pod
metadata: {name: exporter}
spec:
  containers: [{name: exporter, image: "registry.example/exporter:1.0"}]
{{- end }}
---
apiVersion: v1
kind: Pod
metadata: {name: versioned}
spec:
  containers:
    - name: app
      {{- if semverCompare ">=1.33.0-0" .Capabilities.KubeVersion.Version }}
      image: "registry.example/new:{{ .Capabilities.KubeVersion.Minor }}"
      {{- else }}
      image: "registry.example/old:{{ .Capabilities.KubeVersion.Minor }}"
      {{- end }}
"""


@pytest.fixture
def capable_fleet(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A fleet whose HelmRelease renders a chart in its own tree (no fetch) that reads the
    cluster's capabilities and a ConfigMap only the cluster holds."""
    chart = make_chart(tmp_path / "fleet" / "charts", "capable", "0.1.0")
    (chart / "templates" / "capabilities.yaml").write_text(CAPABILITIES)
    release = _release(
        "capable",
        """
        chart:
          spec:
            chart: ./charts/capable
            sourceRef: {kind: GitRepository, name: fleet, namespace: flux-system}
        valuesFrom:
          - kind: ConfigMap
            name: cluster-values
        """,
    )
    yield _fleet(tmp_path / "fleet", {"release.yaml": release}), chart


def _oracle_with(chart: Path, values: dict[str, Any], flags: list[str]) -> set[str]:
    from kubegate.images.reference import parse_reference

    raw = oracle_images(chart, "capable", "apps", values, [*ORACLE_FLAGS, *flags])
    return {str(parse_reference(ref)) for ref in raw}


def test_kube_version_api_versions_and_values_from_reach_helm(
    cli: RunCli, tmp_path: Path, capable_fleet: tuple[Path, Path]
) -> None:
    fleet, chart = capable_fleet
    values = tmp_path / "cluster-values.yaml"
    values.write_text('values.yaml: |\n  image:\n    tag: "9.9.9"\n')
    supplied = ["--values-from", f"apps/ConfigMap/cluster-values={values}"]

    missing = _images(cli, fleet)
    (item,) = missing["notSeen"]
    assert "--values-from apps/ConfigMap/cluster-values=FILE" in item["reason"]

    default = _images(cli, fleet, *supplied)
    tag = {"image": {"tag": "9.9.9"}}
    # helm template's own default would be its built-in version; kubegate passes 1.35.0.
    assert _by_release(default) == {"apps/capable": _oracle_with(chart, tag, [])}
    assert {"registry.example/new:35", "docker.io/library/nginx:9.9.9"} <= _by_release(default)[
        "apps/capable"
    ]

    flags = ["--kube-version", "1.29.4", "--api-versions", "monitoring.coreos.com/v1"]
    flagged = _images(cli, fleet, *supplied, *flags)
    assert _by_release(flagged) == {"apps/capable": _oracle_with(chart, tag, flags)}
    assert {"registry.example/old:29", "registry.example/exporter:1.0"} <= _by_release(flagged)[
        "apps/capable"
    ]

    # The same settings from the user's configuration, with helm.path naming the binary while
    # no helm is on PATH.
    (user_config(tmp_path) / "kubegate.yaml").write_text(
        f"helm:\n  path: {helm_binary()}\n  kubeVersion: 1.29.4\n"
        "  apiVersions: [monitoring.coreos.com/v1]\n"
    )
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    configured = _images(
        cli, fleet, *supplied, env={"PATH": f"{Path(kubectl).parent}:/usr/bin:/bin"}
    )
    assert _by_release(configured) == _by_release(flagged)


def test_timeout_bounds_chart_fetches(cli: RunCli, tmp_path: Path, http_serve: HTTPServe) -> None:
    """``images --timeout`` is the fetcher's deadline: a repository that answers after a minute
    (well within --idle-timeout) leaves its HelmRelease not seen, and the command still ends
    on its own (the watchdog, 30 s after the deadline, would exit 2)."""
    http_serve.add_sequence("/index.yaml", [Route(b"entries: {}\n", delay=60)])
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "source.yaml": HTTP_SOURCE.format(url=http_serve.url("/").rstrip("/")),
            "release.yaml": _release("web", _from_helm_repository("*")),
        },
    )
    document = _images(cli, fleet, "--timeout", "3", "--idle-timeout", "100")
    (item,) = document["notSeen"]
    assert item["name"] == "web"
    assert "--timeout" in item["reason"], item["reason"]


def test_watch_judges_the_images_a_fetched_chart_deploys(
    tmp_path: Path,
    registry_plain: RegistryServer,
    gate_dbs: dict[str, Path],
    http_serve: HTTPServe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``watch`` builds a fetcher for each scan like ``scan``: a HelmRelease whose chart comes
    from a loopback HTTP HelmRepository and deploys a vulnerable image is judged BLOCKED."""
    from tests.integration.test_watch import Watch, wait_for

    registry_plain.push("gate/watched", "vulnerable", build_image([gate_layer(*VULNERABLE)]))
    chart = _chart(
        tmp_path / "charts", "watched", "1.0.0", registry_plain.ref("gate/watched", "vulnerable")
    )
    url = helm_repository(http_serve, tmp_path / "served", [chart.archive])
    work = _fleet(
        tmp_path / "work",
        {
            "source.yaml": HTTP_SOURCE.format(url=url),
            "release.yaml": _release(
                "web", _from_helm_repository("1.0.0").replace("chart: web", "chart: watched")
            ),
        },
    )
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "a HelmRelease", cwd=work)
    monkeypatch.setenv("PATH", f"{Path(helm_binary()).parent}{os.pathsep}{os.environ['PATH']}")
    args = [work.as_uri(), "--ref", "main", "--db", str(gate_dbs["osv"]), "--kube-version", "1.34"]
    watch = Watch(tmp_path, tmp_path / "cache", args)
    try:
        wait_for(
            "the verdict",
            lambda: watch.metrics().get('kubegate_watch_scans_total{verdict="BLOCKED"}'),
        )
        assert watch.metrics()['kubegate_watch_last_findings{severity="CRITICAL"}'] > 0
        assert http_serve.requests["/watched-1.0.0.tgz"] == 1
        assert watch.stop() == 0, watch.output()
    finally:
        watch.stop(signal.SIGKILL)
    assert "Traceback" not in watch.output()


@pytest.mark.parametrize("kind", ["dotdot", "bomb"])
def test_hostile_chart_from_a_repository_images_exit_0_scan_exit_2(
    cli: RunCli,
    tmp_path: Path,
    http_serve: HTTPServe,
    gate_dbs: dict[str, Path],
    kind: str,
) -> None:
    """A chart archive with a ``../`` entry, or 150 MiB of zeros in ~150 KiB, served with its
    right digest by an HTTP HelmRepository: fetched, refused while extracted (nothing written
    outside, nothing decompressed in memory), not seen by ``images`` (exit 0), not proven by
    ``scan`` (exit 2), within a generous time bound."""
    from tests.integration.test_helm_render import _hostile_archive

    archive = _hostile_archive(tmp_path / "app-0.1.0.tgz", kind)
    digest = sha256_file(archive).removeprefix("sha256:")
    # Written by hand: helm repo index would read the bomb itself. Shape: Helm's index.yaml
    # (apiVersion v1, entries.NAME[] with version, urls, digest as sha256 hex).
    index = (
        "apiVersion: v1\nentries:\n  app:\n    - apiVersion: v2\n      name: app\n"
        f"      version: 0.1.0\n      digest: {digest}\n      urls: [app-0.1.0.tgz]\n"
    )
    http_serve.add("/index.yaml", index.encode())
    http_serve.add("/app-0.1.0.tgz", archive.read_bytes())
    fleet = _fleet(
        tmp_path / "fleet",
        {
            "source.yaml": HTTP_SOURCE.format(url=http_serve.url("/").rstrip("/")),
            "release.yaml": _release(
                "web", _from_helm_repository("0.1.0").replace("chart: web", "chart: app")
            ),
        },
    )
    started = time.monotonic()
    document = _images(cli, fleet)
    (item,) = document["notSeen"]
    assert item["name"] == "web" and "chart archive refused" in item["reason"], item["reason"]
    scan = cli("scan", str(fleet), "--db", str(gate_dbs["osv"]), "--skip-db-update")
    assert scan.returncode == 2, scan.stderr
    assert "Traceback" not in scan.stderr
    assert any(
        line.startswith("kubegate: error: not proven: apps/release.yaml:2: HelmRelease apps/web")
        and "chart archive refused" in line
        for line in scan.stderr.splitlines()
    ), scan.stderr
    assert time.monotonic() - started < 120
    assert not (tmp_path / "evil.yaml").exists()
