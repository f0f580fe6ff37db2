"""``kubegate images`` on multi-cluster fleet repositories, with the real kustomize.

Layouts come from ``tests.fixtures.fleets`` (shaped like fluxcd/flux2-kustomize-helm-example
and fluxcd/flux2-multi-tenancy). Each cluster is rendered on its own: the same Kustomization and
ConfigMap names in two clusters must give each cluster its own images.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

from tests.conftest import RunCli, cli_env
from tests.fixtures.fleets import APPS_KS, CLUSTER_VARS, WEB, two_clusters, write

STAGING = "docker.io/library/nginx:1.27.0-rc"
PROD = "docker.io/library/nginx:1.26.2"


def _images(run_cli: RunCli, root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("images", str(root), "--format", "json", *args)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout or "null"), result.stderr


def _by_cluster(document: dict[str, Any]) -> dict[str | None, list[str]]:
    found: dict[str | None, list[str]] = {}
    for image in document["images"]:
        for use in image["uses"]:
            found.setdefault(use["cluster"], []).append(image["image"])
    return found


def test_each_bootstrapped_cluster_renders_with_its_own_variables(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # Issue 12 point 1: prod used to be rendered with staging's ConfigMap (and exit 0).
    fleet = two_clusters(tmp_path / "fleet", {"staging": STAGING, "prod": PROD})
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert document["errors"] == []
    assert _by_cluster(document) == {"clusters/prod": [PROD], "clusters/staging": [STAGING]}
    uses = [use for image in document["images"] for use in image["uses"]]
    assert {(u["file"], u["line"], u["kustomization"]) for u in uses} == {
        ("apps/web.yaml", 13, "flux-system/apps")
    }
    assert stderr == ""


def test_cluster_option_selects_by_name_or_path(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = two_clusters(tmp_path / "fleet", {"staging": STAGING, "prod": PROD})
    code, document, _ = _images(run_cli, fleet, "--cluster", "prod")
    assert code == 0
    assert _by_cluster(document) == {"clusters/prod": [PROD]}
    code, document, _ = _images(run_cli, fleet, "--cluster", "./clusters/staging/")
    assert _by_cluster(document) == {"clusters/staging": [STAGING]}
    code, document, _ = _images(run_cli, fleet, "--cluster", "prod", "--cluster", "staging")
    assert set(_by_cluster(document)) == {"clusters/prod", "clusters/staging"}

    result = run_cli("images", str(fleet), "--cluster", "dev")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "kubegate: error: --cluster dev: no such cluster (found: clusters/prod, clusters/staging)"
    ]


def test_table_names_the_cluster_of_each_use(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = two_clusters(tmp_path / "fleet", {"staging": STAGING, "prod": PROD})
    result = run_cli("images", str(fleet))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "IMAGE",
        "CLUSTER",
        "WORKLOAD",
        "CONTAINER",
        "DECLARED",
        "AT",
        "KUSTOMIZATION",
    ]
    rows = {line.split()[0]: line.split()[1] for line in lines[2:4]}
    assert rows == {PROD: "clusters/prod", STAGING: "clusters/staging"}
    assert lines[4] == "2 image(s) in 2 use(s)"


def test_cluster_directories_without_bootstrap(run_cli: RunCli, tmp_path: Path) -> None:
    # No gotk-sync.yaml: each clusters/NAME holding Flux Kustomizations is a cluster, and the
    # `flux-system` GitRepository (defined nowhere in the revision) is the scanned source.
    fleet = write(
        tmp_path / "fleet",
        {
            "apps/web.yaml": WEB,
            "clusters/a/apps.yaml": APPS_KS,
            "clusters/a/vars.yaml": CLUSTER_VARS.replace("IMAGE", STAGING),
            "clusters/b/apps.yaml": APPS_KS,
            "clusters/b/vars.yaml": CLUSTER_VARS.replace("IMAGE", PROD),
            "clusters/README.yaml": "# not a cluster\n",
        },
    )
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert _by_cluster(document) == {"clusters/a": [STAGING], "clusters/b": [PROD]}


def test_a_tree_without_clusters_is_one_implicit_cluster(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = write(
        tmp_path / "fleet",
        {
            "apps/web.yaml": WEB,
            "flux/apps.yaml": APPS_KS,
            "flux/vars.yaml": CLUSTER_VARS.replace("IMAGE", PROD),
        },
    )
    code, document, _ = _images(run_cli, fleet)
    assert code == 0
    assert _by_cluster(document) == {None: [PROD]}
    result = run_cli("images", str(fleet))
    assert "CLUSTER" not in result.stdout


def test_two_definitions_of_one_kustomization_in_a_cluster_are_an_error(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = two_clusters(tmp_path / "fleet", {"staging": STAGING, "prod": PROD})
    # `more` applies a second, different `flux-system/apps` (one build holding both would fail
    # in kustomize itself).
    more = APPS_KS.replace("name: apps", "name: more").replace("path: ./apps", "path: ./more")
    other = APPS_KS.replace("path: ./apps", "path: ./other")
    write(
        fleet,
        {"clusters/prod/more.yaml": more, "more/apps.yaml": other, "other/web.yaml": WEB},
    )
    code, document, stderr = _images(run_cli, fleet)
    # Which definition the cluster applies is not in the revision: the whole revision is not
    # proven (exit 2, before any image is judged: issue 15 item 8), naming the cluster and both.
    assert code == 2 and document is None
    (line,) = stderr.strip().splitlines()
    assert line.startswith("kubegate: error: ")
    assert "Kustomization flux-system/apps is defined twice in cluster clusters/prod, in " in line
    assert "clusters/prod/apps.yaml:1" in line and "more/apps.yaml:1" in line
    # The other cluster alone, with one definition, is fine.
    code, document, stderr = _images(run_cli, fleet, "--cluster", "staging")
    assert code == 0, stderr
    assert STAGING in [i["image"] for i in document["images"]]


def test_one_object_reached_by_two_paths_is_not_a_conflict(run_cli: RunCli, tmp_path: Path) -> None:
    # `extra` applies clusters/prod/shared, which the bootstrap Kustomization applies too: the
    # Kustomization and ConfigMap there are the same objects, met twice.
    fleet = two_clusters(tmp_path / "fleet", {"prod": PROD})
    extra = (
        APPS_KS.replace("name: apps", "name: extra")
        .replace("path: ./apps", "path: ./clusters/prod/shared")
        .split("  postBuild:")[0]
    )
    nested = APPS_KS.replace("name: apps", "name: nested")
    write(
        fleet,
        {
            "clusters/prod/extra.yaml": extra,
            "clusters/prod/shared/nested.yaml": nested,
            "clusters/prod/shared/vars.yaml": CLUSTER_VARS.replace("cluster-vars", "more-vars"),
        },
    )
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert document["errors"] == []
    kustomizations = {u["kustomization"] for i in document["images"] for u in i["uses"]}
    assert kustomizations == {"flux-system/apps", "flux-system/nested"}


def test_kustomization_selection_keeps_only_its_own_errors(run_cli: RunCli, tmp_path: Path) -> None:
    # Issue 12 point 6: a broken `other` Kustomization must not fail a run that selects `apps`.
    fleet = two_clusters(tmp_path / "fleet", {"prod": PROD})
    broken = APPS_KS.replace("name: apps", "name: other").replace("path: ./apps", "path: ./gone")
    write(fleet, {"clusters/prod/other.yaml": broken})
    code, document, _ = _images(run_cli, fleet)
    assert code == 2
    assert ["flux-system/other" in e["message"] for e in document["errors"]] == [True]
    code, document, stderr = _images(run_cli, fleet, "--kustomization", "flux-system/apps")
    assert code == 0, stderr
    assert document["errors"] == []
    assert _by_cluster(document) == {"clusters/prod": [PROD]}


def test_unknown_kustomization_error_stays_one_short_line(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = two_clusters(tmp_path / "fleet", {"prod": PROD})
    many = {
        f"clusters/prod/app-{n:02}.yaml": APPS_KS.replace("name: apps", f"name: app-{n:02}")
        for n in range(30)
    }
    write(fleet, many)
    result = run_cli("images", str(fleet), "--kustomization", "flux-system/nope")
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kubegate: error: --kustomization flux-system/nope: not rendered")
    assert line.endswith("... (32 in all))")
    assert len(line) < 300


HELM_RELEASE = """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: NAME
  namespace: infra
