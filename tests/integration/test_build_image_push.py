"""``scripts/build_image.py``'s push, on small layers (the whole image is built and pushed by
tests/integration/test_self_image.py to the anonymous registry): credentials come from the
Docker config as for every kubegate command; a refused push is one line without the password;
what the registry serves is what the layout holds, and kubegate reads it back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import RunCli
from tests.fixtures.buildimage import load_build_image
from tests.fixtures.layers import DEBIAN_OS_RELEASE
from tests.fixtures.registry import PASSWORD, RegistryServer

EPOCH = 1_700_000_000


@pytest.fixture(scope="module")
def build_image() -> ModuleType:
    return load_build_image()


def _image(build_image: ModuleType, tmp_path: Path) -> tuple[list[object], bytes, bytes]:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(DEBIAN_OS_RELEASE)
    site = root / "opt/kubegate/lib/python3.11/site-packages/httpx-0.29.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Name: httpx\nVersion: 0.29.0\n")
    layers = [
        build_image.pack_layer(root, tmp_path / "base", EPOCH, exclude="opt/kubegate"),
        build_image.pack_layer(root, tmp_path / "app", EPOCH, include="opt/kubegate"),
    ]
    source = build_image.Source(revision="0" * 40, version="0.1.0", epoch=EPOCH)
    config, manifest = build_image.image_documents(layers, source, "amd64", {})
    return layers, config, manifest


def test_push_with_docker_config_credentials(
    build_image: ModuleType,
    registry_basic: RegistryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    layers, config, manifest = _image(build_image, tmp_path)
    target = registry_basic.ref("kubegate/kubegate", "0.1.0")

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-credentials"))
    with pytest.raises(build_image.BuildError) as refused:
        build_image.push(target, layers, config, manifest, insecure=False)
    message = str(refused.value)
    assert message == (
        f"--push: {target}: authentication required (401) and no credentials for "
        f"{registry_basic.host} in the Docker config"
    )
    assert "\n" not in message

    registry_basic.docker_config(tmp_path / "docker")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    digest = build_image.push(target, layers, config, manifest, insecure=False)
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    # A second push finds every blob present and puts the same manifest again.
    assert build_image.push(target, layers, config, manifest, insecure=False) == digest

    with registry_basic.http("kubegate/kubegate") as client:
        served = client.get(
            "/v2/kubegate/kubegate/manifests/0.1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    assert served.content == manifest

    sbom = run_cli(
        "sbom", target, "--format", "json", env={"DOCKER_CONFIG": str(tmp_path / "docker")}
    )
    assert sbom.returncode == 0, sbom.stderr
    assert PASSWORD not in sbom.stderr
    packages = json.loads(sbom.stdout)["packages"]
    assert [(p["name"], p["version"], p["location"]) for p in packages] == [
        (
            "httpx",
            "0.29.0",
            "/opt/kubegate/lib/python3.11/site-packages/httpx-0.29.0.dist-info/METADATA",
        )
    ]
