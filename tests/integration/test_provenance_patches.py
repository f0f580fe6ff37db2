"""Provenance through patches kubegate used to miss (issue 12 point 8), with the real kustomize.

- A container added, or an image replaced, by a JSON 6902 patch (kustomize ``patches`` with a
  list of operations, and the deprecated ``patchesJson6902``) points at the patch's ``image:``
  line, not at the base file.
- An ``images:`` entry a parent Flux Kustomization injects into the Kustomizations it applies
  through its own ``spec.patches`` (the "patch every child" pattern of home-lab fleets) points at
  the parent's patch, not at the child.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import RunCli
from tests.fixtures.fleets import bootstrap, write

BASE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.25
        - name: helper
          image: busybox:1.36
"""
OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
patches:
  - target: {kind: Deployment, name: web}
    path: sidecar.yaml
  - target: {kind: Deployment, name: web}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/1/image
        value: busybox:1.37
"""
SIDECAR = """# adds a log shipper
- op: add
  path: /spec/template/spec/containers/-
  value:
    name: shipper
    image: fluent/fluent-bit:3.0
"""


def _uses(run_cli: RunCli, root: Path, *args: str) -> dict[str, dict[str, Any]]:
    result = run_cli("images", str(root), "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    return {
        u["container"]: {**u, "image": i["image"]} for i in document["images"] for u in i["uses"]
    }


def test_json6902_patches_point_at_their_own_lines(run_cli: RunCli, tmp_path: Path) -> None:
    tree = write(
        tmp_path / "tree",
        {
            "base/web.yaml": BASE,
            "base/kustomization.yaml": "resources: [web.yaml]\n",
            "overlay/kustomization.yaml": OVERLAY,
            "overlay/sidecar.yaml": SIDECAR,
        },
    )
    uses = _uses(run_cli, tree, "--path", "overlay")
    assert (uses["shipper"]["file"], uses["shipper"]["line"]) == ("overlay/sidecar.yaml", 6)
    assert uses["shipper"]["declared"] == "fluent/fluent-bit:3.0"
    # `/containers/1` is `helper` in the base document: the inline patch's value line.
    assert uses["helper"]["image"] == "docker.io/library/busybox:1.37"
    assert (uses["helper"]["file"], uses["helper"]["line"]) == ("overlay/kustomization.yaml", 11)
    # Untouched by any patch: still the base.
    assert (uses["web"]["file"], uses["web"]["line"]) == ("base/web.yaml", 13)


PARENT = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  patches:
    - target:
        kind: Kustomization
      patch: |
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: not-used
        spec:
          images:
            - name: nginx
              newTag: 1.27.1
"""
CHILD = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: flux-system
spec:
  interval: 10m
  path: ./web
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def test_images_injected_by_a_parent_patch_point_at_the_parent(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = write(
        tmp_path / "fleet",
        {
            **bootstrap("prod"),
            "clusters/prod/apps.yaml": PARENT,
            "apps/web.yaml": CHILD,
            "web/deployment.yaml": BASE,
        },
    )
    uses = _uses(run_cli, fleet)
    web = uses["web"]
    assert web["image"] == "docker.io/library/nginx:1.27.1"
    assert web["kustomization"] == "flux-system/web"
    # The `- name: nginx` entry of the parent's patch (line 23 of clusters/prod/apps.yaml).
    assert (web["file"], web["line"]) == ("clusters/prod/apps.yaml", 23)
    assert web["declared"] == "nginx:1.25"
