"""The helm runner's bounds and isolation, with stand-in executables for hostile behaviour.

The real helm (tests/integration/test_helm_render.py) never floods its output or hangs, so the
bounds are exercised with small shell scripts standing in for it: one that writes forever,
one that sleeps, one that reports an old version, one that prints its environment.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubegate.errors import RenderError
from kubegate.render.helm import runner
from kubegate.render.helm.runner import find_helm, first_error


def _fake(tmp_path: Path, template: str, version: str = "v4.1.4+g05fa379") -> str:
    script = tmp_path / "helm"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = version ]; then echo "{version}"; exit 0; fi\n{template}\n'
    )
    script.chmod(0o755)
    return str(script)


def test_old_helm_is_refused_once(tmp_path: Path) -> None:
    path = _fake(tmp_path, "exit 0", version="v3.13.3+gabc")
    with pytest.raises(RenderError, match=r"is helm 3\.13\.3; HelmReleases need helm >= 3\.14"):
        find_helm(path)


def test_missing_helm(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="helm is not found"):
        find_helm(str(tmp_path / "none"))


def test_endless_output_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "MAX_OUTPUT_BYTES", 1024 * 1024)
    helm = find_helm(_fake(tmp_path, "exec yes kubegate"))
    started = time.monotonic()
    with pytest.raises(RenderError, match="helm output larger than 1048576 bytes"):
        helm.template(["r", "chart"], home=tmp_path / "home", where="x.yaml:1")
    assert time.monotonic() - started < 30


def test_deadline_stops_a_hanging_helm(tmp_path: Path) -> None:
    helm = find_helm(_fake(tmp_path, "exec sleep 60"))
    started = time.monotonic()
    with pytest.raises(RenderError, match="not rendered before --timeout"):
        helm.template(
            ["r", "chart"],
            home=tmp_path / "home",
            where="x.yaml:1",
            deadline=time.monotonic() + 0.5,
        )
    assert time.monotonic() - started < 30


def test_environment_is_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_TOKEN", "secret-value")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "real-kubeconfig"))
    monkeypatch.setenv("HELM_REPOSITORY_CONFIG", str(tmp_path / "repos.yaml"))
    helm = find_helm(_fake(tmp_path, 'env; echo "ARGS $*"'))
    out = helm.template(["r", "chart", "--namespace", "x y"], home=tmp_path / "home", where=None)
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert "CI_TOKEN" not in env and "HELM_REPOSITORY_CONFIG" not in env
    assert env["KUBECONFIG"] == str(tmp_path / "home" / "no-kubeconfig")
    assert not Path(env["KUBECONFIG"]).exists()
    for name in ("CACHE", "CONFIG", "DATA"):
        assert env[f"HELM_{name}_HOME"].startswith(str(tmp_path / "home"))
    # One argument each, no shell: the space stays inside its argument.
    assert "ARGS template r chart --namespace x y --skip-schema-validation" in out


def test_failure_is_one_line(tmp_path: Path) -> None:
    helm = find_helm(
        _fake(tmp_path, "printf 'Error: template: app/x.yaml:3: bad\\033[31m\\n' >&2; exit 1")
    )
    with pytest.raises(RenderError) as caught:
        helm.template(["r", "chart"], home=tmp_path / "home", where="x.yaml:1")
    assert caught.value.message.startswith("helm template failed: template: app/x.yaml:3: bad")
    assert "\x1b" not in caught.value.message
    assert first_error(b"") == "no error text"
