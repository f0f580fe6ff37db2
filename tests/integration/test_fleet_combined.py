"""One fleet combining the issue 12 points, rendered by ``kubegate images`` with the real kustomize.

tests/data/fleets/multi has two bootstrapped clusters (fluxcd/flux2-kustomize-helm-example
layout: ``clusters/{staging,production}/flux-system/gotk-sync.yaml``) with the same
Kustomization and ConfigMap names; a bootstrap GitRepository ``spec.ignore`` hiding a retired
Kustomization under ``.archive/``; variables from a ConfigMap another Kustomization renders
(``cluster-settings``); a Secret with binary data nothing reads; an AlertmanagerConfig with
``matchType: =`` and YAML 1.1-looking values and redefined anchors in a generated
kustomization; a JSON 6902 patch adding a container; and a tenant Kustomization reading its own
GitRepository (fluxcd/flux2-multi-tenancy ``tenants/base/dev-team/sync.yaml``).
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import REPO, RunCli
from tests.fixtures.golden import Golden

DATA = REPO / "tests" / "data" / "fleets"


def _run(run_cli: RunCli, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("images", "multi", "--format", "json", *args, cwd=DATA)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout), result.stdout


def test_combined_fleet_golden(run_cli: RunCli, golden: Golden) -> None:
    code, document, text = _run(run_cli)
    assert code == 0
    assert document["errors"] == []
    golden("images-fleets-multi.json", text)
    table = run_cli("images", "multi", cwd=DATA)
    assert table.returncode == 0, table.stderr
    golden("images-fleets-multi.txt", table.stdout)


def test_combined_fleet_facts(run_cli: RunCli) -> None:
    _, document, _ = _run(run_cli)
    uses = {
        (u["cluster"], u["container"]): {**u, "image": i["image"]}
        for i in document["images"]
        for u in i["uses"]
    }
    # Each cluster with its own variables (cluster-vars from its bootstrap directory,
    # cluster-settings from the cluster-settings Kustomization).
    assert uses[("clusters/staging", "nginx")]["image"] == "docker.io/library/nginx:1.27.0-rc"
    assert uses[("clusters/production", "nginx")]["image"] == "docker.io/library/nginx:1.26.2"
    shipper = uses[("clusters/staging", "log-shipper")]
    assert shipper["image"] == "stage.example.com/acme/log-shipper:0.4.2"
    assert (shipper["file"], shipper["line"]) == ("apps/staging/log-shipper.yaml", 6)
    # The generated kustomization with `matchType: =` and redefined anchors still renders.
    assert uses[("clusters/production", "init")]["file"] == "infrastructure/exporter.yaml"
    # The tenant's own repository is not fetched: its Kustomization is not seen, per cluster.
    assert sorted((n["cluster"], n["kind"], n["name"]) for n in document["notSeen"]) == [
        ("clusters/production", "Kustomization", "dev-team"),
        ("clusters/staging", "Kustomization", "dev-team"),
    ]
    assert len(uses) == 8


def test_combined_fleet_one_cluster(run_cli: RunCli) -> None:
    code, document, _ = _run(run_cli, "--cluster", "production")
    assert code == 0
    assert {u["cluster"] for i in document["images"] for u in i["uses"]} == {"clusters/production"}
