"""Where a fleet's Kustomizations read their files and variables from (real kustomize, real git).

- Another GitRepository (fluxcd/flux2-multi-tenancy ``tenants/base/dev-team/sync.yaml``: a
  tenant GitRepository with a Kustomization that has no ``spec.path``, the path added by the
  ``tenants/staging/dev-team-patch.yaml`` patch) is never fetched from the URL in the revision:
  its Kustomization is listed as not seen unless ``--source`` supplies it.
- Variables from a ConfigMap another Kustomization of the cluster renders: the ``cluster-settings``
  ConfigMap in ``flux-system`` read through ``postBuild.substituteFrom`` by many Kustomizations,
  as public home-lab fleets write it, sometimes by the very Kustomization that renders it.
- A Secret holding binary data only matters when a variable reads it.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import RunCli
from tests.fixtures.fleets import (
    APPS_KS,
    BOOTSTRAP_KUSTOMIZATION,
    CLUSTER_VARS,
    GOTK_SYNC,
    WEB,
    bootstrap,
    write,
)

TENANT_SYNC = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: dev-team
  namespace: apps
spec:
  interval: 1m
  url: https://token:secret@github.com/fluxcd/flux2-multi-tenancy
  ref:
    branch: dev-team
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: dev-team
  namespace: apps
spec:
  serviceAccountName: dev-team
  interval: 5m
  sourceRef:
    kind: GitRepository
    name: dev-team
  prune: true
"""
TENANTS_KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: tenants
  namespace: flux-system
spec:
  interval: 5m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./tenants/staging
  prune: true
"""
TENANTS_OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base/dev-team
patches:
  - path: dev-team-patch.yaml
"""
DEV_TEAM_PATCH = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: dev-team
  namespace: apps
spec:
  path: ./staging
"""
TENANT_APP = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: apps
spec:
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.7.1
"""


def _tenant_fleet(root: Path) -> Path:
    files = {
        **bootstrap("staging"),
        "clusters/staging/tenants.yaml": TENANTS_KS,
        "tenants/base/dev-team/sync.yaml": TENANT_SYNC,
        "tenants/base/dev-team/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n  - sync.yaml\n"
        ),
        "tenants/staging/kustomization.yaml": TENANTS_OVERLAY,
        "tenants/staging/dev-team-patch.yaml": DEV_TEAM_PATCH,
    }
    return write(root, files)


def _images(run_cli: RunCli, root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("images", str(root), "--format", "json", *args)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout or "null"), result.stderr


