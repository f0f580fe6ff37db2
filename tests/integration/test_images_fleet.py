"""``kubegate images`` on a whole Flux fleet layout, with the real kustomize binary.

tests/data/fleet is a bootstrap layout: clusters/prod/flux-system renders clusters/prod, whose
Kustomizations render ./infrastructure (a plain directory, generated kustomization) and
./apps/prod (a kustomize overlay with an `images:` override and a patch adding a container), with
postBuild variables from a ConfigMap, inline values and defaults.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, RunCli, cli_env
from tests.fixtures.golden import Golden

DATA = REPO / "tests" / "data"
FLEET = DATA / "fleet"


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _images(run_cli: RunCli, *args: str, cwd: Path = DATA) -> tuple[int, dict[str, Any], str]:
    result = run_cli("images", *args, "--format", "json", cwd=cwd)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def _uses(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(workload name, container) -> use, with the deployed image added."""
    found = {}
    for image in document["images"]:
        for use in image["uses"]:
            found[(use["name"], use["container"])] = {**use, "image": image["image"]}
    return found


@pytest.fixture(scope="module")
def fleet_json() -> tuple[str, dict[str, Any]]:
    """One run of `kubegate images fleet --format json` shared by the read-only tests."""
    before = _tree_digest(FLEET)
    result = subprocess.run(
        [sys.executable, "-m", "kubegate", "images", "fleet", "--format", "json"],
        cwd=DATA,
        env=cli_env({"NO_COLOR": "1"}),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Flux's in-place kustomization edits happen in a private copy, never in the source.
    assert _tree_digest(FLEET) == before
    return result.stdout, json.loads(result.stdout)


@pytest.fixture
def fleet_copy(tmp_path: Path) -> Path:
    target = tmp_path / "fleet"
    shutil.copytree(FLEET, target)
    return target


def test_fleet_json_golden(fleet_json: tuple[str, dict[str, Any]], golden: Golden) -> None:
    golden("images-fleet.json", fleet_json[0])


def test_fleet_table_golden(run_cli: RunCli, golden: Golden) -> None:
    result = run_cli("images", "fleet", cwd=DATA)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout  # off a TTY nothing is truncated
    golden("images-fleet.txt", result.stdout)


def test_fleet_provenance_through_overlays_and_post_build(
    fleet_json: tuple[str, dict[str, Any]],
) -> None:
    document = fleet_json[1]
    uses = _uses(document)
    # The overlay's `images:` entry decides nginx's tag: provenance points at that entry.
    web = uses[("web", "nginx")]
    assert web["image"] == "docker.io/library/nginx:1.25.3"
    assert (web["file"], web["line"]) == ("apps/prod/kustomization.yaml", 7)
    assert web["declared"] == "nginx:1.25"
    assert (web["kind"], web["namespace"], web["kustomization"]) == (
        "Deployment",
        "apps",
        "flux-system/apps",
    )
    # The Flux Kustomization's own spec.images entry points at the Flux object.
    worker = uses[("worker", "worker")]
    assert worker["image"] == "ghcr.io/acme/worker:3.1.0"
    assert (worker["file"], worker["line"]) == ("clusters/prod/apps.yaml", 16)
    # A container added by an overlay patch, with a substituted registry.
    shipper = uses[("web", "log-shipper")]
    assert shipper["image"] == "registry.example.com/acme/log-shipper:0.4.2"
    assert (shipper["file"], shipper["line"]) == ("apps/prod/log-shipper.yaml", 10)
    assert shipper["declared"] == "${registry}/acme/log-shipper:0.4.2"
    # substituteFrom ConfigMap + inline substitute.
    api = uses[("api", "api")]
    assert api["image"] == "registry.example.com/acme/api:2.0.1"
    assert (api["kind"], api["file"], api["line"]) == ("StatefulSet", "apps/base/api.yaml", 17)
    # A default `${var:=default}` and a CronJob init container.
    assert uses[("cleanup", "cleanup")]["image"] == "registry.example.com/acme/cleanup:1.4.0"
    init = uses[("cleanup", "wait-for-db")]
    assert init["containerType"] == "initContainers"
    assert (init["file"], init["line"]) == ("apps/base/cleanup.yaml", 14)
    # The plain infrastructure directory (generated kustomization), digest and tag both kept.
    ingress = uses[("ingress-controller", "controller")]
    assert ingress["image"].startswith("registry.k8s.io/ingress-nginx/controller:v1.9.4@sha256:")
    assert ingress["kustomization"] == "flux-system/infrastructure"
    assert (ingress["file"], ingress["line"]) == ("infrastructure/ingress/controller.yaml", 22)
    assert len(uses) == 7


def test_fleet_not_seen(fleet_json: tuple[str, dict[str, Any]]) -> None:
    document = fleet_json[1]
    not_seen = {(n["kind"], n["name"]): n for n in document["notSeen"]}
    helm = not_seen[("HelmRelease", "cert-manager")]
    assert helm["namespace"] == "infra"
    assert helm["file"] == "infrastructure/cert-manager/release.yaml"
    # `images` fetches charts (issue 13); nothing listens on the fixture's discard port, so the
    # chart cannot be fetched: the HelmRelease stays not seen with the OS's reason, exit 0.
    assert helm["reason"] == (
        "HelmRepository infra/jetstack: fetching http://127.0.0.1:9/jetstack/index.yaml failed: "
        "ConnectError: [Errno 111] Connection refused"
    )
    oci = not_seen[("Kustomization", "monitoring")]
    assert "OCIRepository" in oci["reason"]
    assert document["errors"] == []


def test_select_one_kustomization(run_cli: RunCli) -> None:
    code, document, _ = _images(run_cli, "fleet", "--kustomization", "flux-system/infrastructure")
    assert code == 0
    assert [i["image"].split("@")[0] for i in document["images"]] == [
        "registry.k8s.io/ingress-nginx/controller:v1.9.4"
    ]
    assert [n["name"] for n in document["notSeen"]] == ["cert-manager"]


def test_select_the_bootstrap_kustomization_follows_what_it_applies(run_cli: RunCli) -> None:
    code, document, _ = _images(run_cli, "fleet", "--kustomization", "flux-system/flux-system")
    assert code == 0
    assert len(_uses(document)) == 7


def test_unknown_kustomization_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("images", "fleet", "--kustomization", "flux-system/nope", cwd=DATA)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "flux-system/nope" in lines[0]


def test_path_selects_one_cluster_directory(run_cli: RunCli) -> None:
    code, document, _ = _images(run_cli, "fleet", "--path", "clusters/prod")
    assert code == 0
    assert len(_uses(document)) == 7


def test_substitution_escapes_and_opt_out() -> None:
    # Rendered objects are not printed; check what Flux would apply through the render API.
    from kubegate.render import render

    result = render(FLEET)
    assert result.problems == ()
    by_name = {(o.kind, o.name): o.value for o in result.objects}
    web = by_name[("Deployment", "web")]["spec"]["template"]["spec"]["containers"]
    env = next(c for c in web if c["name"] == "nginx")["env"][0]["value"]
    assert env == "literal ${not_a_var} and bare $HOME"
    worker = by_name[("Deployment", "worker")]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["--template", "${left_alone}"]
    # kustomize's provenance annotations are stripped before anything else sees the objects.
    assert "annotations" not in by_name[("StatefulSet", "api")]["metadata"]


def test_non_kubernetes_yaml_inside_a_flux_path_fails_the_build(
    run_cli: RunCli, fleet_copy: Path
) -> None:
    (fleet_copy / "infrastructure" / "ingress" / "values.yaml").write_text("replicas: 3\n")
    result = run_cli("images", str(fleet_copy), "--format", "json")
    assert result.returncode == 2
    errors = json.loads(result.stdout)["errors"]
    assert [(e["file"], e["line"]) for e in errors] == [("infrastructure/ingress/values.yaml", 1)]
    assert "not a Kubernetes object" in errors[0]["message"]
    # The other Kustomizations still render: all errors in one run, images kept.
    assert any("nginx" in i["image"] for i in json.loads(result.stdout)["images"])
    assert result.stderr.strip().splitlines() == [
        f"kubegate: error: infrastructure/ingress/values.yaml:1: {errors[0]['message']} "
        "(cluster clusters/prod)"
    ]


def test_undefined_variable_names_variable_object_and_file(
    run_cli: RunCli, fleet_copy: Path
) -> None:
    api = fleet_copy / "apps" / "base" / "api.yaml"
    api.write_text(api.read_text().replace("${api_version}", "${api_tag}"))
    result = run_cli("images", str(fleet_copy), "--format", "json")
    assert result.returncode == 2
    errors = json.loads(result.stdout)["errors"]
    assert len(errors) == 1
    assert (errors[0]["file"], errors[0]["line"]) == ("apps/base/api.yaml", 17)
    assert "'api_tag'" in errors[0]["message"]
    assert "StatefulSet apps/api" in errors[0]["message"]


def test_cluster_only_config_map_needs_var(run_cli: RunCli, fleet_copy: Path) -> None:
    (fleet_copy / "clusters" / "prod" / "cluster-vars.yaml").unlink()
    result = run_cli("images", str(fleet_copy), "--format", "json")
    assert result.returncode == 2
    errors = json.loads(result.stdout)["errors"]
    assert len(errors) == 1
    assert "ConfigMap flux-system/cluster-vars" in errors[0]["message"]
    assert "--var" in errors[0]["message"]

    varfile = fleet_copy.parent / "vars.env"
    varfile.write_text("# cluster values\nregistry=cluster.example.org\n")
    result = run_cli("images", str(fleet_copy), "--format", "json", "--var-file", str(varfile))
    assert result.returncode == 0, result.stderr
    images = [i["image"] for i in json.loads(result.stdout)["images"]]
    assert "cluster.example.org/acme/api:2.0.1" in images

    result = run_cli(
        "images", str(fleet_copy), "--format", "json", "--var", "registry=r.example.net"
    )
    assert result.returncode == 0, result.stderr
    assert "r.example.net/acme/api:2.0.1" in [
        i["image"] for i in json.loads(result.stdout)["images"]
    ]


def test_optional_substitute_from_is_honoured(run_cli: RunCli, fleet_copy: Path) -> None:
    # `cluster-secrets` (optional) is absent; a Secret that is present is read (base64 data).
    secret = fleet_copy / "clusters" / "prod" / "cluster-secrets.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n"
        "  namespace: flux-system\ndata:\n  api_version: OS45Ljk=\n"
    )
    code, document, _ = _images(run_cli, str(fleet_copy), cwd=fleet_copy.parent)
    assert code == 0
    # Inline `substitute` wins over substituteFrom values.
    assert "registry.example.com/acme/api:2.0.1" in [i["image"] for i in document["images"]]
    apps = fleet_copy / "clusters" / "prod" / "apps.yaml"
    apps.write_text(apps.read_text().replace('      api_version: "2.0.1"\n', '      x: "1"\n'))
    code, document, _ = _images(run_cli, str(fleet_copy), cwd=fleet_copy.parent)
    assert code == 0
    assert "registry.example.com/acme/api:9.9.9" in [i["image"] for i in document["images"]]


