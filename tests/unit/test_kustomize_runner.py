"""Which kustomize runs: a standalone ``kustomize`` on PATH first, else ``kubectl kustomize``."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from kubegate.errors import RenderError
from kubegate.render.kustomize import MAX_ERROR_CHARS, _build_env, _one_line, find_kustomize


def test_prefers_standalone_kustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "kustomize"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert find_kustomize().argv == (str(binary), "build")


def test_falls_back_to_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is part of the test machine (TESTBED.md)"
    monkeypatch.setenv("PATH", str(Path(kubectl).parent))
    if shutil.which("kustomize"):
        pytest.skip("a standalone kustomize sits beside kubectl")
    assert find_kustomize().argv == (kubectl, "kustomize")


def test_neither_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError, match="neither kustomize nor kubectl"):
        find_kustomize()


def test_build_error_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [nope.yaml]\n")
    with pytest.raises(RenderError) as info:
        find_kustomize().build(tmp_path, "here")
    assert "nope.yaml" in info.value.message
    assert "\n" not in info.value.message
    assert info.value.where == "here"


# klog's two shapes for kubectl's error (k8s.io/klog text format): a quoted Go string, and the
# multi-line `key=<` block used when the value holds newlines. The first sample is verbatim
# `kubectl kustomize` output on this machine; the block form follows klog's documentation.
QUOTED = (
    b'E1203 18:33:59.150469   24598 run.go:72] "command failed" err="accumulating resources: '
    b"accumulating resources from 'a.yaml': MalformedYAMLError: yaml: line 5: did not find "
    b"expected ',' or ']' in File: a.yaml\"\n"
)
BLOCK = (
    b'E1203 18:34:07.030066   24802 run.go:72] "command failed" err=<\n'
    b'\tfirst line of the error\n\tsecond line naming \\"x.yaml\\"\n >\n'
)


def test_klog_noise_is_stripped_into_one_line() -> None:
    assert _one_line(QUOTED) == (
        "accumulating resources: accumulating resources from 'a.yaml': MalformedYAMLError: "
        "yaml: line 5: did not find expected ',' or ']' in File: a.yaml"
    )
    one = _one_line(BLOCK)
    assert one == 'first line of the error second line naming \\"x.yaml\\"'
    assert "\n" not in one and "run.go" not in one
    # A warning before the error is noise: only the error is passed on.
    assert _one_line(b'W1203 1:2:3.4 1 warnings.go:70] "x" is deprecated\nError: boom\n') == "boom"


def test_build_error_leaves_out_the_quoted_plugin_config(tmp_path: Path) -> None:
    # kustomize quotes a builtin plugin's whole config in this error (kusttarget.go
    # configureBuiltinPlugin); only the error itself is passed on.
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n- path: missing.yaml\n  options: {allowNameChange: true}\n"
    )
    with pytest.raises(RenderError) as info:
        find_kustomize().build(tmp_path, "here")
    message = info.value.message
    assert "failed to get the patch file" in message
    assert "allowNameChange" not in message  # the quoted config is left out
    assert "\n" not in message and len(message) <= MAX_ERROR_CHARS + 40


def test_build_environment_holds_nothing_of_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEGATE_TEST_TOKEN", "canary-4411")
    monkeypatch.setenv("GITHUB_TOKEN", "canary-4412")
    env = _build_env()
    assert "canary-4411" not in env.values() and "canary-4412" not in env.values()
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "HOME", "KUBECONFIG"}


def test_a_passed_deadline_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    with pytest.raises(RenderError, match="not rendered before --timeout"):
        find_kustomize().build(tmp_path, "here", deadline=time.monotonic() - 1)


def test_parallel_builds_share_one_offline_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Builds run in threads: on a fresh cache every thread may write the private kubeconfig at
    # once. With one temporary name per process, one thread moved another's file away and the
    # build failed as "cannot run kubectl: No such file or directory".
    from concurrent.futures import ThreadPoolExecutor

    from kubegate.render.kustomize import _OFFLINE_KUBECONFIG, _offline_kubeconfig

    for attempt in range(20):
        monkeypatch.setenv("KUBEGATE_CACHE_DIR", str(tmp_path / f"cache{attempt}"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            paths = set(pool.map(lambda _: _offline_kubeconfig(), range(8)))
        (path,) = paths
        assert path.read_text(encoding="utf-8") == _OFFLINE_KUBECONFIG
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
