"""Source locations: URL classification and credential redaction."""

from __future__ import annotations

import pytest

from kubegate.errors import UsageError
from kubegate.source.location import (
    check_git_url,
    is_scp_like,
    is_url,
    redact_url,
    url_without_credentials,
)


def test_redact_url_strips_userinfo_everywhere() -> None:
    text = "fatal: unable to access 'https://bob:s3cret@git.example.test/repo.git/': refused"
    out = redact_url(text)
    assert "s3cret" not in out
    assert "bob" not in out
    assert "https://git.example.test/repo.git/" in out


def test_url_without_credentials_drops_query_and_userinfo() -> None:
    url = "https://u:p@127.0.0.1:8443/gitrepository/ns/name/abc.tar.gz?token=t#frag"
    assert url_without_credentials(url) == "https://127.0.0.1:8443/gitrepository/ns/name/abc.tar.gz"
    assert url_without_credentials("http://[::1]:80/x") == "http://[::1]:80/x"


@pytest.mark.parametrize(
    ("location", "url", "scp"),
    [
        ("https://host/repo.git", True, False),
        ("file:///tmp/repo", True, False),
        ("ssh://git@host:22/repo", True, False),
        ("git@host:org/repo.git", False, True),
        ("host:repo", False, True),
        ("./deploy", False, False),
        ("deploy/apps", False, False),
        ("ext::sh -c touch% /tmp/pwned", False, False),
    ],
)
def test_classification(location: str, url: bool, scp: bool) -> None:
    assert is_url(location) is url
    assert is_scp_like(location) is scp


@pytest.mark.parametrize("url", ["ftp://host/repo", "fd::3", "ext::sh://x", "data://x"])
def test_unsupported_git_schemes_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as info:
        check_git_url(url)
    assert info.value.exit_code == 3


def test_supported_git_scheme_is_returned() -> None:
    assert check_git_url("HTTPS://host/x") == "https"
