"""Flux Kustomization spec fields applied as kustomize-controller does (real kustomize)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubegate.images.find import find_images
from kubegate.render import render


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


KS = """
apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
kind: Kustomization
metadata:
  name: team
  namespace: flux-system
spec:
  interval: 5m
  path: ./team
  sourceRef:
    kind: GitRepository
    name: fleet
  targetNamespace: team-a
  namePrefix: p-
  nameSuffix: -s
  components:
    - ../components/debug
  patches:
    - target:
        kind: Deployment
        name: web
      patch: |
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: not-used-target-wins
        spec:
          template:
            spec:
              containers:
                - name: proxy
                  image: envoyproxy/envoy:v1.29.1
  images:
    - name: nginx
      newTag: 1.27.0
    - name: redis
      digest: sha256:4f66ba5a2fb6b2ea8c2d0d6d7d61a1d35b1e0e1a8c6b2f7c3ba0fa0bd8f1e6f5
"""

TEAM = {
    "team/kustomization.yaml": """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - web.yaml
          - cache.yaml
        images:
          - name: nginx
            newTag: "1.26"
    """,
    "team/web.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          template:
            spec:
              containers:
                - name: nginx
                  image: nginx:1.25
    """,
    "team/cache.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: cache
        spec:
          template:
            spec:
              containers:
                - name: redis
                  image: redis:7.2
    """,
    "components/debug/kustomization.yaml": """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        patches:
          - path: debug.yaml
            target:
              kind: Deployment
              name: cache
    """,
    "components/debug/debug.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: cache
        spec:
          template:
            spec:
              containers:
                - name: debug
                  image: busybox:1.36
    """,
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _write(tmp_path, {"clusters/c/team.yaml": KS, **TEAM})
    return tmp_path


def test_spec_fields_are_overlaid_on_the_kustomization(repo: Path) -> None:
    result = render(repo)
    assert result.problems == ()
    names = {(o.kind, o.namespace, o.name) for o in result.objects}
    assert names == {
        ("Deployment", "team-a", "p-web-s"),
        ("Deployment", "team-a", "p-cache-s"),
    }
    uses = {(u.name, u.container): u for u in find_images(result.objects).uses}
    # images merged by name: Flux's nginx entry replaces the kustomization's own.
    nginx = uses[("p-web-s", "nginx")]
    assert str(nginx.ref) == "docker.io/library/nginx:1.27.0"
    assert (nginx.origin.file, nginx.origin.line) == ("clusters/c/team.yaml", 33)
    assert nginx.declared == "nginx:1.25"
    assert nginx.kustomization == "flux-system/team"
    # digest replaces the tag.
    redis = uses[("p-cache-s", "redis")]
    assert str(redis.ref).startswith("docker.io/library/redis@sha256:4f66")
    assert redis.ref.tag is None
    # An inline Flux patch (target selector) adds a container: its line inside the block.
    proxy = uses[("p-web-s", "proxy")]
    assert str(proxy.ref) == "docker.io/envoyproxy/envoy:v1.29.1"
    assert (proxy.origin.file, proxy.origin.line) == ("clusters/c/team.yaml", 31)
    # A component's patch adds a container to the cache only.
    debug = uses[("p-cache-s", "debug")]
    assert (debug.origin.file, debug.origin.line) == ("components/debug/debug.yaml", 10)
    assert ("p-web-s", "debug") not in uses
    # The user's tree is untouched (the kustomization was edited in a private copy).
    assert "namePrefix" not in (repo / "team" / "kustomization.yaml").read_text()


def test_generated_kustomization_lists_files_and_kustomize_subdirectories(tmp_path: Path) -> None:
    ks = KS.replace("path: ./team", "path: ./plain")
    ks = ks[: ks.index("  targetNamespace")]
    _write(
        tmp_path,
        {
            "clusters/c/team.yaml": ks,
            "plain/a/pod.yaml": """
                apiVersion: v1
                kind: Pod
                metadata:
                  name: a
                spec:
                  containers:
                    - name: a
                      image: example.com/a:1
            """,
            "plain/sub/kustomization.yaml": "resources: [pod.yaml]\nnamePrefix: sub-\n",
            "plain/sub/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n"
            "spec:\n  containers:\n    - name: b\n      image: example.com/b:1\n",
            # Not listed by the sub-directory's kustomization: never applied.
            "plain/sub/ignored.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: c\n",
        },
    )
    result = render(tmp_path)
    assert result.problems == ()
    assert sorted(o.name for o in result.objects) == ["a", "sub-b"]
    uses = {u.name: u for u in find_images(result.objects).uses}
    assert (uses["sub-b"].origin.file, uses["sub-b"].origin.line) == ("plain/sub/pod.yaml", 8)


def test_missing_spec_path_is_a_problem_naming_the_kustomization(tmp_path: Path) -> None:
    _write(tmp_path, {"clusters/c/team.yaml": KS.replace("./team", "./absent")})
    result = render(tmp_path)
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert "./absent" in problem.message and "does not exist" in problem.message
    assert problem.origin.file == "clusters/c/team.yaml"


def test_spec_path_cannot_leave_the_source(tmp_path: Path) -> None:
    _write(tmp_path, {"clusters/c/team.yaml": KS.replace("./team", "../../etc")})
    result = render(tmp_path)
    assert "leaves the source root" in result.problems[0].message


def test_a_kustomization_that_applies_itself_is_rendered_once(tmp_path: Path) -> None:
    ks = KS.replace("path: ./team", "path: ./clusters/c")
    ks = ks[: ks.index("  targetNamespace")]
    _write(tmp_path, {"clusters/c/team.yaml": ks})
    result = render(tmp_path)
    assert result.problems == ()
    assert [(o.kind, o.kustomization) for o in result.objects] == [
        ("Kustomization", "flux-system/team")
    ]


def test_v1beta1_patches_strategic_merge_and_json6902(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "c/ks.yaml": """
                apiVersion: kustomize.toolkit.fluxcd.io/v1beta1
                kind: Kustomization
                metadata:
                  name: legacy
                  namespace: flux-system
                spec:
                  path: ./app
                  sourceRef: {kind: GitRepository, name: x}
                  patchesStrategicMerge:
                    - apiVersion: apps/v1
                      kind: Deployment
                      metadata:
                        name: web
                      spec:
                        template:
                          spec:
                            containers:
                              - name: side
                                image: busybox:1.0
                  patchesJson6902:
                    - target: {group: apps, version: v1, kind: Deployment, name: web}
                      patch:
                        - op: replace
                          path: /spec/template/spec/containers/1/image
                          value: nginx:9.9
            """,
            "app/web.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: web
                spec:
                  template:
                    spec:
                      containers:
                        - name: nginx
                          image: nginx:1.0
            """,
        },
    )
    result = render(tmp_path)
    assert result.problems == ()
    uses = {u.container: u for u in find_images(result.objects).uses}
    assert str(uses["nginx"].ref) == "docker.io/library/nginx:9.9"
    side = uses["side"]
    assert str(side.ref) == "docker.io/library/busybox:1.0"
    assert (side.origin.file, side.origin.line) == ("c/ks.yaml", 19)
