"""Which kustomize runs: a standalone ``kustomize`` on PATH first, else ``kubectl kustomize``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kubegate.errors import RenderError
from kubegate.render.kustomize import find_kustomize


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
