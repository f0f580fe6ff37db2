"""SBOM writers: CycloneDX (schema-valid, one component per package), kubegate JSON, table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kubegate.inventory import ImageInventory, inventory_image
from kubegate.models import Digest, ImageRef
from kubegate.report.sbom import WRITERS, SBOMFormat, Subject, render_sbom
from tests.conftest import REPO, cli_env
from tests.fixtures.layers import DEBIAN_OS_RELEASE, DPKG_STATUS, Blobs, Layer

MANIFEST = Digest("sha256:" + "5e" * 32)
IMAGE = Subject.of(ImageRef("docker.io", "library/debian", "12", MANIFEST))


@pytest.fixture(scope="module")
def inventory() -> ImageInventory:
    base = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .build()
    )
    return inventory_image(MANIFEST, [base.descriptor], Blobs(base).open, cache=None)


def test_writers_cover_every_format() -> None:
    assert set(WRITERS) == set(SBOMFormat)
    assert [f.value for f in SBOMFormat] == ["cyclonedx-json", "spdx-json", "json", "table"]


def test_cyclonedx_is_schema_valid_with_one_component_per_package(
    inventory: ImageInventory,
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = render_sbom(IMAGE, inventory, SBOMFormat.CYCLONEDX_JSON)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    root = doc["metadata"]["component"]
    assert root["type"] == "container" and root["version"] == MANIFEST
    assert root["name"] == "docker.io/library/debian"
    assert root["purl"] == (f"pkg:oci/debian@{MANIFEST}?repository_url=docker.io/library/debian")
    components = doc["components"]
    assert len(components) == len(inventory.packages) == 5
    assert {c["name"] for c in components} == {p.name for p in inventory.packages}
    ssl = next(c for c in components if c["name"] == "libssl3")
    props = {p["name"]: p["value"] for p in ssl["properties"]}
    assert props["kubegate:source:name"] == "openssl"
    assert props["kubegate:source:version"] == "3.0.11-1~deb12u2"
    assert props["kubegate:layer:digest"] == inventory.packages[0].layer
    assert ssl["purl"] == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
    zlib = next(c for c in components if c["name"] == "zlib1g")
    assert zlib["version"] == "1:1.2.11.dfsg-1+b1"
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert len(deps[MANIFEST]) == 5


def test_kubegate_json(inventory: ImageInventory) -> None:
    doc = json.loads(render_sbom(IMAGE, inventory, SBOMFormat.JSON))
    assert doc["schemaVersion"] == 1
    assert doc["image"]["digest"] == MANIFEST and doc["image"]["reference"] == str(IMAGE)
    assert doc["os"] == {
        "id": "debian",
        "versionId": "12",
        "prettyName": "Debian GNU/Linux 12 (bookworm)",
        "idLike": [],
    }
    zlib = next(p for p in doc["packages"] if p["name"] == "zlib1g")
    assert zlib["sourceName"] == "zlib" and zlib["sourceVersion"] == "1:1.2.11.dfsg-1"
    assert set(zlib) == {
        "name", "version", "type", "purl", "arch", "sourceName", "sourceVersion", "layer",
        "location", "extractor", "fileCount", "osOwned", "thirdParty",
    }  # fmt: skip


def test_table(inventory: ImageInventory) -> None:
    text = render_sbom(IMAGE, inventory, SBOMFormat.TABLE)
    lines = text.splitlines()
    assert lines[0] == f"docker.io/library/debian@{MANIFEST} (Debian GNU/Linux 12 (bookworm))"
    assert lines[1].split() == ["NAME", "VERSION", "SOURCE", "TYPE", "LAYER"]
    zlib = next(line for line in lines if line.startswith("zlib1g"))
    assert zlib.split()[:4] == ["zlib1g", "1:1.2.11.dfsg-1+b1", "zlib", "(1:1.2.11.dfsg-1)"]
    assert lines[-1] == "5 packages"


def test_cyclonedx_is_imported_lazily() -> None:
    code = "import sys, kubegate.report.sbom; print('cyclonedx' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"
