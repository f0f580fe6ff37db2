"""Private build trees: they mirror the source and never write into it."""

from __future__ import annotations

from pathlib import Path

from kubegate.render.workspace import replace_file, workspace


def test_farm_mirrors_the_source_and_edits_stay_private(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "apps" / "web").mkdir(parents=True)
    (source / "apps" / "base").mkdir()
    (source / "apps" / "web" / "kustomization.yaml").write_text("resources: [../base]\n")
    (source / "apps" / "base" / "pod.yaml").write_text("kind: Pod\n")
    (source / "README.md").write_text("hello\n")
    with workspace(source) as ws:
        farm = ws.farm("apps/web")
        edited = farm / "apps" / "web" / "kustomization.yaml"
        assert edited.read_text() == "resources: [../base]\n"
        assert (farm / "apps" / "web" / ".." / "base" / "pod.yaml").read_text() == "kind: Pod\n"
        assert (farm / "README.md").read_text() == "hello\n"
        # Directories along the built path are real, so the kustomization there can be replaced.
        assert not (farm / "apps").is_symlink()
        assert not (farm / "apps" / "web").is_symlink()
        replace_file(edited, "namespace: x\n")
        assert edited.read_text() == "namespace: x\n"
        base = ws.base
    assert (source / "apps" / "web" / "kustomization.yaml").read_text() == "resources: [../base]\n"
    assert not base.exists()


def test_farm_of_the_root(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.yaml").write_text("x: 1\n")
    with workspace(source) as ws:
        farm = ws.farm("")
        assert (farm / "a.yaml").is_symlink()
        replace_file(farm / "kustomization.yaml", "resources: [a.yaml]\n")
    assert sorted(p.name for p in source.iterdir()) == ["a.yaml"]
