"""Flux's ignore rules: source-controller's default exclusions and scoped ``.sourceignore``."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.errors import SourceError
from kubegate.source.ignore import DEFAULT_PATTERNS, IgnoreRules


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        "sub/.git/HEAD",
        ".gitignore",
        ".gitmodules",
        "a/.gitattributes",
        "logo.png",
        "img/photo.JPG".lower(),
        "dist/bundle.tar.gz",
        "x.zip",
        ".github/workflows/ci.yml",
        "apps/.github/x.yaml",
        ".circleci/config.yml",
        ".travis.yml",
        ".gitlab-ci.yml",
        "cloudbuild.yaml",
        ".goreleaser.yml",
        "deep/dir/.sops.yaml",
        "clusters/.flux.yaml",
    ],
)
def test_default_exclusions(path: str) -> None:
    assert IgnoreRules.defaults().ignored(path)


@pytest.mark.parametrize(
    "path", ["deploy/app.yaml", "kustomization.yaml", "github/x.yaml", "charts/a.tgz", "sops.yaml"]
)
def test_manifests_are_kept(path: str) -> None:
    assert not IgnoreRules.defaults().ignored(path)


def test_defaults_match_fluxcd_pkg_lists() -> None:
    # fluxcd/pkg sourceignore: 4 VCS + 8 extension + 9 CI + 3 extra patterns.
    assert len(DEFAULT_PATTERNS) == 24
    assert len(IgnoreRules.defaults()) == 24


def test_root_sourceignore_with_comments_and_negation(tmp_path: Path) -> None:
    (tmp_path / ".sourceignore").write_text("# comment\n\n*.bak\n/top.yaml\n!keep.png\n")
    rules = IgnoreRules.load(tmp_path)
    assert rules.ignored("notes.bak")
    assert rules.ignored("a/b/notes.bak")
    assert rules.ignored("top.yaml")
    assert not rules.ignored("sub/top.yaml")  # anchored to the root
    assert not rules.ignored("keep.png")  # re-included over the default *.png
    assert rules.ignored("other.png")
    assert not rules.ignored("# comment")


def test_sourceignore_in_subdirectory_is_scoped(tmp_path: Path) -> None:
    (tmp_path / "apps" / "dev").mkdir(parents=True)
    (tmp_path / "apps" / ".sourceignore").write_text("*.yaml\n!keep.yaml\n")
    (tmp_path / "apps" / "dev" / ".sourceignore").write_text("/only-here.txt\n")
    rules = IgnoreRules.load(tmp_path)
    assert rules.ignored("apps/a.yaml")
    assert rules.ignored("apps/dev/b.yaml")
    assert not rules.ignored("apps/keep.yaml")
    assert not rules.ignored("a.yaml")  # outside the domain of apps/.sourceignore
    assert not rules.ignored("appsx/a.yaml")
    assert rules.ignored("apps/dev/only-here.txt")
    assert not rules.ignored("apps/only-here.txt")


def test_sourceignore_inside_dot_git_is_not_read(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / ".sourceignore").write_text("*.yaml\n")
    assert not IgnoreRules.load(tmp_path).ignored("a.yaml")


def test_symlinked_sourceignore_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("*.yaml\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / ".sourceignore").symlink_to(outside)
    assert not IgnoreRules.load(tree).ignored("a.yaml")


def test_huge_sourceignore_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".sourceignore").write_bytes(b"#" * (1 << 20) + b"\n")
    with pytest.raises(SourceError, match="larger than"):
        IgnoreRules.load(tmp_path)
