"""Git sources against real repositories over ``file://`` and ``git daemon`` on 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kubegate.errors import SourceError
from kubegate.source import SourceLimits, SourceSpec, open_source
from tests.fixtures.gitserve import GitDaemon, GitFixtureRepo, app_yaml, free_port

#: Make git speak protocol v0, whose servers refuse unadvertised commits (as many hosts do).
PROTOCOL_V0 = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "protocol.version",
    "GIT_CONFIG_VALUE_0": "0",
}

FLUX_VISIBLE = {".sourceignore", "deploy/.sourceignore", "deploy/app.yaml"}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(params=["file", "daemon"])
def repo_url(request: pytest.FixtureRequest, git_repo: GitFixtureRepo) -> str:
    if request.param == "file":
        return git_repo.file_url
    daemon: GitDaemon = request.getfixturevalue("git_daemon")
    return daemon.url(git_repo.name)


def test_default_branch(repo_url: str, git_repo: GitFixtureRepo) -> None:
    with open_source(SourceSpec(location=repo_url)) as checkout:
        assert checkout.info.kind == "git"
        assert checkout.info.revision == f"main@sha1:{git_repo.commits['c3']}"
        assert (checkout.root / "deploy/app.yaml").read_text() == app_yaml("c3")
        # .git, .github, *.png and both .sourceignore files' patterns are honoured.
        assert _files(checkout.root) == FLUX_VISIBLE


@pytest.mark.parametrize(
    ("ref", "commit", "revision"),
    [
        ("main", "c3", "main@sha1:{}"),
        ("feature", "c4", "feature@sha1:{}"),
        ("refs/heads/feature", "c4", "feature@sha1:{}"),
        ("v1.0.0", "c2", "v1.0.0@sha1:{}"),
        ("c3", "c3", "sha1:{}"),  # an advertised commit (tip of main), by full SHA
        ("c1", "c1", "sha1:{}"),  # unadvertised: no ref points at it
    ],
)
def test_refs(
    repo_url: str, git_repo: GitFixtureRepo, ref: str, commit: str, revision: str
) -> None:
    sha = git_repo.commits[commit]
    ref = git_repo.commits.get(ref, ref)
    with open_source(SourceSpec(location=repo_url, ref=ref)) as checkout:
        assert checkout.info.revision == revision.format(sha)
        assert (checkout.root / "deploy/app.yaml").read_text() == app_yaml(commit)
        assert _files(checkout.root) == FLUX_VISIBLE


def test_unadvertised_commit_falls_back_to_full_fetch(
    repo_url: str,
    git_repo: GitFixtureRepo,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key, value in PROTOCOL_V0.items():
        monkeypatch.setenv(key, value)
    sha = git_repo.commits["c1"]
    with (
        caplog.at_level("INFO", logger="kubegate.source"),
        open_source(SourceSpec(location=repo_url, ref=sha)) as checkout,
    ):
        assert checkout.info.revision == f"sha1:{sha}"
        assert (checkout.root / "deploy/app.yaml").read_text() == app_yaml("c1")
    assert any("fetching all refs" in r.getMessage() for r in caplog.records)


def test_abbreviated_sha(git_repo: GitFixtureRepo) -> None:
    sha = git_repo.commits["c4"]
    with open_source(SourceSpec(location=git_repo.file_url, ref=sha[:10])) as checkout:
        assert checkout.info.revision == f"sha1:{sha}"
        assert (checkout.root / "deploy/app.yaml").read_text() == app_yaml("c4")


def test_local_path_with_ref_is_a_git_source(git_repo: GitFixtureRepo) -> None:
    with open_source(SourceSpec(location=str(git_repo.path), ref="v1.0.0")) as checkout:
        assert checkout.info.kind == "git"
        assert checkout.info.location == str(git_repo.path)
        assert checkout.info.revision == f"v1.0.0@sha1:{git_repo.commits['c2']}"
        assert not (checkout.root / ".git").exists()


@pytest.mark.parametrize("ref", ["no-such-branch", "deadbeef", "0" * 40])
def test_bad_ref(repo_url: str, ref: str) -> None:
    with pytest.raises(SourceError) as info, open_source(SourceSpec(location=repo_url, ref=ref)):
        pass
    assert info.value.exit_code == 2
    assert "not found" in info.value.message
    assert ref in info.value.message
    assert info.value.where == repo_url


def _closed_port() -> int:
    port = free_port()
    with socket.socket() as sock:  # nothing listens there: connection refused at once
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return port


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_unreachable_server(scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{_closed_port()}/demo.git"
    with pytest.raises(SourceError) as info, open_source(SourceSpec(location=url, ref="main")):
        pass
    assert info.value.exit_code == 2
    assert info.value.where == url
    assert "cannot list remote refs" in info.value.message
    assert "\n" not in info.value.diagnostics()


def test_credentials_never_reach_the_message() -> None:
    url = f"http://alice:hunter2@127.0.0.1:{_closed_port()}/demo.git"
    with pytest.raises(SourceError) as info, open_source(SourceSpec(location=url)):
        pass
    text = info.value.diagnostics()
    assert "hunter2" not in text
    assert "alice" not in text
    assert "http://127.0.0.1:" in text


def test_missing_repository(tmp_path: Path) -> None:
    url = (tmp_path / "absent.git").as_uri()
    with (
        pytest.raises(SourceError, match="cannot list remote refs"),
        open_source(SourceSpec(location=url)),
    ):
        pass


def test_hooks_do_not_run(git_repo: GitFixtureRepo, tmp_path: Path) -> None:
    # A post-checkout hook in the user's template dir must not run in our private clone.
    template = tmp_path / "template"
    (template / "hooks").mkdir(parents=True)
    marker = tmp_path / "hook-ran"
    hook = template / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_TEMPLATE_DIR", str(template))
        with open_source(SourceSpec(location=git_repo.file_url, ref="main")) as checkout:
            assert (checkout.root / "deploy/app.yaml").exists()
    assert not marker.exists()


def test_git_dir_of_a_hook_does_not_leak(
    git_repo: GitFixtureRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when kubegate runs from a pre-commit hook: GIT_DIR names the user's repository.
    user_repo = tmp_path / "user.git"
    user_repo.mkdir()
    monkeypatch.setenv("GIT_DIR", str(user_repo))
    monkeypatch.setenv("GIT_WORK_TREE", str(tmp_path))
    with open_source(SourceSpec(location=git_repo.file_url, ref="feature")) as checkout:
        assert (checkout.root / "deploy/app.yaml").read_text() == app_yaml("c4")
    assert list(user_repo.iterdir()) == []


def test_silent_server_times_out() -> None:
    # The kernel accepts the connection, nobody ever answers: git-remote-http waits forever
    # unless the whole process group is killed at the deadline.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/demo.git"
        spec = SourceSpec(location=url, limits=SourceLimits(git_timeout=1.0))
        with pytest.raises(SourceError) as info, open_source(spec):
            pass
    assert info.value.message == "cannot list remote refs: git timed out after 1s"
