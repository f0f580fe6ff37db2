"""Plain YAML and plain kustomize modes, and every bad input of ``kubegate images``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.fixtures.golden import Golden


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


POD = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: {name}
    spec:
      containers:
        - name: main
          image: {image}
"""


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kubegate: error:")
    assert "Traceback" not in stderr
    return lines[0]


def test_plain_directory(run_cli: RunCli, tmp_path: Path) -> None:
    src = _write(
        tmp_path / "src",
        {
            "a.yaml": textwrap.dedent(POD.format(name="a", image="nginx:1.0")).lstrip()
            + "---\n"
            + textwrap.dedent(POD.format(name="b", image="redis:7")).lstrip(),
            "nested/list.yml": """
                apiVersion: v1
                kind: List
                items:
                  - apiVersion: v1
                    kind: Pod
                    metadata: {name: c}
                    spec:
                      containers:
                        - name: main
                          image: quay.io/org/c:2
            """,
            "values.yaml": "replicaCount: 2\n",
            "release.yaml": """
                apiVersion: helm.toolkit.fluxcd.io/v2
                kind: HelmRelease
                metadata:
                  name: podinfo
                  namespace: apps
            """,
        },
    )
    result = run_cli("images", str(src), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    images = {i["image"]: i["uses"][0] for i in document["images"]}
    assert set(images) == {
        "docker.io/library/nginx:1.0",
        "docker.io/library/redis:7",
        "quay.io/org/c:2",
    }
    assert (
        images["docker.io/library/redis:7"]["file"],
        images["docker.io/library/redis:7"]["line"],
    ) == ("a.yaml", 17)
    assert images["quay.io/org/c:2"]["file"] == "nested/list.yml"
    assert images["quay.io/org/c:2"]["kustomization"] is None
    assert [(n["kind"], n["name"]) for n in document["notSeen"]] == [("HelmRelease", "podinfo")]
    # The non-Kubernetes file is skipped with a note, not an error.
    assert "values.yaml:1: skipped: not a Kubernetes object" in result.stderr


def test_invalid_yaml_names_file_and_line_and_other_files_still_count(
    run_cli: RunCli, tmp_path: Path
) -> None:
    src = _write(
        tmp_path / "src",
        {
            "good.yaml": POD.format(name="a", image="nginx:1.0"),
            "broken.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
            "bad-ref.yaml": POD.format(name="b", image="Nginx:1"),
        },
    )
    result = run_cli("images", str(src), "--format", "json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert [i["image"] for i in document["images"]] == ["docker.io/library/nginx:1.0"]
    errors = [(e["file"], e["line"]) for e in document["errors"]]
    assert errors == [("bad-ref.yaml", 8), ("broken.yaml", 5)]
    assert "invalid YAML" in document["errors"][1]["message"]
    assert len(result.stderr.strip().splitlines()) == 2


def test_kustomize_overlay_without_flux(run_cli: RunCli, tmp_path: Path, golden: Golden) -> None:
    _write(
        tmp_path / "src",
        {
            "base/kustomization.yaml": "resources: [pod.yaml]\n",
            "base/pod.yaml": POD.format(name="web", image="nginx:1.0"),
            "overlay/kustomization.yaml": """
                namespace: prod
                resources: [../base]
                images:
                  - name: nginx
                    newName: mirror.example.com/nginx
                    newTag: "1.2"
            """,
        },
    )
    result = run_cli("images", "src", "--path", "overlay", "--format", "json")
    assert result.returncode == 0, result.stderr
    golden("images-kustomize.json", result.stdout)
    (use,) = json.loads(result.stdout)["images"][0]["uses"]
    assert (use["file"], use["line"], use["declared"]) == (
        "overlay/kustomization.yaml",
        4,
        "nginx:1.0",
    )
    assert json.loads(result.stdout)["images"][0]["image"] == "mirror.example.com/nginx:1.2"
    table = run_cli("images", "src", "--path", "overlay")
    assert table.returncode == 0
    golden("images-kustomize.txt", table.stdout)


def test_kustomize_error_text_is_passed_through(run_cli: RunCli, tmp_path: Path) -> None:
    src = _write(tmp_path / "src", {"kustomization.yaml": "resources: [missing.yaml]\n"})
    result = run_cli("images", str(src), "--format", "json")
    assert result.returncode == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert "kustomize build failed" in error["message"]
    assert "missing.yaml" in error["message"]
    # Private build paths and kubectl's log prefix are not shown.
    assert "kubegate-render" not in error["message"]
    assert "command failed" not in error["message"]
    _one_error_line(result.stderr)


def test_without_kustomize_or_kubectl(run_cli: RunCli, tmp_path: Path) -> None:
    src = _write(tmp_path / "src", {"kustomization.yaml": "resources: []\n"})
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_cli("images", str(src), env={"PATH": str(empty)})
    assert result.returncode == 2
    assert "neither kustomize nor kubectl" in _one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--path", "../outside"), "inside the source"),
        (("--path", "/etc"), "relative"),
        (("--kustomization", "no-slash"), "NAMESPACE/NAME"),
        (("--image-path", "App"), "KIND=DOTTED.PATH"),
        (("--var", "novalue"), "KEY=VALUE"),
        (("--var-file", "/nonexistent/vars"), "cannot read"),
        (("--kustomization", "flux-system/apps"), "no Flux Kustomization"),
    ],
)
def test_bad_inputs_exit_3_with_one_line(
    run_cli: RunCli, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    src = _write(tmp_path / "src", {"pod.yaml": POD.format(name="a", image="nginx:1")})
    result = run_cli("images", str(src), *args)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert needle in _one_error_line(result.stderr)


def test_path_missing_from_the_revision_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    # The revision lacks the path (as Flux reports a Kustomization whose path is gone): exit 2.
    src = _write(tmp_path / "src", {"pod.yaml": POD.format(name="a", image="nginx:1")})
    result = run_cli("images", str(src), "--path", "absent")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "'absent' not found in the source" in _one_error_line(result.stderr)


def test_bad_var_file_line(run_cli: RunCli, tmp_path: Path) -> None:
    src = _write(tmp_path / "src", {"pod.yaml": POD.format(name="a", image="nginx:1")})
    varfile = tmp_path / "vars"
    varfile.write_text("# ok\nA=1\nnot a pair\n")
    result = run_cli("images", str(src), "--var-file", str(varfile))
    assert result.returncode == 3
    assert f"{varfile}:3" in _one_error_line(result.stderr)


def test_missing_source_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("images", str(tmp_path / "absent"))
    assert result.returncode == 2
    _one_error_line(result.stderr)


def test_image_path_for_a_crd(run_cli: RunCli, tmp_path: Path) -> None:
    src = _write(
        tmp_path / "src",
        {
            "app.yaml": """
                apiVersion: apps.example.com/v1
                kind: App
                metadata:
                  name: shop
                  namespace: web
                spec:
                  runtime:
                    image: ghcr.io/acme/shop:2.1
            """
        },
    )
    plain = run_cli("images", str(src), "--format", "json")
    assert json.loads(plain.stdout)["images"] == []
    result = run_cli("images", str(src), "--format", "json", "--image-path", "App=spec.runtime")
    assert result.returncode == 0, result.stderr
    (image,) = json.loads(result.stdout)["images"]
    assert image["image"] == "ghcr.io/acme/shop:2.1"
    (use,) = image["uses"]
    assert (use["file"], use["line"], use["containerType"]) == ("app.yaml", 8, "other")
