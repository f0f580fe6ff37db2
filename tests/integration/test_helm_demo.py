"""The bundled HelmRelease example (README "A HelmRelease example"): offline, rendered through
the real helm from a chart in its own tree, judged with the first demo's configuration; and the
README's first set-up command still works on a machine without helm.

The examples are copied to a temporary directory so that the demo database (``.kubegate/``
beside the config) is never written into the repository.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, RunCli
from tests.fixtures.helmchart import helm_binary, oracle_images


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of examples/ (manifests, chart, OCI layouts, OSV snapshot, config)."""
    target = tmp_path / "repo" / "examples"
    shutil.copytree(REPO / "examples", target, ignore=shutil.ignore_patterns(".kubegate"))
    return target.parent


def _with_helm() -> dict[str, str]:
    # As scripts/check runs the suite: the bootstrap's helm on PATH.
    return {"PATH": f"{Path(helm_binary()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _without_helm() -> dict[str, str]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    path = os.pathsep.join(dict.fromkeys([str(Path(kubectl).parent), "/usr/bin", "/bin"]))
    assert shutil.which("helm", path=path) is None, "this test needs a PATH without helm"
    return {"PATH": path}


def test_helm_demo_images_are_the_charts_as_helm_renders_them(run_cli: RunCli, demo: Path) -> None:
    result = run_cli("images", "examples/helm-demo", "--format", "json", cwd=demo, env=_with_helm())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["notSeen"] == [] and document["errors"] == []
    (image,) = document["images"]
    (use,) = image["uses"]
    # The oracle: helm template of the example's chart with the HelmRelease's values (the
    # ConfigMap's values.yaml under spec.values, as helm-controller composes them).
    values = {"replicaCount": 2, "image": {"tag": "1.21.0"}}
    chart = demo / "examples" / "helm-demo" / "charts" / "web"
    assert oracle_images(chart, "web", "apps", values) == {image["image"]}
    assert image["image"] == "docker.io/library/nginx:1.21.0"
    assert (use["helmRelease"], use["chart"]["name"], use["chart"]["version"]) == (
        "apps/web",
        "web",
        "0.1.0",
    )
    assert use["file"] == "apps/demo/web.yaml"


def test_helm_demo_is_blocked_like_the_first_demo(run_cli: RunCli, demo: Path) -> None:
    args = ["--config", "examples/flux-demo.kubegate.yaml", "--format", "json"]
    helm = run_cli("scan", "examples/helm-demo", *args, cwd=demo, env=_with_helm())
    assert helm.returncode == 1, helm.stderr
    plain = run_cli("scan", "examples/flux-demo", *args, cwd=demo, env=_with_helm())
    helm_report, plain_report = json.loads(helm.stdout), json.loads(plain.stdout)
    assert helm_report["verdict"] == "BLOCKED"
    # The same image, the same findings: only where it is declared differs.
    assert helm_report["summary"] == plain_report["summary"]
    (image,) = helm_report["images"]
    assert {use["file"] for use in image["uses"]} == {"apps/demo/web.yaml"}


def test_readme_first_command_needs_no_helm(run_cli: RunCli, demo: Path) -> None:
    """README "Set-up": the bundled demo has no HelmRelease, so no helm is needed; the helm
    example without helm lists its HelmRelease as not seen, naming the fix."""
    result = run_cli(
        "scan",
        "examples/flux-demo",
        "--config",
        "examples/flux-demo.kubegate.yaml",
        cwd=demo,
        env=_without_helm(),
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("BLOCKED: 1 image(s)")
    listed = run_cli(
        "images", "examples/helm-demo", "--format", "json", cwd=demo, env=_without_helm()
    )
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)["notSeen"]
    assert (item["kind"], item["name"]) == ("HelmRelease", "web")
    assert "helm is not found" in item["reason"]
