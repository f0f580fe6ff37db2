"""Flux artifact sources downloaded from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.errors import SourceError
from kubegate.source import SourceLimits, SourceSpec, open_source
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.tarballs import Entry, digest_of, flux_like_artifact, gzip_of, tar_gz

SHA = "0123456789abcdef0123456789abcdef01234567"
PATH = f"gitrepository/flux-system/app/{SHA}.tar.gz"


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    }


def _spec(url: str, digest: str, limits: SourceLimits | None = None) -> SourceSpec:
    return SourceSpec(artifact_url=url, artifact_digest=digest, limits=limits or SourceLimits())


def _fails(spec: SourceSpec) -> SourceError:
    with pytest.raises(SourceError) as info, open_source(spec):
        pass
    assert info.value.exit_code == 2
    assert "\n" not in info.value.diagnostics()
    return info.value


def test_good_artifact(http_serve: HTTPServe) -> None:
    data = flux_like_artifact()
    url = http_serve.add(PATH, data)
    digest = digest_of(data)
    with open_source(_spec(url, digest)) as checkout:
        assert checkout.info.kind == "artifact"
        assert checkout.info.location == url
        assert checkout.info.revision == f"sha1:{SHA}@{digest}"
        # drafts/ (its .sourceignore), logo.png (default exclusion) and the in-tree symlink
        # deploy/current.yaml (Flux renders no symlink) are gone.
        assert _files(checkout.root) == {
            ".sourceignore",
            "deploy/app.yaml",
            "deploy/kustomization.yaml",
        }
        assert checkout.resolve_path("./deploy") == checkout.root / "deploy"
        root = checkout.root
    assert not root.parent.exists()
    assert http_serve.requests["/" + PATH] == 1


def test_wrong_digest_is_checked_before_opening(http_serve: HTTPServe) -> None:
    # Not even a tarball: a mismatch must be reported as such, not as a format error.
    url = http_serve.add("a.tar.gz", b"garbage")
    wrong = "sha256:" + "0" * 64
    error = _fails(_spec(url, wrong))
    assert f"digest mismatch: expected {wrong}, got {digest_of(b'garbage')}" == error.message
    assert error.where == url


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (Entry("../escape.yaml", b"x"), "../escape.yaml"),
        (Entry("/abs.yaml", b"x"), "/abs.yaml"),
        (Entry("deploy/out", kind="symlink", link="../../../etc/passwd"), "deploy/out"),
        (Entry("deploy/hard", kind="hardlink", link="../../etc/passwd"), "deploy/hard"),
    ],
)
def test_hostile_artifact(http_serve: HTTPServe, entry: Entry, named: str) -> None:
    data = tar_gz([Entry("deploy/app.yaml", b"kind: Deployment\n"), entry])
    url = http_serve.add("evil.tar.gz", data)
    error = _fails(_spec(url, digest_of(data)))
    assert repr(named) in error.message
    assert error.where == url


def test_too_large_by_content_length(http_serve: HTTPServe) -> None:
    data = flux_like_artifact()
    url = http_serve.add("big.tar.gz", data)
    error = _fails(_spec(url, digest_of(data), SourceLimits(max_artifact_bytes=100)))
    assert "exceeds the limit of 100 bytes" in error.message


def test_too_large_while_streaming(http_serve: HTTPServe) -> None:
    # No Content-Length (HTTP/1.0, body until close): the running count must stop it.
    data = flux_like_artifact()
    url = http_serve.add("big.tar.gz", data, headers={"Content-Length": None})
    error = _fails(_spec(url, digest_of(data), SourceLimits(max_artifact_bytes=100)))
    assert "exceeds the limit of 100 bytes" in error.message


def test_too_many_entries(http_serve: HTTPServe) -> None:
    data = tar_gz([Entry(f"m/{i}.yaml", b"kind: ConfigMap\n") for i in range(50)])
    url = http_serve.add("many.tar.gz", data)
    error = _fails(_spec(url, digest_of(data), SourceLimits(max_entries=20)))
    assert "more than 20 entries" in error.message


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
def test_http_errors(http_serve: HTTPServe, status: int, reason: str) -> None:
    url = http_serve.add("gone.tar.gz", b"nope", status=status)
    error = _fails(_spec(url, digest_of(b"nope")))
    assert error.message == f"download failed: HTTP {status} {reason}"


def test_not_a_gzip(http_serve: HTTPServe) -> None:
    data = b"<html>login page</html>"
    url = http_serve.add("page.tar.gz", data)
    error = _fails(_spec(url, digest_of(data)))
    assert "not a valid tar.gz" in error.message


def test_gzip_but_not_tar(http_serve: HTTPServe) -> None:
    data = gzip_of(b"just text\n" * 200)
    url = http_serve.add("text.tar.gz", data)
    assert "not a valid tar.gz" in _fails(_spec(url, digest_of(data))).message


def test_connection_refused(http_serve: HTTPServe) -> None:
    port = http_serve.port
    http_serve.stop()
    url = f"http://127.0.0.1:{port}/a.tar.gz"
    error = _fails(_spec(url, "sha256:" + "a" * 64))
    assert error.message.startswith("download failed: ConnectError")


def test_credentials_in_url_are_not_printed(http_serve: HTTPServe) -> None:
    url = http_serve.add("gone.tar.gz", b"", status=404).replace("http://", "http://u:pw@")
    error = _fails(_spec(url + "?token=secret", "sha256:" + "a" * 64))
    assert "pw" not in error.diagnostics()
    assert "secret" not in error.diagnostics()


def test_serve_dir(http_serve: HTTPServe, tmp_path: Path) -> None:
    data = flux_like_artifact()
    (tmp_path / "x.tar.gz").write_bytes(data)
    http_serve.serve_dir(tmp_path)
    with open_source(_spec(http_serve.url("x.tar.gz"), digest_of(data))) as checkout:
        assert checkout.info.revision == digest_of(data)
        assert (checkout.root / "deploy/app.yaml").is_file()
    assert http_serve.requests["/x.tar.gz"] == 1


def test_download_deadline(http_serve: HTTPServe) -> None:
    data = flux_like_artifact()
    url = http_serve.add(PATH, data)
    error = _fails(_spec(url, digest_of(data), SourceLimits(download_deadline=0.0)))
    assert error.message == "download took longer than 0s"


def test_add_many_and_request_counts(http_serve: HTTPServe) -> None:
    one, two = flux_like_artifact(), tar_gz([Entry("b.yaml", b"kind: ConfigMap\n")])
    http_serve.add_many({"one.tar.gz": one, "two.tar.gz": two})
    for _ in range(2):
        with open_source(_spec(http_serve.url("two.tar.gz"), digest_of(two))) as checkout:
            assert (checkout.root / "b.yaml").is_file()
    assert http_serve.requests["/two.tar.gz"] == 2  # no cache: every run downloads again
    assert http_serve.requests["/one.tar.gz"] == 0
