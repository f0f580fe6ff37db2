"""YAML is read as kustomize reads it (kyaml on go-yaml v3), checked against the real kustomize.

A JSON 6902 patch makes kustomize turn the object into JSON and back, so its output states the
type it resolved every scalar to (``511``, ``"yes"``): kubegate's reading of the source file
must give the same values. ``matchType: =`` is how AlertmanagerConfig matchers are written
(prometheus-operator ``monitoring.coreos.com/v1alpha1``, common in kube-prometheus fleets);
a redefined anchor is seen in real fleets' values.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from kubegate.render import render
from kubegate.render.kustomize import find_kustomize
from kubegate.render.yamlfile import load_documents, load_stream

SOURCE = """
apiVersion: monitoring.coreos.com/v1alpha1
kind: AlertmanagerConfig
metadata:
  name: am
  namespace: monitoring
spec:
  route:
    matchers:
      - name: severity
        matchType: =
        value: critical
  values:
    yes_: yes
    on_: on
    off_: Off
    octal: 0777
    under: 1_000
    octal12: 0o17
    hex: 0x1F
    exp: 1e3
    nine: 09
    sexagesimal: 1:30
    bool: True
    nothing: ~
    version: 1.20
  first: &v one
  a1: *v
  second: &v two
  a2: *v
"""
KUSTOMIZATION = """
resources: [am.yaml]
patches:
  - target: {kind: AlertmanagerConfig}
    patch: |
      - op: add
        path: /metadata/labels
        value: {patched: "true"}
"""


def _kustomize(directory: Path) -> str:
    kustomize = find_kustomize()
    return subprocess.run(
        [*kustomize.argv, str(directory)], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_scalars_and_anchors_read_as_kustomize_reads_them(tmp_path: Path) -> None:
    (tmp_path / "am.yaml").write_text(textwrap.dedent(SOURCE).lstrip())
    (tmp_path / "kustomization.yaml").write_text(textwrap.dedent(KUSTOMIZATION).lstrip())
    (built,) = load_stream(_kustomize(tmp_path), "kustomize output")
    (doc,) = load_documents(tmp_path / "am.yaml", "am.yaml")
    ours = doc.value
    del built["metadata"]["labels"]
    assert ours == built
    # The values the issue names, spelled out (kustomize agreed with each above).
    values = ours["spec"]["values"]
    assert ours["spec"]["route"]["matchers"][0]["matchType"] == "="
    assert (values["yes_"], values["on_"], values["off_"]) == ("yes", "on", "Off")
    assert (values["octal"], values["under"], values["octal12"]) == (511, 1000, 15)
    assert values["sexagesimal"] == "1:30"
    assert (ours["spec"]["a1"], ours["spec"]["a2"]) == ("one", "two")


def test_a_generated_kustomization_keeps_such_files(tmp_path: Path) -> None:
    # Issue 12 point 2: a `matchType: =` file in a Flux path without a kustomization.yaml used
    # to fail the generated build and lose every image of that Kustomization.
    files = {
        "clusters/prod/monitoring.yaml": """
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: monitoring, namespace: flux-system}
            spec:
              interval: 10m
              path: ./monitoring
              sourceRef: {kind: GitRepository, name: flux-system}
            """,
        "monitoring/am.yaml": SOURCE,
        "monitoring/exporter.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: exporter, namespace: monitoring}
            spec:
              selector: {matchLabels: {app: exporter}}
              template:
                metadata: {labels: {app: exporter}}
                spec:
                  containers:
                    - name: exporter
                      image: quay.io/prometheus/node-exporter:v1.8.2
            """,
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    result = render(tmp_path)
    assert result.problems == ()
    kinds = {(o.kind, o.name) for o in result.objects}
    assert {("AlertmanagerConfig", "am"), ("Deployment", "exporter")} <= kinds
    am = next(o for o in result.objects if o.kind == "AlertmanagerConfig")
    assert am.value["spec"]["values"]["octal"] == 511
    assert am.value["spec"]["a2"] == "two"
