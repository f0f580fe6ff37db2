"""deploy/ (the kustomize base of ``kubegate watch``) and action.yml, checked with the real
kustomize and kubegate's own parsers: what they run must be a valid kubegate command line and
configuration, and the Deployment must keep its hardening.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubegate.cli import build_parser
from kubegate.config import load_config
from kubegate.publish import parse_target
from tests.conftest import REPO


def _render() -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy")],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


def test_the_base_renders_hardened_and_without_rbac(tmp_path: Path) -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in _render()}
    assert not [
        k for k, _ in objects if k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    ]
    account = objects[("ServiceAccount", "kubegate")]
    assert account["automountServiceAccountToken"] is False
    deployment = objects[("Deployment", "kubegate")]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kubegate" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KUBEGATE_CACHE_DIR"] in mounts and env["DOCKER_CONFIG"] in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["docker-config"]["secret"]["secretName"] == "kubegate-registry"
    assert "emptyDir" in volumes["cache"]
    # The container runs a command line kubegate accepts, with the mounted config.
    args = build_parser().parse_args(container["args"])
    assert args.command == "watch" and args.listen == "0.0.0.0:8080"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config_map = objects[("ConfigMap", "kubegate-config")]
    config_file = tmp_path / "kubegate.yaml"
    config_file.write_text(config_map["data"]["kubegate.yaml"])
    config = load_config(config_file)
    assert config.publish.url is not None and parse_target(config.publish.url).tag == "approved"
    assert Path(args.config).name == "kubegate.yaml"
    service = objects[("Service", "kubegate-metrics")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    policy = objects[("NetworkPolicy", "kubegate")]
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_the_action_runs_a_valid_scan_command() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    (gate,) = [s for s in action["runs"]["steps"] if s.get("id") == "scan"]
    line = next(ln for ln in gate["run"].splitlines() if ln.strip().startswith("args=("))
    words = shlex.split(line.strip()[len("args=(") : -1])
    env = {"$KG_SOURCE": ".", "$KG_CONFIG": "policy.yaml", "$KG_SARIF": "out.sarif"}
    argv = [env.get(w, w) for w in words] + ["--publish", "oci://ghcr.io/o/fleet", "--publish-pin"]
    args = build_parser().parse_args(argv)
    assert args.command == "scan" and args.format == ["sarif", "table"]
    assert args.output == [Path("out.sarif")]
    assert {"config", "publish", "publish-pin", "sarif"} <= set(action["inputs"])
