"""Safe extraction of Flux artifacts: every hostile entry rejects the whole tarball."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from kubegate.errors import SourceError
from kubegate.source.artifact import artifact_revision, extract
from kubegate.source.limits import SourceLimits
from tests.fixtures.tarballs import Entry, flux_like_artifact, gzip_of, tar_gz

LABEL = "http://127.0.0.1/a.tar.gz"


def _extract(tmp_path: Path, data: bytes, limits: SourceLimits | None = None) -> Path:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    extract(archive, dest, limits=limits or SourceLimits(), label=LABEL)
    return dest


def _reject(tmp_path: Path, data: bytes, limits: SourceLimits | None = None) -> SourceError:
    with pytest.raises(SourceError) as info:
        _extract(tmp_path, data, limits)
    assert info.value.where == LABEL
    assert info.value.exit_code == 2
    # Nothing was written outside the destination.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "out"]
    return info.value


def test_good_artifact(tmp_path: Path) -> None:
    dest = _extract(tmp_path, flux_like_artifact())
    assert (dest / "deploy/app.yaml").read_bytes() == b"kind: Deployment\n"
    assert os.readlink(dest / "deploy/current.yaml") == "app.yaml"
    assert (dest / "deploy/current.yaml").read_bytes() == b"kind: Deployment\n"


def test_hardlink_inside_is_copied(tmp_path: Path) -> None:
    data = tar_gz([Entry("a.yaml", b"a"), Entry("b.yaml", kind="hardlink", link="a.yaml")])
    dest = _extract(tmp_path, data)
    assert (dest / "b.yaml").read_bytes() == b"a"
    assert (dest / "b.yaml").stat().st_nlink == 1


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (Entry("../evil.yaml", b"x"), "../evil.yaml"),
        (Entry("deploy/../../evil.yaml", b"x"), "deploy/../../evil.yaml"),
        (Entry("/etc/evil.yaml", b"x"), "/etc/evil.yaml"),
        (Entry("/abs", kind="dir"), "/abs"),
        (Entry("link", kind="symlink", link="/etc/passwd"), "link"),
        (Entry("deploy/link", kind="symlink", link="../../etc/passwd"), "deploy/link"),
        (Entry("link", kind="symlink", link=".."), "link"),
        (Entry("hl", kind="hardlink", link="../outside"), "hl"),
        (Entry("hl", kind="hardlink", link="/etc/passwd"), "hl"),
        (Entry("hl", kind="hardlink", link="missing.yaml"), "hl"),
        (Entry("pipe", kind="fifo"), "pipe"),
        (Entry("dev/null", kind="chr"), "dev/null"),
    ],
)
def test_hostile_entry_rejects_artifact(tmp_path: Path, entry: Entry, named: str) -> None:
    data = tar_gz([Entry("ok.yaml", b"ok"), entry, Entry("later.yaml", b"later")])
    error = _reject(tmp_path, data)
    assert repr(named) in error.message


def test_symlink_chain_escape_is_rejected(tmp_path: Path) -> None:
    # Each target is lexically inside the tree, but sub/up -> .. makes sub/e -> up/../.. leave it.
    data = tar_gz(
        [
            Entry("sub", kind="dir"),
            Entry("sub/up", kind="symlink", link=".."),
            Entry("sub/e", kind="symlink", link="up/../.."),
            Entry("sub/e/evil", kind="symlink", link="x"),
        ]
    )
    error = _reject(tmp_path, data)
    assert "sub/e" in error.message


def test_link_through_a_link_is_rejected(tmp_path: Path) -> None:
    data = tar_gz(
        [
            Entry("real", kind="dir"),
            Entry("alias", kind="symlink", link="real"),
            Entry("alias/x", kind="symlink", link="y"),
        ]
    )
    error = _reject(tmp_path, data)
    assert "alias/x" in error.message


def test_hardlink_to_a_symlink_is_rejected(tmp_path: Path) -> None:
    data = tar_gz(
        [Entry("l", kind="symlink", link="a.yaml"), Entry("h", kind="hardlink", link="l")]
    )
    assert "'h'" in _reject(tmp_path, data).message


def test_too_many_entries(tmp_path: Path) -> None:
    data = tar_gz([Entry(f"f{i}.yaml", b"x") for i in range(11)])
    error = _reject(tmp_path, data, SourceLimits(max_entries=10))
    assert "more than 10 entries" in error.message


def test_declared_size_over_limit(tmp_path: Path) -> None:
    data = tar_gz([Entry("a.yaml", b"a" * 3000), Entry("b.yaml", b"b" * 3000)])
    error = _reject(tmp_path, data, SourceLimits(max_extracted_bytes=5000))
    assert "b.yaml" in error.message


def test_gzip_bomb_is_bounded(tmp_path: Path) -> None:
    # A 64 MiB pax header compresses to ~64 KiB and is buffered whole by tarfile before any
    # member is seen: only the bound on decompressed bytes stops it.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.yaml")
        info.pax_headers = {"comment": "x" * (64 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    bomb = gzip_of(buf.getvalue())
    assert len(bomb) < (1 << 20)
    error = _reject(tmp_path, bomb, SourceLimits(max_extracted_bytes=1 << 20, max_entries=10))
    assert "expands to more than" in error.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not gzip at all", "not a valid tar.gz"),
        (gzip_of(b"not a tar archive" * 100), "not a valid tar.gz"),
        (flux_like_artifact()[:-40], "not a valid tar.gz"),
    ],
)
def test_malformed_archives(tmp_path: Path, data: bytes, message: str) -> None:
    assert message in _reject(tmp_path, data).message


def test_truncated_file_member(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("a.yaml")
        info.size = 10000
        tar.addfile(info, io.BytesIO(b"x" * 10000))
    raw = buf.getvalue()[:2048]  # header plus 1.5 KiB of the 10 KB file
    error = _reject(tmp_path, gzip_of(raw))
    assert "a.yaml" in error.message or "not a valid tar.gz" in error.message


def test_revision_names_commit_from_file_name() -> None:
    digest = "sha256:" + "d" * 64
    sha = "0123456789abcdef0123456789abcdef01234567"
    url = f"http://source-controller.flux-system.svc/gitrepository/ns/app/{sha}.tar.gz"
    assert artifact_revision(url, digest) == f"sha1:{sha}@{digest}"
    assert artifact_revision("http://127.0.0.1/latest.tar.gz", digest) == digest
