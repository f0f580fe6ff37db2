"""The layer packer of ``scripts/build_image.py``: the same tree gives the same bytes.

Checked on small trees (the whole image is built by tests/integration/test_self_image.py):
order of creation and file times do not change a layer; entries are sorted, parents first,
every mtime is the given epoch, owner names are empty, hard links stay links; the two layers of
the image split at ``opt/kubegate`` and both carry the ``opt`` directory; the gzip header has
no timestamp; the config's ``diff_ids`` and the manifest's digests describe the blobs. And the
source label: the checkout's ``origin`` without its user information.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures.buildimage import load_build_image

EPOCH = 1_700_000_000


@pytest.fixture(scope="module")
def build_image() -> ModuleType:
    return load_build_image()


def _tree(root: Path, *, reverse: bool, mtime: int) -> Path:
    files = {
        "etc/os-release": b"ID=debian\n",
        "usr/bin/tool": b"\x7fELF tool",
        "opt/kubegate/bin/kubegate": b"#!/opt/kubegate/bin/python\n",
        "opt/kubegate/lib/site.py": b"x = 1\n",
    }
    for name in sorted(files, reverse=reverse):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    (root / "usr/bin/tool").chmod(0o755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-alias")
    (root / "usr/bin/python3").symlink_to("python3.11")
    (root / "var/cache/kubegate").mkdir(parents=True)
    for current, dirs, names in os.walk(root):
        for name in (*dirs, *names):
            os.utime(os.path.join(current, name), (mtime, mtime), follow_symlinks=False)
    return root


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return tar.getmembers()


def test_same_tree_same_layers(build_image: ModuleType, tmp_path: Path) -> None:
    first = _tree(tmp_path / "a", reverse=False, mtime=1_000_000)
    second = _tree(tmp_path / "b", reverse=True, mtime=2_000_000)
    venv = "opt/kubegate"
    layers = [
        (
            build_image.pack_layer(root, root.with_suffix(".base"), EPOCH, exclude=venv),
            build_image.pack_layer(root, root.with_suffix(".app"), EPOCH, include=venv),
        )
        for root in (first, second)
    ]
    assert [(x.digest, x.diff_id) for x in layers[0]] == [(x.digest, x.diff_id) for x in layers[1]]

    base, app = layers[0]
    base_data, app_data = base.path.read_bytes(), app.path.read_bytes()
    assert base.digest == "sha256:" + hashlib.sha256(base_data).hexdigest()
    assert base.size == len(base_data)
    assert base.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(base_data)).hexdigest()
    assert base_data[4:8] == b"\0\0\0\0"  # gzip MTIME

    members = _members(base_data)
    names = [m.name for m in members]
    assert names == sorted(names)
    assert "opt" in names
    assert not [n for n in names if n.startswith("opt/")]
    assert {m.mtime for m in members} == {EPOCH}
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    by_name = {m.name: m for m in members}
    assert by_name["usr/bin/python3"].issym()
    assert by_name["usr/bin/python3"].linkname == "python3.11"
    assert by_name["usr/bin/tool"].isreg()
    assert by_name["usr/bin/tool"].mode == 0o755
    assert by_name["usr/bin/tool-alias"].islnk()
    assert by_name["usr/bin/tool-alias"].linkname == "usr/bin/tool"

    app_names = [m.name for m in _members(app_data)]
    assert app_names == [
        "opt",
        "opt/kubegate",
        "opt/kubegate/bin",
        "opt/kubegate/bin/kubegate",
        "opt/kubegate/lib",
        "opt/kubegate/lib/site.py",
    ]


def test_documents_describe_the_blobs(build_image: ModuleType, tmp_path: Path) -> None:
    root = _tree(tmp_path / "a", reverse=False, mtime=1_000_000)
    layers = [
        build_image.pack_layer(root, tmp_path / "base", EPOCH, exclude="opt/kubegate"),
        build_image.pack_layer(root, tmp_path / "app", EPOCH, include="opt/kubegate"),
    ]
    source = build_image.Source(revision="0" * 40, version="0.1.0", epoch=EPOCH)
    config_bytes, manifest_bytes = build_image.image_documents(
        layers, source, "amd64", {"kubectl": "v1.35.2", "helm": "v4.1.4"}
    )
    config, manifest = json.loads(config_bytes), json.loads(manifest_bytes)
    assert config_bytes == json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in layers]
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert [(x["digest"], x["size"]) for x in manifest["layers"]] == [
        (layer.digest, layer.size) for layer in layers
    ]
    assert manifest["annotations"]["org.opencontainers.image.revision"] == "0" * 40

    layout = tmp_path / "layout"
    build_image.write_layout(layout, layers, config_bytes, manifest_bytes, "0.1.0")
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    for digest in [entry["digest"], manifest["config"]["digest"], *(x.digest for x in layers)]:
        blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == digest


def test_source_label_is_the_origin_without_credentials(
    build_image: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text('[project]\nversion = "9.9.9"\n')
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": f"{EPOCH} +0000",
        "GIT_COMMITTER_DATE": f"{EPOCH} +0000",
    }
    for args in (
        ["init", "-q"],
        ["add", "pyproject.toml"],
        ["-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "x"],
        ["remote", "add", "origin", "https://ci:s3cret-token@git.example.test/org/kubegate.git"],
    ):
        subprocess.run(["git", "-C", str(checkout), *args], check=True, env=env)
    monkeypatch.setattr(build_image, "REPO", checkout)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)

    source = build_image.source_info(None)
    assert source.url == "https://git.example.test/org/kubegate.git"
    assert (source.version, source.epoch) == ("9.9.9", EPOCH)
    assert len(source.revision) == 40  # a clean checkout: no -dirty
    assert build_image.source_info("https://elsewhere.test/k").url == "https://elsewhere.test/k"