def test_another_git_repository_is_not_seen_as_its_kustomization(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = _tenant_fleet(tmp_path / "fleet")
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert document["errors"] == []
    (item,) = document["notSeen"]
    assert (item["kind"], item["namespace"], item["name"]) == ("Kustomization", "apps", "dev-team")
    assert (item["file"], item["line"], item["cluster"]) == (
        "tenants/base/dev-team/sync.yaml",
        12,
        "clusters/staging",
    )
    assert (
        "GitRepository apps/dev-team (https://github.com/fluxcd/flux2-multi-tenancy"
        in (item["reason"])
    )
    assert "--source apps/dev-team=" in item["reason"]
    assert "secret" not in item["reason"]  # credentials in the URL are never printed


def test_source_option_supplies_a_directory(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = _tenant_fleet(tmp_path / "fleet")
    tenant = write(tmp_path / "tenant", {"staging/podinfo.yaml": TENANT_APP})
    code, document, stderr = _images(run_cli, fleet, "--source", f"apps/dev-team={tenant}")
    assert code == 0, stderr
    assert document["notSeen"] == []
    ((image, use),) = [(i["image"], u) for i in document["images"] for u in i["uses"]]
    assert image == "ghcr.io/stefanprodan/podinfo:6.7.1"
    assert (use["kustomization"], use["cluster"]) == ("apps/dev-team", "clusters/staging")
    assert (use["file"], use["line"]) == ("staging/podinfo.yaml", 13)


def test_source_option_supplies_a_git_ref(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = _tenant_fleet(tmp_path / "fleet")
    repo = write(tmp_path / "tenant.git", {"staging/podinfo.yaml": TENANT_APP})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git[:3], "init", "-q", "-b", "dev-team"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "tenant"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (repo / "staging" / "podinfo.yaml").write_text(TENANT_APP.replace("6.7.1", "9.9.9"))
    source = f"apps/dev-team=file://{repo}@v1"
    code, document, stderr = _images(run_cli, fleet, "--source", source)
    assert code == 0, stderr
    # The tag's content, not the working tree's.
    assert [i["image"] for i in document["images"]] == ["ghcr.io/stefanprodan/podinfo:6.7.1"]


def test_malformed_source_option_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = _tenant_fleet(tmp_path / "fleet")
    result = run_cli("images", str(fleet), "--source", "dev-team=/tmp")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "kubegate: error: --source: expected NS/NAME=DIR|GIT-URL[@REF], got 'dev-team=/tmp'"
    ]


def test_a_kustomization_without_path_renders_the_root_and_nothing_else_is_lost(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # `everything` (no spec.path) builds the whole source, which fails on a file that is not a
    # Kubernetes object; `apps` is still rendered.
    everything = APPS_KS.replace("name: apps", "name: everything").replace("  path: ./apps\n", "")
    fleet = write(
        tmp_path / "fleet",
        {
            "apps/web.yaml": WEB,
            "flux/apps.yaml": APPS_KS,
            "flux/everything.yaml": everything,
            "flux/vars.yaml": CLUSTER_VARS.replace("IMAGE", "nginx:1.27"),
            "settings/values.yaml": "replicas: 3\n",
        },
    )
    code, document, _ = _images(run_cli, fleet)
    assert code == 2
    assert [i["image"] for i in document["images"]] == ["docker.io/library/nginx:1.27"]
    (error,) = document["errors"]
    assert error["message"].startswith("Kustomization flux-system/everything: ")
    assert (error["file"], error["line"]) == ("settings/values.yaml", 1)


SETTINGS_KS = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-settings
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./settings
  prune: true
"""


def test_variables_from_a_config_map_another_kustomization_renders(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = write(
        tmp_path / "fleet",
        {
            **bootstrap("prod"),
            "clusters/prod/settings.yaml": SETTINGS_KS,
            "clusters/prod/apps.yaml": APPS_KS,
            "settings/vars.yaml": CLUSTER_VARS.replace("IMAGE", "nginx:1.27"),
            "apps/web.yaml": WEB,
        },
    )
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert [i["image"] for i in document["images"]] == ["docker.io/library/nginx:1.27"]


def test_variables_from_a_config_map_the_kustomization_renders_itself(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # In the cluster the ConfigMap exists from an earlier reconciliation of the same
    # Kustomization, so Flux substitutes its values.
    fleet = write(
        tmp_path / "fleet",
        {
            **bootstrap("prod"),
            "clusters/prod/apps.yaml": APPS_KS,
            "apps/vars.yaml": CLUSTER_VARS.replace("IMAGE", "nginx:1.27"),
            "apps/web.yaml": WEB,
        },
    )
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert [i["image"] for i in document["images"]] == ["docker.io/library/nginx:1.27"]


BINARY_SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: cluster-secrets
  namespace: flux-system
data:
  keystore.p12: {p12}
  token: {token}
"""


def _secret_fleet(root: Path, web: str) -> Path:
    apps = APPS_KS + "      - kind: Secret\n        name: cluster-secrets\n"
    p12 = base64.b64encode(bytes(range(0x80, 0xA0))).decode()
    token = base64.b64encode(b"abc").decode()
    return write(
        root,
        {
            **bootstrap("prod"),
            "clusters/prod/apps.yaml": apps,
            "clusters/prod/vars.yaml": CLUSTER_VARS.replace("IMAGE", "nginx:1.27"),
            "clusters/prod/secrets.yaml": BINARY_SECRET.format(p12=p12, token=token),
            "apps/web.yaml": web,
        },
    )


def test_binary_secret_data_is_fine_until_a_variable_reads_it(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = _secret_fleet(tmp_path / "ok", WEB.replace("name: web\n", "name: web-${token}\n", 1))
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert [u["name"] for i in document["images"] for u in i["uses"]] == ["web-abc"]


def test_binary_secret_value_used_by_a_variable_is_an_error(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # A `${keystore.p12}` is no variable name; a key that is one and holds binary data:
    web = WEB.replace("image: ${web_image}", "image: ${web_image}\n          args: ['${blob}']")
    fleet = _secret_fleet(tmp_path / "bad", web)
    secret = fleet / "clusters/prod/secrets.yaml"
    secret.write_text(secret.read_text().replace("keystore.p12", "blob"))
    code, document, _ = _images(run_cli, fleet)
    assert code == 2
    (error,) = document["errors"]
    assert error["message"] == (
        "postBuild: variable 'blob' comes from Secret flux-system/cluster-secrets, whose data is "
        "not base64 UTF-8 text in Deployment apps/web (Kustomization flux-system/apps)"
    )
    assert (error["file"], error["line"]) == ("apps/web.yaml", 14)


def test_scan_reads_sources_from_its_config(
    run_cli: RunCli, tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    # `sources:` in kubegate.yaml is --source from the config (a relative DIR is the config's).
    fleet = _tenant_fleet(tmp_path / "fleet")
    unreachable = TENANT_APP.replace("ghcr.io/stefanprodan", "127.0.0.1:9/stefanprodan")
    write(tmp_path / "cfg" / "tenant", {"staging/podinfo.yaml": unreachable})
    config = tmp_path / "cfg" / "kubegate.yaml"
    config.write_text("sources:\n  apps/dev-team: tenant\n")
    args = ["--config", str(config), "--db", str(gate_dbs["osv"]), "--skip-db-update"]
    result = run_cli("scan", str(fleet), "--format", "json", *args)
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["notSeen"] == []
    uses = [u for i in report["images"] for u in i["uses"]]
    assert [(u["kustomization"], u["file"]) for u in uses] == [
        ("apps/dev-team", "staging/podinfo.yaml")
    ]
    # The image itself cannot be reached: not proven, exit 2.
    assert result.returncode == 2

    config.write_text("sources:\n  apps/dev-team: [not, a, location]\n")
    result = run_cli("scan", str(fleet), *args)
    assert result.returncode == 3
    assert "sources[apps/dev-team]: expected DIR|GIT-URL[@REF]" in result.stderr


# source-controller's GitRepositorySpec: `ignore` is a gitignore-syntax string, `include` a list of
# {repository: {name}, fromPath, toPath} (fluxcd/source-controller docs/api/v1/source.md).
IGNORING_SYNC = GOTK_SYNC.replace(
    "  url: ssh://git@github.com/acme/fleet\n",
    "  url: ssh://git@github.com/acme/fleet\n"
    "  ignore: |\n"
    "    # old experiments, kept for reference\n"
    "    .archive/\n"
    "  include:\n"
    "    - repository:\n"
    "        name: shared\n"
    "      fromPath: deploy\n"
    "      toPath: vendor/shared\n",
).replace("CLUSTER", "prod")
ARCHIVED = APPS_KS.replace("name: apps", "name: old").replace("path: ./apps", "path: ./gone")
SHARED_KS = (
    APPS_KS.replace("name: apps", "name: shared")
    .replace("path: ./apps", "path: ./vendor/shared/app")
    .split("  postBuild:")[0]
)


def _ignoring_fleet(root: Path) -> Path:
    return write(
        root,
        {
            "clusters/prod/flux-system/gotk-sync.yaml": IGNORING_SYNC,
            "clusters/prod/flux-system/kustomization.yaml": BOOTSTRAP_KUSTOMIZATION,
            "clusters/prod/shared.yaml": SHARED_KS,
            "clusters/prod/.archive/old.yaml": ARCHIVED,
            "apps/.archive/broken.yaml": "not: [valid\n",
        },
    )


def test_git_repository_ignore_of_the_scanned_source_is_honoured(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = _ignoring_fleet(tmp_path / "fleet")
    code, document, stderr = _images(run_cli, fleet)
    # Without spec.ignore the archived Kustomization (a path that is gone) and the broken file
    # would be errors; Flux never sees them.
    assert code == 0, stderr
    assert document["errors"] == []
    kinds = {(n["kind"], n["namespace"], n["name"]): n for n in document["notSeen"]}
    included = kinds[("GitRepository", "flux-system", "shared")]
    assert included["reason"].startswith(
        "included by GitRepository flux-system/flux-system at vendor/shared; supply it with "
        "--source flux-system/shared="
    )
    assert included["file"] == "clusters/prod/flux-system/gotk-sync.yaml"
    shared = kinds[("Kustomization", "flux-system", "shared")]
    assert "GitRepository flux-system/shared, included at vendor/shared" in shared["reason"]


def test_git_repository_include_is_rendered_when_supplied(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = _ignoring_fleet(tmp_path / "fleet")
    shared = write(tmp_path / "shared", {"deploy/app/podinfo.yaml": TENANT_APP})
    code, document, stderr = _images(run_cli, fleet, "--source", f"flux-system/shared={shared}")
    assert code == 0, stderr
    assert document["notSeen"] == []
    ((image, use),) = [(i["image"], u) for i in document["images"] for u in i["uses"]]
    assert image == "ghcr.io/stefanprodan/podinfo:6.7.1"
    assert (use["file"], use["line"]) == ("vendor/shared/app/podinfo.yaml", 13)
