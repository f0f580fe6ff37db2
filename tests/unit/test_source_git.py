"""Pure parts of the git source: ref validation and git's messages turned into one safe line."""

from __future__ import annotations

import pytest

from kubegate.errors import UsageError
from kubegate.source.git import _git_message, check_ref


@pytest.mark.parametrize(
    "ref", ["main", "release/1.2", "v1.2.3", "refs/pull/1/head", "0123abcd", "a" * 40]
)
def test_good_refs(ref: str) -> None:
    check_ref(ref)


@pytest.mark.parametrize(
    "ref", ["", "-b", "--upload-pack=touch", "a..b", "main~1", "HEAD^", "a b", "x:y", "a\nb", "*"]
)
def test_bad_refs_are_usage_errors(ref: str) -> None:
    with pytest.raises(UsageError) as info:
        check_ref(ref)
    assert info.value.exit_code == 3
    assert info.value.where == "--ref"


def test_git_message_is_one_line_without_advice_or_credentials() -> None:
    stderr = (
        "ssh: connect to host 127.0.0.1 port 22: Connection refused\r\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    assert _git_message(stderr) == "ssh: connect to host 127.0.0.1 port 22: Connection refused"
    stderr = "fatal: unable to access 'https://u:tok3n@127.0.0.1:9/r.git/': Failed to connect\n"
    message = _git_message(stderr)
    assert "tok3n" not in message
    assert message == "unable to access 'https://127.0.0.1:9/r.git/': Failed to connect"
    assert _git_message("fatal: unable to connect to h:\nh[0: h]: errno=refused\n") == (
        "unable to connect to h: h[0: h]: errno=refused"
    )
    assert _git_message("") == "git failed"
    assert len(_git_message("fatal: " + "x" * 5000)) == 300
