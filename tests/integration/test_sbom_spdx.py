"""``kubegate sbom --format spdx-json`` end to end: the document spdx-tools parses back and
validates, for an image in the real loopback registry and for the demo's OCI layout (golden,
made reproducible with ``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, RunCli
from tests.fixtures.golden import Golden
from tests.fixtures.layers import DEBIAN_OS_RELEASE, DPKG_STATUS, Layer
from tests.fixtures.oci import Blob, build_image
from tests.fixtures.registry import RegistryServer

EPOCH = {"SOURCE_DATE_EPOCH": "1767225600"}  # 2026-01-01T00:00:00Z


def _validate(path: Path) -> object:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(str(path))
    messages = validate_full_spdx_document(document)
    assert messages == [], [m.validation_message for m in messages]
    return document


def test_spdx_of_a_registry_image_is_valid_and_lists_every_package(
    run_cli: RunCli, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    built = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .build("gzip")
    )
    digest = registry_plain.push(
        "sbom/spdx", "12", build_image([Blob(built.data, built.descriptor.media_type)])
    )
    reference = registry_plain.ref("sbom/spdx", "12")
    spdx = run_cli("sbom", reference, "--format", "spdx-json")
    assert spdx.returncode == 0, spdx.stderr
    packages = json.loads(run_cli("sbom", reference, "--format", "json").stdout)["packages"]
    path = tmp_path / "sbom.spdx.json"
    path.write_text(spdx.stdout)
    document = _validate(path)
    names = [p.name for p in document.packages]  # type: ignore[attr-defined]
    assert names[0] == f"{registry_plain.host}/sbom/spdx"
    assert sorted(names[1:]) == sorted(p["name"] for p in packages)
    image = json.loads(spdx.stdout)["packages"][0]
    assert image["checksums"] == [{"algorithm": "SHA256", "checksumValue": digest.split(":")[1]}]
    assert image["primaryPackagePurpose"] == "CONTAINER"
    purls = {
        ref["referenceLocator"]
        for package in json.loads(spdx.stdout)["packages"][1:]
        for ref in package["externalRefs"]
    }
    assert purls == {p["purl"] for p in packages}
    relationships = json.loads(spdx.stdout)["relationships"]
    assert sum(r["relationshipType"] == "CONTAINS" for r in relationships) == len(packages)


def test_spdx_of_the_demo_image_golden(run_cli: RunCli, golden: Golden, tmp_path: Path) -> None:
    result = run_cli(
        "sbom",
        "oci:examples/images/nginx-1.21.0:1.21.0",
        "--format",
        "spdx-json",
        cwd=REPO,
        env=EPOCH,
    )
    assert result.returncode == 0, result.stderr
    golden("sbom-demo.spdx.json", result.stdout)
    path = tmp_path / "demo.spdx.json"
    path.write_text(result.stdout)
    document = _validate(path)
    assert document.creation_info.created.isoformat().startswith("2026-01-01T00:00:00")  # type: ignore[attr-defined]
    again = run_cli(
        "sbom",
        "oci:examples/images/nginx-1.21.0:1.21.0",
        "--format",
        "spdx-json",
        cwd=REPO,
        env=EPOCH,
    )
    assert again.stdout == result.stdout
