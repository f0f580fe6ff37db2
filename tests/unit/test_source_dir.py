"""Local directory sources: what is copied, what is refused, where it lives, ``--path``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kubegate.errors import SourceError, UsageError
from kubegate.source import Checkout, SourceLimits, SourceSpec, open_source


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "deploy" / "dev").mkdir(parents=True)
    (src / ".git" / "objects").mkdir(parents=True)
    (src / ".git" / "config").write_text("[core]\n")
    (src / ".github").mkdir()
    (src / ".github" / "ci.yml").write_text("on: push\n")
    (src / "deploy" / "app.yaml").write_text("kind: Deployment\n")
    (src / "deploy" / "dev" / "patch.yaml").write_text("kind: Deployment\n")
    (src / "deploy" / "dev" / "secret.yaml").write_text("kind: Secret\n")
    (src / "deploy" / "dev" / ".sourceignore").write_text("secret.yaml\n")
    (src / ".sourceignore").write_text("*.bak\n")
    (src / "old.bak").write_text("x\n")
    (src / "logo.png").write_bytes(b"\x89PNG")
    (src / ".sops.yaml").write_text("creation_rules: []\n")
    return src


def test_dir_copy_keeps_only_what_flux_sees(tree: Path) -> None:
    with open_source(SourceSpec(location=str(tree))) as checkout:
        assert _files(checkout.root) == {
            ".sourceignore",
            "deploy/app.yaml",
            "deploy/dev/.sourceignore",
            "deploy/dev/patch.yaml",
        }
        assert checkout.info.kind == "dir"
        assert checkout.info.location == str(tree)
        assert checkout.info.revision is None
        assert (checkout.root / "deploy/app.yaml").read_text() == "kind: Deployment\n"
        # A private copy, not the user's tree.
        assert checkout.root != tree.resolve()
        assert stat.S_IMODE(checkout.root.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(checkout.root.stat().st_mode) == 0o700
        root = checkout.root
    assert not root.exists()
    assert not root.parent.exists()
    # The user's tree is untouched.
    assert (tree / ".git" / "config").exists()
    assert (tree / "old.bak").exists()


def test_dir_copy_is_removed_on_error_inside_the_context(tree: Path) -> None:
    seen: list[Path] = []
    with pytest.raises(RuntimeError), open_source(SourceSpec(location=str(tree))) as checkout:
        seen.append(checkout.root)
        raise RuntimeError("boom")
    assert not seen[0].exists()


def test_symlinks_are_dropped_as_source_controller_does(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # source-controller archives only regular files and directories: Flux never renders a
    # symlinked manifest, so kubegate must not either.
    (tree / "deploy" / "current.yaml").symlink_to("app.yaml")
    (tree / "deploy" / "dev" / "base").symlink_to("..")
    caplog.set_level("INFO", logger="kubegate.source.tree")
    with open_source(SourceSpec(location=str(tree))) as checkout:
        assert not (checkout.root / "deploy" / "current.yaml").exists()
        assert not (checkout.root / "deploy" / "dev" / "base").exists()
        assert (checkout.root / "deploy" / "app.yaml").read_text() == "kind: Deployment\n"
    assert "symlink deploy/current.yaml dropped" in caplog.text


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("deploy/escape.yaml", "../../outside.yaml"),
        ("deploy/abs.yaml", "/etc/passwd"),
        ("up", ".."),
    ],
)
def test_escaping_symlinks_are_dropped_with_a_warning_and_never_followed(
    tree: Path, name: str, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tree / name).symlink_to(target)
    with open_source(SourceSpec(location=str(tree))) as checkout:
        assert not (checkout.root / name).exists()
        assert not (checkout.root / name).is_symlink()
    assert f"symlink {name} -> {target} dropped (points outside the tree)" in caplog.text


def test_special_files_are_skipped(tree: Path) -> None:
    os.mkfifo(tree / "deploy" / "pipe")
    with open_source(SourceSpec(location=str(tree))) as checkout:
        assert not (checkout.root / "deploy" / "pipe").exists()
        assert (checkout.root / "deploy" / "app.yaml").is_file()


def test_entry_limit_applies_to_dirs(tree: Path) -> None:
    spec = SourceSpec(location=str(tree), limits=SourceLimits(max_entries=2))
    with pytest.raises(SourceError, match="more than 2 files"), open_source(spec):
        pass


def test_size_limit_applies_to_dirs(tree: Path) -> None:
    (tree / "deploy" / "big.yaml").write_bytes(b"#" * 5000)
    spec = SourceSpec(location=str(tree), limits=SourceLimits(max_extracted_bytes=4096))
    with pytest.raises(SourceError, match="4096 bytes"), open_source(spec):
        pass


def test_missing_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(SourceError) as info, open_source(SourceSpec(location=missing)):
        pass
    assert info.value.where == missing
    assert "no such directory" in info.value.message


def test_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("x")
    with (
        pytest.raises(SourceError, match="not a directory"),
        open_source(SourceSpec(location=str(tmp_path / "f.yaml"))),
    ):
        pass


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SourceSpec(artifact_url="http://127.0.0.1/a.tar.gz"), "together"),
        (SourceSpec(artifact_digest="sha256:" + "a" * 64), "together"),
        (SourceSpec(artifact_url="http://127.0.0.1/a.tar.gz", artifact_digest="md5:00"), "digest"),
        (
            SourceSpec(artifact_url="http://127.0.0.1/a", artifact_digest="sha256:" + "A" * 64),
            "digest",
        ),
        (SourceSpec(artifact_url="ftp://h/a", artifact_digest="sha256:" + "a" * 64), "http"),
        (
            SourceSpec(
                artifact_url="http://127.0.0.1/a", artifact_digest="sha256:" + "a" * 64, ref="main"
            ),
            "--ref",
        ),
        (
            SourceSpec(
                location="repo",
                artifact_url="http://127.0.0.1/a",
                artifact_digest="sha256:" + "a" * 64,
            ),
            "SOURCE",
        ),
        (SourceSpec(location="--upload-pack=touch"), "invalid source"),
        (SourceSpec(location="ftp://host/repo.git"), "unsupported"),
        (SourceSpec(location=".", ref="-x"), "invalid git ref"),
        (SourceSpec(location=".", ref="a..b"), "invalid git ref"),
    ],
)
def test_bad_options_are_usage_errors(spec: SourceSpec, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info, open_source(spec):
        pass
    assert info.value.exit_code == 3


def test_limits_are_frozen() -> None:
    limits = SourceLimits()
    with pytest.raises(AttributeError):
        limits.max_entries = 1  # type: ignore[misc]
    assert limits.max_artifact_bytes < limits.max_extracted_bytes


class TestResolvePath:
    @pytest.fixture
    def checkout(self, tree: Path) -> Checkout:
        with open_source(SourceSpec(location=str(tree))) as checkout:
            yield checkout  # type: ignore[misc]

    @pytest.mark.parametrize("rel", ["", ".", "./"])
    def test_root(self, checkout: Checkout, rel: str) -> None:
        assert checkout.resolve_path(rel) == checkout.root

    @pytest.mark.parametrize("rel", ["deploy", "./deploy", "deploy/dev/..", "deploy/"])
    def test_inside(self, checkout: Checkout, rel: str) -> None:
        assert checkout.resolve_path(rel) == checkout.root / "deploy"

    @pytest.mark.parametrize("rel", ["..", "../x", "deploy/../..", "/etc", "/"])
    def test_escaping_is_usage_error(self, checkout: Checkout, rel: str) -> None:
        with pytest.raises(UsageError) as info:
            checkout.resolve_path(rel)
        assert info.value.where == "--path"

    def test_missing_is_source_error(self, checkout: Checkout) -> None:
        with pytest.raises(SourceError, match="'deploy/prod' not found") as info:
            checkout.resolve_path("deploy/prod")
        assert info.value.exit_code == 2

    def test_ignored_path_is_missing(self, checkout: Checkout) -> None:
        with pytest.raises(SourceError, match="not found"):
            checkout.resolve_path(".github")
