"""Every pod-spec kind, container type and extra CRD path, on plain YAML (no kustomize)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.errors import UsageError
from kubegate.images.find import find_images, parse_image_path
from kubegate.render import render

_TEMPLATE = """  template:
    spec:
      containers:
        - name: main
          image: example.com/{name}:1
"""

MANIFESTS = {
    "pod.yaml": """apiVersion: v1
kind: Pod
metadata:
  name: pod
  namespace: ns
spec:
  initContainers:
    - name: init
      image: example.com/pod-init:1
  containers:
    - name: main
      image: example.com/pod:1
  ephemeralContainers:
    - name: debug
      image: example.com/pod-debug:1
""",
    "workloads.yaml": "---\n".join(
        f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {kind.lower()}\nspec:\n"
        + _TEMPLATE.format(name=kind.lower())
        for api, kind in [
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("apps/v1", "ReplicaSet"),
            ("v1", "ReplicationController"),
            ("batch/v1", "Job"),
            ("argoproj.io/v1alpha1", "Rollout"),
            ("serving.knative.dev/v1", "Service"),
        ]
    ),
    "cron.yaml": """apiVersion: batch/v1
kind: CronJob
metadata:
  name: cron
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: main
              image: example.com/cronjob:1
""",
    "list.yaml": """apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: PodTemplate
    metadata:
      name: podtemplate
    template:
      spec:
        containers:
          - name: main
            image: example.com/podtemplate:1
  - apiVersion: v1
    kind: Service
    metadata:
      name: core-service-has-no-pods
""",
    "crd.yaml": """apiVersion: example.com/v1
kind: App
metadata:
  name: app
spec:
  image: example.com/crd-image:1
  pod:
    containers:
      - name: side
        image: example.com/crd-pod:1
""",
    "notes.yml": "title: not a Kubernetes object\n",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, text in MANIFESTS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_every_pod_spec_kind(tree: Path) -> None:
    result = render(tree)
    assert result.problems == ()
    scan = find_images(result.objects)
    found = {str(u.ref) for u in scan.uses}
    expected = {
        f"example.com/{name}:1"
        for name in (
            "pod",
            "pod-init",
            "pod-debug",
            "deployment",
            "statefulset",
            "daemonset",
            "replicaset",
            "replicationcontroller",
            "job",
            "rollout",
            "service",
            "cronjob",
            "podtemplate",
        )
    }
    assert found == expected
    pod = {u.container: u for u in scan.uses if u.name == "pod"}
    assert pod["init"].container_type == "initContainers"
    assert pod["debug"].container_type == "ephemeralContainers"
    assert (pod["main"].origin.file, pod["main"].origin.line) == ("pod.yaml", 12)
    assert pod["main"].namespace == "ns"
    cron = next(u for u in scan.uses if u.kind == "CronJob")
    assert (cron.origin.file, cron.origin.line) == ("cron.yaml", 13)
    templ = next(u for u in scan.uses if u.kind == "PodTemplate")
    assert (templ.origin.file, templ.origin.line) == ("list.yaml", 12)


def test_extra_image_paths_for_crds(tree: Path) -> None:
    result = render(tree)
    extra = [parse_image_path("App=spec.image"), parse_image_path("App=spec.pod")]
    uses = {str(u.ref): u for u in find_images(result.objects, extra).uses if u.kind == "App"}
    assert set(uses) == {"example.com/crd-image:1", "example.com/crd-pod:1"}
    assert (
        uses["example.com/crd-image:1"].origin.line,
        uses["example.com/crd-pod:1"].container,
    ) == (
        6,
        "side",
    )


@pytest.mark.parametrize("text", ["App", "App=", "=spec.x", "App=spec..x"])
def test_bad_image_path(text: str) -> None:
    with pytest.raises(UsageError):
        parse_image_path(text)


def test_invalid_and_unsubstituted_references_are_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
        "    - name: a\n      image: Nginx:1\n"
        "    - name: b\n      image: nginx:${tag}\n"
        "    - name: c\n      image: nginx@sha256:1234\n"
        "    - name: d\n"
    )
    scan = find_images(render(tmp_path).objects)
    assert scan.uses == ()
    lines = sorted((p.origin.file, p.origin.line) for p in scan.problems)
    assert lines == [("bad.yaml", 8), ("bad.yaml", 10), ("bad.yaml", 12), ("bad.yaml", 13)]
    messages = " ".join(p.message for p in scan.problems)
    assert "unsubstituted variable" in messages
    assert "container d has no image" in messages
