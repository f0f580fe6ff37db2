"""Local images: ``oci:`` layouts, ``oci-archive:`` and ``docker-archive:`` files."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubegate.errors import RegistryError
from kubegate.models import Platform
from kubegate.registry import RegistryClient, RegistryOptions, open_image
from kubegate.registry.manifest import OCI_INDEX, OCI_MANIFEST
from tests.fixtures.oci import (
    Blob,
    build_attestation,
    build_image,
    build_index,
    canonical_json,
    layer_blob,
    tar_directory,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

LAYERS = (
    layer_blob({"etc/os-release": b"ID=debian\n"}),
    layer_blob({"usr/bin/tool": b"\x7fELF" + b"\0" * 500}),
)
IMAGE = build_image(LAYERS)
ARM = build_image(LAYERS[:1], architecture="arm64", variant="v8")


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient(RegistryOptions(docker_config=Path("/nonexistent/config.json"))) as c:
        yield c


def read_all(image: object, descriptor: object) -> bytes:
    with image.open_blob(descriptor) as stream:  # type: ignore[attr-defined]
        return bytes(stream.read())


def test_oci_layout_by_tag_and_single(tmp_path: Path, client: RegistryClient) -> None:
    layout = write_oci_layout(tmp_path / "one", {"v1": IMAGE})
    image = open_image(f"oci:{layout}:v1", client)
    assert (image.reference, image.digest, image.media_type) == (
        f"oci:{layout}:v1",
        IMAGE.digest,
        OCI_MANIFEST,
    )
    assert [layer.digest for layer in image.platforms[0].layers] == [b.digest for b in LAYERS]
    assert read_all(image, image.platforms[0].layers[1]) == LAYERS[1].data
    # No tag: the index's single manifest.
    assert open_image(f"oci:{layout}", client).digest == IMAGE.digest


def test_oci_layout_tag_errors(tmp_path: Path, client: RegistryClient) -> None:
    layout = write_oci_layout(tmp_path / "two", {"a": IMAGE, "b": ARM})
    assert open_image(f"oci:{layout}:b", client).digest == ARM.digest
    with pytest.raises(RegistryError, match=r"holds 2 manifests; name one with oci:PATH:TAG"):
        open_image(f"oci:{layout}", client)
    with pytest.raises(RegistryError, match=r"no manifest tagged 'c' in the layout \(tags: a, b\)"):
        open_image(f"oci:{layout}:c", client)
    with pytest.raises(RegistryError, match="OCI layout directory not found"):
        open_image(f"oci:{tmp_path / 'absent'}", client)


def test_oci_layout_index_platforms(tmp_path: Path, client: RegistryClient) -> None:
    index = build_index([IMAGE, ARM, build_attestation(IMAGE)])
    layout = write_oci_layout(tmp_path / "multi", {"latest": index})
    image = open_image(f"oci:{layout}:latest", client)
    assert image.media_type == OCI_INDEX
    assert image.digest == index.digest
    assert [p.platform for p in image.platforms] == [
        Platform("linux", "amd64"),
        Platform("linux", "arm64", "v8"),
    ]
    options = RegistryOptions(platforms=(Platform("linux", "arm64", "v8"),))
    with RegistryClient(options) as arm_client:
        image = open_image(f"oci:{layout}:latest", arm_client)
    assert [p.manifest_digest for p in image.platforms] == [ARM.digest]


def _blob_file(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def test_oci_layout_tampered_blob(tmp_path: Path, client: RegistryClient) -> None:
    layout = write_oci_layout(tmp_path / "bad", {"v1": IMAGE})
    path = _blob_file(layout, LAYERS[0].digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    image = open_image(f"oci:{layout}:v1", client)
    with pytest.raises(RegistryError, match="blob digest mismatch") as info:
        with image.open_blob(image.platforms[0].layers[0]) as stream:
            stream.read()
    assert info.value.where == f"oci:{layout}:v1"
    # A tampered manifest is caught when the image is opened.
    _blob_file(layout, IMAGE.digest).write_bytes(IMAGE.manifest.data + b" ")
    with pytest.raises(RegistryError, match="manifest digest mismatch"):
        open_image(f"oci:{layout}:v1", client)


def test_oci_layout_oversized_manifest(tmp_path: Path, client: RegistryClient) -> None:
    layout = write_oci_layout(tmp_path / "big", {"v1": IMAGE})
    huge = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    digest = "sha256:" + hashlib.sha256(huge).hexdigest()
    _blob_file(layout, digest).write_bytes(huge)
    entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(huge)}
    (layout / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": [entry]}))
    with pytest.raises(RegistryError, match="exceeds the 4194304-byte limit"):
        open_image(f"oci:{layout}", client)
    # Lying about the size does not help: reading stops at the limit.
    entry["size"] = 100
    (layout / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": [entry]}))
    with pytest.raises(RegistryError, match="larger than the 4194304-byte limit"):
        open_image(f"oci:{layout}", client)


def test_oci_archive(tmp_path: Path, client: RegistryClient) -> None:
    archive = write_oci_archive(tmp_path / "img.tar", {"v1": IMAGE, "v2": ARM}, tmp_path)
    image = open_image(f"oci-archive:{archive}:v1", client)
    assert image.digest == IMAGE.digest
    assert image.reference == f"oci-archive:{archive}:v1"
    assert read_all(image, image.platforms[0].layers[0]) == LAYERS[0].data
    assert open_image(f"oci-archive:{archive}:v2", client).platforms[0].platform.architecture == (
        "arm64"
    )
    assert not (tmp_path / "layout").exists()


def _layout_dir(tmp_path: Path) -> Path:
    return write_oci_layout(tmp_path / "src", {"v1": IMAGE})


@pytest.mark.parametrize("name", ["../evil", "/abs/evil", "blobs/../../evil"])
def test_oci_archive_hostile_paths(tmp_path: Path, client: RegistryClient, name: str) -> None:
    archive = tar_directory(_layout_dir(tmp_path), tmp_path / "x.tar", extra={name: b"x"})
    with pytest.raises(RegistryError, match="hostile path"):
        open_image(f"oci-archive:{archive}:v1", client)


def test_oci_archive_link_escaping(tmp_path: Path, client: RegistryClient) -> None:
    archive = tar_directory(_layout_dir(tmp_path), tmp_path / "x.tar")
    with tarfile.open(archive, "a") as tar:
        link = tarfile.TarInfo("blobs/sha256/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../etc/passwd"
        tar.addfile(link)
    with pytest.raises(RegistryError, match="points outside the archive"):
        open_image(f"oci-archive:{archive}:v1", client)


def test_oci_archive_tampered_and_compressed(tmp_path: Path, client: RegistryClient) -> None:
    layout = _layout_dir(tmp_path)
    path = _blob_file(layout, LAYERS[1].digest)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    archive = tar_directory(layout, tmp_path / "x.tar")
    image = open_image(f"oci-archive:{archive}:v1", client)
    with pytest.raises(RegistryError, match="blob digest mismatch"):
        with image.open_blob(image.platforms[0].layers[1]) as stream:
            stream.read()
    compressed = tmp_path / "x.tar.gz"
    compressed.write_bytes(gzip.compress(archive.read_bytes()))
    with pytest.raises(RegistryError, match="compressed archives are not supported"):
        open_image(f"oci-archive:{compressed}", client)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(RegistryError, match="not a readable tar archive"):
        open_image(f"oci-archive:{tmp_path / 'junk.tar'}", client)


def test_docker_archive(tmp_path: Path, client: RegistryClient) -> None:
    archive = write_docker_archive(tmp_path / "save.tar", IMAGE, ["example.com/team/app:1.0"])
    image = open_image(f"docker-archive:{archive}", client)
    (only,) = image.platforms
    raw_layers = [gzip.decompress(layer.data) for layer in LAYERS]
    # Layer digest = sha256 of the (uncompressed) layer file as saved.
    assert [d.digest for d in only.layers] == [
        "sha256:" + hashlib.sha256(raw).hexdigest() for raw in raw_layers
    ]
    assert [d.media_type for d in only.layers] == ["application/vnd.oci.image.layer.v1.tar"] * 2
    assert only.config.digest == IMAGE.config.digest
    assert only.platform == Platform("linux", "amd64")
    assert read_all(image, only.layers[0]) == raw_layers[0]
    # The image digest is that of the synthesised manifest: recompute it independently.
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": IMAGE.config.digest,
            "size": IMAGE.config.size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
                "size": len(raw),
            }
            for raw in raw_layers
        ],
    }
    assert image.digest == "sha256:" + hashlib.sha256(canonical_json(manifest)).hexdigest()
    # Selection by RepoTags, in full or familiar form.
    assert open_image(f"docker-archive:{archive}:example.com/team/app:1.0", client).digest == (
        image.digest
    )
    with pytest.raises(RegistryError, match="no image 'other:1' in the archive"):
        open_image(f"docker-archive:{archive}:other:1", client)


def test_docker_archive_gzip_layers(tmp_path: Path, client: RegistryClient) -> None:
    archive = write_docker_archive(tmp_path / "gz.tar", IMAGE, [], uncompressed=False)
    image = open_image(f"docker-archive:{archive}", client)
    assert [d.digest for d in image.platforms[0].layers] == [b.digest for b in LAYERS]
    assert image.platforms[0].layers[0].media_type.endswith("tar+gzip")


def _docker_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_docker_archive_hostile(tmp_path: Path, client: RegistryClient) -> None:
    config = IMAGE.config.data
    hostile = [{"Config": "c.json", "RepoTags": [], "Layers": ["../../etc/passwd"]}]
    archive = _docker_tar(
        tmp_path / "h.tar", {"manifest.json": json.dumps(hostile).encode(), "c.json": config}
    )
    with pytest.raises(RegistryError, match=r"hostile path '\.\./\.\./etc/passwd'"):
        open_image(f"docker-archive:{archive}", client)
    archive = _docker_tar(tmp_path / "n.tar", {"c.json": config})
    with pytest.raises(RegistryError, match=r"not a docker save archive \(no manifest.json\)"):
        open_image(f"docker-archive:{archive}", client)
    two = [{"Config": "c.json", "Layers": []}, {"Config": "c.json", "Layers": []}]
    archive = _docker_tar(
        tmp_path / "t.tar", {"manifest.json": json.dumps(two).encode(), "c.json": config}
    )
    with pytest.raises(RegistryError, match="archive holds 2 images"):
        open_image(f"docker-archive:{archive}", client)
    missing = [{"Config": "c.json", "Layers": ["gone/layer.tar"]}]
    archive = _docker_tar(
        tmp_path / "m.tar", {"manifest.json": json.dumps(missing).encode(), "c.json": config}
    )
    with pytest.raises(RegistryError, match=r"'gone/layer\.tar' missing from the archive"):
        open_image(f"docker-archive:{archive}", client)
    with pytest.raises(RegistryError, match="archive not found"):
        open_image(f"docker-archive:{tmp_path / 'nope.tar'}", client)


def test_blob_verified_even_when_not_read_to_eof(tmp_path: Path, client: RegistryClient) -> None:
    layout = write_oci_layout(tmp_path / "partial", {"v1": IMAGE})
    path = _blob_file(layout, LAYERS[1].digest)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    image = open_image(f"oci:{layout}:v1", client)
    layer = image.platforms[0].layers[1]
    # The consumer stops early: leaving the block drains and verifies the rest.
    with pytest.raises(RegistryError, match="blob digest mismatch"):
        with image.open_blob(layer) as stream:
            assert len(stream.read(10)) == 10
    # A consumer that swallows the error still gets it when the block ends.
    with pytest.raises(RegistryError, match="blob digest mismatch"):
        with image.open_blob(layer) as stream:
            with contextlib.suppress(RegistryError):
                stream.read()
            with pytest.raises(RegistryError, match="blob digest mismatch"):
                stream.read(5)  # and again: no clean EOF after a failure
    # An explicit prefix read (drain=False) is allowed; an untampered blob drains cleanly.
    with image.open_blob(layer, drain=False) as stream:
        assert stream.read(10) == path.read_bytes()[:10]
    with image.open_blob(image.platforms[0].layers[0]) as stream:
        assert stream.read(3) == LAYERS[0].data[:3]


def test_paths_with_colons(tmp_path: Path, client: RegistryClient) -> None:
    odd = tmp_path / "a:b"
    odd.mkdir()
    layout = write_oci_layout(odd / "layout", {"v1": IMAGE})
    assert open_image(f"oci:{layout}:v1", client).digest == IMAGE.digest
    assert open_image(f"oci:{layout}", client).digest == IMAGE.digest
    archive = write_docker_archive(odd / "s.tar", IMAGE, ["registry.example:5000/team/app:1"])
    selected = open_image(f"docker-archive:{archive}:registry.example:5000/team/app:1", client)
    assert selected.digest == open_image(f"docker-archive:{archive}", client).digest


def _selected(layout: Path, *platforms: Platform) -> list[str]:
    with RegistryClient(
        RegistryOptions(platforms=platforms, docker_config=Path("/nonexistent/config.json"))
    ) as client:
        image = open_image(f"oci:{layout}:latest", client)
    return [p.manifest_digest for p in image.platforms]


def test_index_platforms_matched_as_containerd_normalises_them(tmp_path: Path) -> None:
    # Spellings a node's containerd still pulls (platforms.Normalize folds case, maps
    # x86_64/aarch64/armhf, and an empty os is the node's own): none may be skipped.
    shouting = build_image(LAYERS, os="Linux", architecture="x86_64")
    aarch64 = build_image(LAYERS[:1], architecture="aarch64")
    armhf = build_image(LAYERS[1:], architecture="armhf")
    no_os = build_image(LAYERS[:1], os="", architecture="s390x")
    layout = write_oci_layout(
        tmp_path / "odd", {"latest": build_index([armhf, shouting, aarch64, no_os])}
    )
    everything = _selected(layout)
    assert everything == [armhf.digest, shouting.digest, aarch64.digest, no_os.digest]
    assert _selected(layout, Platform("linux", "amd64")) == [shouting.digest]
    # A linux/arm64 node prefers arm64 over the arm/v7 entry listed before it.
    assert _selected(layout, Platform("linux", "arm64", "v8")) == [aarch64.digest]
    assert _selected(layout, Platform("linux", "arm", "v7")) == [armhf.digest]


def test_platform_fallback_is_the_one_a_node_pulls(tmp_path: Path) -> None:
    # containerd's platforms.Only: an arm64 node with no arm64 entry runs arm/v7; a v7 node
    # with only v6 runs v6; an amd64 node runs 386. A gate asked for the node's platform must
    # scan that image rather than fail to find one.
    arm_v6 = build_image(LAYERS[:1], architecture="arm", variant="v6")
    arm_v7 = build_image(LAYERS[1:], architecture="arm", variant="v7")
    i386 = build_image(LAYERS, architecture="386")
    layout = write_oci_layout(tmp_path / "old", {"latest": build_index([arm_v6, arm_v7, i386])})
    assert _selected(layout, Platform("linux", "arm64")) == [arm_v7.digest]
    assert _selected(layout, Platform("linux", "arm", "v7")) == [arm_v7.digest]
    assert _selected(layout, Platform("linux", "amd64")) == [i386.digest]
    with pytest.raises(RegistryError, match="platform linux/arm/v5 not in index"):
        _selected(layout, Platform("linux", "arm", "v5"))


def test_index_entries_without_platform_are_judged_by_their_config(tmp_path: Path) -> None:
    # containerd's images.Manifest keeps entries without a platform (after the matching ones)
    # and checks their config: an amd64 node runs this one although the index names only
    # arm64. It must be scanned, not skipped.
    arm64 = build_image(LAYERS[:1], architecture="arm64")
    hidden = build_image(LAYERS, architecture="amd64")
    hidden_no_os = build_image(LAYERS[1:], os="", architecture="s390x")
    index = build_index([arm64])
    doc = json.loads(index.index.data)
    doc["manifests"].append(hidden.manifest.descriptor())  # no "platform" key
    doc["manifests"].append(hidden_no_os.manifest.descriptor())
    data = canonical_json(doc)
    crafted = dataclasses.replace(
        index, index=Blob(data, OCI_INDEX), images=(arm64, hidden, hidden_no_os)
    )
    layout = write_oci_layout(tmp_path / "hidden", {"latest": crafted})
    # Every linux platform: the config of each entry without a platform decides (an empty os
    # is the node's own, as containerd normalises it).
    assert _selected(layout) == [arm64.digest, hidden.digest, hidden_no_os.digest]
    assert _selected(layout, Platform("linux", "amd64")) == [hidden.digest]
    assert _selected(layout, Platform("linux", "arm64")) == [arm64.digest]
    # Only the first entry without a platform is tried, as containerd does.
    with pytest.raises(RegistryError, match="platform linux/s390x not in index"):
        _selected(layout, Platform("linux", "s390x"))
    with pytest.raises(RegistryError, match="platform linux/ppc64le not in index"):
        _selected(layout, Platform("linux", "amd64"), Platform("linux", "ppc64le"))
