"""The content layer: a deterministic tarball laid out as Flux's ``tar.Tar`` lays it out.

The oracle is Go's own ``archive/tar`` driven the way fluxcd/pkg ``tar/tar.go`` drives it
(tests/fixtures/fluxartifact.py); kubegate normalises modes (0644/0755), so the oracle's tree
gets those modes too.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from kubegate.errors import UsageError
from kubegate.models import Digest, SourceInfo
from kubegate.publish.archive import build_tarball, tar_stream
from kubegate.publish.artifact import build_artifact
from kubegate.publish.target import parse_target, revision_tag
from kubegate.registry.verify import sha256_digest
from tests.fixtures import fluxartifact as flux


def _tree(root: Path) -> Path:
    (root / "deploy" / "sub").mkdir(parents=True)
    (root / "a-b").mkdir()
    (root / "deploy" / "app.yaml").write_text("kind: Deployment\n")
    (root / "deploy" / "sub" / "y.yaml").write_text("y\n")
    (root / "a.yaml").write_text("a\n")
    (root / "a-b" / "q").write_bytes(b"\0" * 1500)
    long_dir = root / ("d" * 90)
    long_dir.mkdir()
    (long_dir / ("f" * 60 + ".yaml")).write_text("long name, split into USTAR prefix\n")
    (root / "link").symlink_to("a.yaml")
    os.mkfifo(root / "fifo")
    return root


def test_same_tree_same_bytes_whatever_the_times_and_modes(tmp_path: Path) -> None:
    first = _tree(tmp_path / "one")
    second = _tree(tmp_path / "two")
    os.utime(second / "a.yaml", (1, 1))
    (second / "deploy" / "app.yaml").chmod(0o600)
    assert build_tarball(first) == build_tarball(first) == build_tarball(second)


def test_entries_order_owner_and_times(tmp_path: Path) -> None:
    tarball, raw = build_tarball(_tree(tmp_path / "t"))
    assert tarball.startswith(flux.GZIP_HEADER) and gzip.decompress(tarball) == raw
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:4] == [".", "a-b", "a-b/q", "a.yaml"]
    assert "link" not in names and "fifo" not in names
    assert all((m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0) for m in members)
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}


def test_tar_stream_equals_go_archive_tar_as_flux_drives_it(
    tmp_path: Path, tar_oracle: Path
) -> None:
    root = _tree(tmp_path / "t")
    for path in root.rglob("*"):
        if not path.is_symlink() and path.is_dir():
            path.chmod(0o755)
        elif path.is_file() and not path.is_symlink():
            path.chmod(0o644)
    root.chmod(0o755)
    go = subprocess.run([str(tar_oracle), str(root)], capture_output=True, check=True).stdout
    assert tar_stream(root) == go


def test_artifact_format_is_flux_push_artifacts(tmp_path: Path) -> None:
    import datetime as dt
    import json

    tarball, raw = build_tarball(_tree(tmp_path / "t"))
    artifact = build_artifact(
        tarball=tarball,
        tar=raw,
        report=b'{"verdict":"PASS"}\n',
        source="https://git.example/fleet.git",
        revision="main@sha1:" + "a" * 40,
        created=dt.datetime(2026, 12, 1, 10, 20, 30, 999, tzinfo=dt.UTC),
        extra={"dev.kubegate.verdict": "PASS"},
    )
    manifest = json.loads(artifact.manifest)
    assert list(manifest) == flux.MANIFEST_KEYS
    assert manifest["annotations"]["org.opencontainers.image.created"] == "2026-12-01T10:20:30Z"
    assert artifact.digest == sha256_digest(artifact.manifest)
    config = json.loads(artifact.config.data)
    assert list(config) == flux.CONFIG_KEYS
    assert artifact.config.data.startswith(b'{"architecture":"","created":"2026-12-01T10:20:30Z"')
    assert artifact.content.descriptor.media_type == flux.CONTENT_MEDIA_TYPE


def test_targets_and_tags() -> None:
    target = parse_target("oci://127.0.0.1:5000/fleet/prod")
    assert (target.url, target.tag) == ("oci://127.0.0.1:5000/fleet/prod", "approved")
    assert parse_target("oci://ghcr.io/org/fleet:live").tag == "live"
    for bad in ("ghcr.io/x", "oci://x", "oci://ghcr.io/x:b@d", "oci://ghcr.io/UPPER"):
        with pytest.raises(UsageError):
            parse_target(bad)
    tarball = Digest("sha256:" + "ab" * 32)
    commit = "0123456789abcdef" * 2 + "01234567"
    branch = SourceInfo("git", "u", f"feature/x@sha1:{commit}", ref_kind="branch", commit=commit)
    assert revision_tag(branch, tarball, None) == "feature-x-0123456789ab"
    tag = SourceInfo("git", "u", f"v1@sha1:{commit}", ref_kind="tag", commit=commit)
    assert revision_tag(tag, tarball, None) == "sha1-0123456789ab"
    assert revision_tag(SourceInfo("dir", "."), tarball, None) == "sha256-abababababab"
    assert revision_tag(SourceInfo("dir", "."), tarball, "r-1") == "r-1"
