"""Which kustomize runs: a standalone ``kustomize`` on PATH first, else ``kubectl kustomize``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kubegate.errors import RenderError
from kubegate.render.kustomize import _one_line, find_kustomize


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
    assert _one_line(b'W1203 1:2:3.4 1 warnings.go:70] "x" is deprecated\nError: boom\n') == (
        '"x" is deprecated; boom'
    )