spec:
  interval: 1h
  chart:
    spec: {chart: NAME, sourceRef: {kind: HelmRepository, name: charts}}
"""


def test_table_without_images_and_with_a_long_not_seen_list(
    run_cli: RunCli, tmp_path: Path
) -> None:
    releases = {
        f"apps/release-{n:02}.yaml": HELM_RELEASE.replace("NAME", f"chart-{n:02}")
        for n in range(12)
    }
    fleet = write(tmp_path / "fleet", {"flux/apps.yaml": APPS_KS.split("  postBuild:")[0]})
    write(fleet, releases)
    result = run_cli("images", str(fleet))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # No empty IMAGE table: the count line alone says there is nothing.
    assert lines[0] == "0 image(s) in 0 use(s)"
    assert "IMAGE" not in result.stdout
    assert lines[-1] == "12 object(s) not seen"


def test_narrow_terminal_never_cuts_a_reference(tmp_path: Path) -> None:
    # On a 60-column terminal the table does not fit: each use becomes a block and references
    # and paths stay whole (issue 12 point 10: the table wrapped them mid-token).
    fleet = two_clusters(tmp_path / "fleet", {"staging": STAGING, "prod": PROD})
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 60, 0, 0))
    env = cli_env({"KUBEGATE_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "60"})
    with subprocess.Popen(
        [sys.executable, "-m", "kubegate", "images", str(fleet)],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=90) == 0
    os.close(primary)
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())
    lines = [line.rstrip() for line in text.splitlines()]
    assert STAGING in lines and PROD in lines
    assert "apps/web.yaml:13" in text
    assert all(len(line) <= 60 for line in lines)


# Flux Operator objects, shaped like controlplaneio-fluxcd/d1-fleet
# `clusters/staging/flux-system/flux-instance.yaml` and the flux-operator docs' ResourceSet and
# ResourceSetInputProvider examples (`fluxcd.controlplane.io/v1`).
FLUX_INSTANCE = """apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: 2.7.x
    registry: ghcr.io/fluxcd
  sync:
    kind: GitRepository
    url: https://github.com/acme/fleet.git
    ref: refs/heads/main
    path: clusters/prod
