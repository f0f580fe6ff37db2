"""``kubegate images`` with bad sources: exit code and one line on stderr, never a traceback.

Only exit codes and stderr are asserted: what ``images`` prints on stdout belongs to its own
command module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.fixtures.gitserve import GitFixtureRepo, free_port
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.tarballs import Entry, digest_of, tar_gz

GOOD_DIGEST = "sha256:" + "ab" * 32


def _one_line_error(stderr: str, *needles: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kubegate: error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--artifact-url", "http://127.0.0.1:1/a.tar.gz"], ["--artifact-digest"]),
        (["--artifact-digest", GOOD_DIGEST], ["--artifact-url"]),
        (
            ["--artifact-url", "http://127.0.0.1:1/a.tar.gz", "--artifact-digest", "sha256:xyz"],
            ["--artifact-digest", "invalid digest"],
        ),
        (
            ["--artifact-url", "file:///etc/passwd", "--artifact-digest", GOOD_DIGEST],
            ["--artifact-url"],
        ),
        (["ftp://127.0.0.1/repo.git"], ["unsupported git URL scheme"]),
        ([".", "--ref", "a..b"], ["invalid git ref"]),
    ],
)
def test_usage_errors_exit_3(run_cli: RunCli, args: list[str], needles: list[str]) -> None:
    result = run_cli("images", *args)
    assert result.returncode == 3
    _one_line_error(result.stderr, *needles)


def test_missing_directory_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("images", str(tmp_path / "absent"))
    assert result.returncode == 2
    _one_line_error(result.stderr, "absent", "no such directory")


def test_escaping_symlink_is_dropped_and_never_read(run_cli: RunCli, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tree / "leak.yaml").symlink_to("/etc/passwd")
    result = run_cli("images", str(tree), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "root:" not in result.stdout + result.stderr
    assert "leak.yaml -> /etc/passwd dropped (points outside the tree)" in result.stderr


def test_bad_git_ref_exits_2(run_cli: RunCli, git_repo: GitFixtureRepo) -> None:
    result = run_cli("images", git_repo.file_url, "--ref", "no-such-branch")
    assert result.returncode == 2
    _one_line_error(result.stderr, git_repo.file_url, "'no-such-branch' not found")


def test_unreachable_git_server_exits_2(run_cli: RunCli) -> None:
    url = f"git://127.0.0.1:{free_port()}/demo.git"
    result = run_cli("images", url)
    assert result.returncode == 2
    _one_line_error(result.stderr, url, "cannot list remote refs")


def test_git_credentials_are_not_printed(run_cli: RunCli) -> None:
    result = run_cli("images", f"https://bob:s3cret@127.0.0.1:{free_port()}/demo.git")
    assert result.returncode == 2
    line = _one_line_error(result.stderr, "https://127.0.0.1:")
    assert "s3cret" not in line
    assert "bob" not in line


def test_artifact_404_exits_2(run_cli: RunCli, http_serve: HTTPServe) -> None:
    url = http_serve.url("missing.tar.gz")
    result = run_cli("images", "--artifact-url", url, "--artifact-digest", GOOD_DIGEST)
    assert result.returncode == 2
    _one_line_error(result.stderr, url, "HTTP 404")


def test_artifact_wrong_digest_exits_2(run_cli: RunCli, http_serve: HTTPServe) -> None:
    url = http_serve.add("a.tar.gz", tar_gz([Entry("a.yaml", b"kind: ConfigMap\n")]))
    result = run_cli("images", "--artifact-url", url, "--artifact-digest", GOOD_DIGEST)
    assert result.returncode == 2
    _one_line_error(result.stderr, "digest mismatch")


def test_artifact_traversal_exits_2(run_cli: RunCli, http_serve: HTTPServe) -> None:
    data = tar_gz([Entry("../../evil.yaml", b"x")])
    url = http_serve.add("evil.tar.gz", data)
    result = run_cli("images", "--artifact-url", url, "--artifact-digest", digest_of(data))
    assert result.returncode == 2
    _one_line_error(result.stderr, "'../../evil.yaml'", "'..'")


def test_good_sources_exit_0(
    run_cli: RunCli, http_serve: HTTPServe, git_repo: GitFixtureRepo
) -> None:
    data = tar_gz([Entry("a.yaml", b"kind: ConfigMap\n")])
    url = http_serve.add("ok.tar.gz", data)
    assert (
        run_cli("images", "--artifact-url", url, "--artifact-digest", digest_of(data)).returncode
        == 0
    )
    assert run_cli("images", git_repo.file_url, "--ref", "v1.0.0").returncode == 0
