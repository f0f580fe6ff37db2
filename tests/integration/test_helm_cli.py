"""The helm options of ``scan``, ``images`` and ``watch`` as a user meets them: every bad value
is exit 3 with one line naming the option, before anything is rendered or fetched; policy-like
files (``--values-from``, ``helm.path``) inside the judged source are refused like
``--var-file``; what ``--kube-version`` accepts, the real helm accepts too (the oracle)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, RunCli, user_config
from tests.fixtures.gitserve import git

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n"
POD += "    - name: web\n      image: nginx:1.27\n"


def _helm() -> str:
    # scripts/bootstrap always installs it (never skipped: a missing helm fails the test).
    found = shutil.which("helm") or REPO / ".venv" / "bin" / "helm"
    assert Path(found).is_file(), "helm is missing: run ./scripts/bootstrap"
    return str(found)


def _source(tmp_path: Path) -> Path:
    """A committed one-Pod repository (watch needs git; scan and images read the directory)."""
    repo = tmp_path / "fleet"
    repo.mkdir()
    (repo / "pod.yaml").write_text(POD)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "one pod", cwd=repo)
    return repo


def _args(command: str, repo: Path) -> list[str]:
    if command == "watch":
        return ["watch", repo.as_uri(), "--ref", "main"]
    if command == "scan":
        return ["scan", str(repo), "--skip-db-update"]
    return ["images", str(repo)]


def _one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kubegate: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


BAD = [
    (["--values-from", "apps/ConfigMap/web"], "--values-from: expected NS/KIND/NAME=FILE"),
    (["--values-from", "apps/Pod/web={values}"], "--values-from: apps/Pod/web: KIND must be"),
    (["--values-from", "apps/Secret/web={missing}"], "web: {missing}: cannot read values file"),
    (["--values-from", "apps/Secret/web={notmap}"], "web: {notmap}: expected a mapping of"),
    (["--kube-version", "x.y"], "--kube-version: invalid Kubernetes version 'x.y'"),
    (["--kube-version", "1"], "--kube-version: invalid Kubernetes version '1'"),
    (["--api-versions", "v1,not a version"], "--api-versions: invalid API version"),
    (["--api-versions", ""], "--api-versions: invalid API version ''"),
]


@pytest.mark.parametrize("command", ["images", "scan", "watch"])
@pytest.mark.parametrize(("flags", "needle"), BAD)
def test_bad_helm_options_exit_3_with_one_line(
    run_cli: RunCli, tmp_path: Path, command: str, flags: list[str], needle: str
) -> None:
    repo = _source(tmp_path)
    files = tmp_path / "inputs"
    files.mkdir()
    (files / "notmap.yaml").write_text("just text\n")
    names = {"values": files / "v.yaml", "missing": files / "absent.yaml"}
    names["notmap"] = files / "notmap.yaml"
    named = {k: str(v) for k, v in names.items()}
    args = [flag.format(**named) for flag in flags]
    result = run_cli(*_args(command, repo), *args)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert needle.format(**named) in _one_error(result.stderr)


@pytest.mark.parametrize("command", ["images", "scan"])
@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("helm:\n  kubeVersion: x.y\n", "helm.kubeVersion: invalid Kubernetes version 'x.y'"),
        ("helm:\n  apiVersions: [v1, 'no']\n", "helm.apiVersions: invalid API version 'no'"),
        ("helm:\n  path: bin/helm\n", "helm.path: no such file"),
        ("helm:\n  chart: x\n", "unknown key helm.chart"),
    ],
)
def test_bad_helm_config_exits_3(
    run_cli: RunCli, tmp_path: Path, command: str, config: str, needle: str
) -> None:
    repo = _source(tmp_path)
    # The implicit user configuration is read by images too, as by scan.
    (user_config(tmp_path) / "kubegate.yaml").write_text(config)
    result = run_cli(*_args(command, repo))
    assert result.returncode == 3, result.stderr
    line = _one_error(result.stderr)
    assert needle in line
    assert "kubegate.yaml" in line


def test_values_from_and_helm_path_inside_the_judged_source_are_refused(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """A revision must not supply the values a HelmRelease renders with, nor the binary that
    renders it: both are policy inputs, checked like --var-file (docs/config.md)."""
    repo = _source(tmp_path)
    (repo / "values.yaml").write_text("values.yaml: 'a: 1'\n")
    (repo / "helm").write_text("#!/bin/sh\n")
    result = run_cli(
        "scan", str(repo), "--skip-db-update", "--values-from", f"a/Secret/b={repo}/values.yaml"
    )
    assert result.returncode == 3, result.stderr
    assert "--values-from: " in _one_error(result.stderr)
    assert "inside the judged source" in result.stderr
    config = tmp_path / "kubegate.yaml"
    config.write_text(f"helm:\n  path: {repo}/helm\n")
    result = run_cli("scan", str(repo), "--skip-db-update", "--config", str(config))
    assert result.returncode == 3, result.stderr
    line = _one_error(result.stderr)
    assert "helm.path: " in line and "inside the judged source" in line


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("1.35.0", True),
        ("v1.31", True),
        ("1.30.0-rc.1", True),
        ("v1.30.0+k3s1", True),
        ("x.y", False),
        ("1", False),
        ("01.2", False),
        ("V1.2", False),
    ],
)
def test_kube_versions_kubegate_accepts_helm_accepts(
    run_cli: RunCli, tmp_path: Path, value: str, accepted: bool
) -> None:
    """The oracle: ``helm template --kube-version`` of a chart from ``helm create``."""
    helm = _helm()
    subprocess.run([helm, "create", "chart"], cwd=tmp_path, check=True, capture_output=True)
    oracle = subprocess.run(
        [helm, "template", "chart", "--kube-version", value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (oracle.returncode == 0) == accepted, oracle.stderr
    repo = _source(tmp_path)
    result = run_cli("images", str(repo), "--kube-version", value)
    assert (result.returncode == 0) == accepted, result.stderr
    if not accepted:
        assert result.returncode == 3
        assert "--kube-version" in _one_error(result.stderr)