"""
RESOURCE_SET = """apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSet
metadata:
  name: apps
  namespace: apps
spec:
  inputsFrom:
    - kind: ResourceSetInputProvider
      name: podinfo-image
  resources:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {name: podinfo, namespace: apps}
---
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: podinfo-image
  namespace: apps
spec:
  type: OCIArtifactTag
  url: oci://ghcr.io/stefanprodan/podinfo
"""


def test_flux_operator_objects_are_not_seen_with_a_reason(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = two_clusters(tmp_path / "fleet", {"prod": PROD})
    write(
        fleet,
        {
            "clusters/prod/flux-system/flux-instance.yaml": FLUX_INSTANCE,
            "clusters/prod/flux-system/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                "resources:\n  - gotk-sync.yaml\n  - flux-instance.yaml\n"
            ),
            "apps/resource-set.yaml": RESOURCE_SET,
        },
    )
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    found = {(n["kind"], n["name"]): n for n in document["notSeen"]}
    assert set(found) == {
        ("FluxInstance", "flux"),
        ("ResourceSet", "apps"),
        ("ResourceSetInputProvider", "podinfo-image"),
    }
    assert found[("FluxInstance", "flux")]["file"] == "clusters/prod/flux-system/flux-instance.yaml"
    assert all(n["reason"].startswith("Flux Operator ") for n in found.values())
    assert {n["cluster"] for n in found.values()} == {"clusters/prod"}
    # Without any Flux Kustomization (plain YAML) they are reported the same way.
    plain = write(tmp_path / "plain", {"flux-instance.yaml": FLUX_INSTANCE})
    code, document, _ = _images(run_cli, plain)
    assert code == 0
    assert [(n["kind"], n["cluster"]) for n in document["notSeen"]] == [("FluxInstance", None)]


def test_flux_instance_beside_a_cluster_without_bootstrap_is_not_seen(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # controlplaneio-fluxcd/d1-fleet today: no gotk-sync.yaml, the Flux Operator's FluxInstance
    # in clusters/NAME/flux-system syncs clusters/NAME; nothing renders that file.
    fleet = write(
        tmp_path / "fleet",
        {
            "clusters/staging/flux-system/flux-instance.yaml": FLUX_INSTANCE,
            "clusters/staging/apps.yaml": APPS_KS,
            "clusters/staging/vars.yaml": CLUSTER_VARS.replace("IMAGE", STAGING),
            "apps/web.yaml": WEB,
        },
    )
    code, document, stderr = _images(run_cli, fleet)
    assert code == 0, stderr
    assert _by_cluster(document) == {"clusters/staging": [STAGING]}
    assert [(n["kind"], n["file"], n["cluster"]) for n in document["notSeen"]] == [
        ("FluxInstance", "clusters/staging/flux-system/flux-instance.yaml", "clusters/staging")
    ]