def test_flux_demo_example_lists_nginx_through_the_overlay(run_cli: RunCli) -> None:
    result = run_cli("images", "examples/flux-demo", "--format", "json", cwd=REPO)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [i["image"] for i in document["images"]] == ["docker.io/library/nginx:1.21.0"]
    (use,) = document["images"][0]["uses"]
    assert (use["kind"], use["namespace"], use["name"], use["container"]) == (
        "Deployment",
        "apps",
        "web",
        "nginx",
    )
    assert (use["file"], use["line"]) == ("apps/base/web.yaml", 19)
    assert use["kustomization"] == "flux-system/apps"
    table = run_cli("images", "examples/flux-demo", cwd=REPO)
    assert "apps/base/web.yaml:19" in table.stdout


def test_kustomize_failure_names_the_kustomization(run_cli: RunCli, fleet_copy: Path) -> None:
    overlay = fleet_copy / "apps" / "prod" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("log-shipper.yaml", "missing-patch.yaml"))
    result = run_cli("images", str(fleet_copy), "--format", "json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    (error,) = document["errors"]
    assert error["message"].startswith("Kustomization flux-system/apps: kustomize build failed")
    assert "missing-patch.yaml" in error["message"]
    assert (error["file"], error["line"]) == ("clusters/prod/apps.yaml", 1)
    # The infrastructure Kustomization still rendered.
    assert any("ingress-nginx" in i["image"] for i in document["images"])


def test_sops_encrypted_secret_needs_var(run_cli: RunCli, fleet_copy: Path) -> None:
    apps = fleet_copy / "clusters" / "prod" / "apps.yaml"
    apps.write_text(apps.read_text().replace("        optional: true\n", ""))
    (fleet_copy / "clusters" / "prod" / "cluster-secrets.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n"
        "  namespace: flux-system\ndata:\n  token: ENC[AES256_GCM,data:abc=,type:str]\n"
        "sops:\n  version: 3.8.1\n"
    )
    result = run_cli("images", str(fleet_copy), "--format", "json")
    assert result.returncode == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert "Secret flux-system/cluster-secrets is SOPS-encrypted" in error["message"]
    result = run_cli("images", str(fleet_copy), "--format", "json", "--var", "token=x")
    assert result.returncode == 0, result.stderr


def test_a_second_bootstrapped_cluster_is_rendered_on_its_own(
    run_cli: RunCli, fleet_copy: Path
) -> None:
    staging = fleet_copy / "clusters" / "staging"
    shutil.copytree(fleet_copy / "clusters" / "prod", staging)
    sync = staging / "flux-system" / "gotk-sync.yaml"
    sync.write_text(sync.read_text().replace("./clusters/prod", "./clusters/staging"))
    variables = staging / "cluster-vars.yaml"
    variables.write_text(variables.read_text().replace("registry.example.com", "stage.example"))
    code, document, stderr = _images(run_cli, str(fleet_copy), cwd=fleet_copy.parent)
    assert code == 0, stderr
    assert stderr == ""
    api = {
        u["cluster"]: i["image"]
        for i in document["images"]
        for u in i["uses"]
        if u["name"] == "api"
    }
    assert api == {
        "clusters/prod": "registry.example.com/acme/api:2.0.1",
        "clusters/staging": "stage.example/acme/api:2.0.1",
    }
    code, document, _ = _images(
        run_cli, str(fleet_copy), "--path", "clusters/staging", cwd=fleet_copy.parent
    )
    assert code == 0
    assert {u["cluster"] for i in document["images"] for u in i["uses"]} == {"clusters/staging"}


def test_kustomize_error_is_one_line_without_klog_noise(run_cli: RunCli, fleet_copy: Path) -> None:
    # Issue 12 point 10: kubectl's klog wrapper (`E1203 ... run.go:72] "command failed"`) is
    # not part of the message, which names the broken file.
    (fleet_copy / "apps" / "base" / "api.yaml").write_text("apiVersion: v1\nkind: [oops\n")
    result = run_cli("images", str(fleet_copy), "--format", "json")
    assert result.returncode == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert error["message"].startswith("Kustomization flux-system/apps: kustomize build failed: ")
    assert "api.yaml" in error["message"]
    assert "run.go" not in error["message"] and "command failed" not in error["message"]
    assert "\n" not in error["message"]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kubegate: error: clusters/prod/apps.yaml:1: Kustomization")
