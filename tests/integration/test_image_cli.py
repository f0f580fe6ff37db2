"""``kubegate image`` end to end: images in the real loopback registry, OSV advisories imported
by the real importer, judged and reported through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import REPO, RunCli
from tests.fixtures.gatefleet import import_demo_nvd
from tests.fixtures.layers import Layer
from tests.fixtures.oci import Blob, build_image
from tests.fixtures.registry import RegistryServer

BUSTER = """PRETTY_NAME="Debian GNU/Linux 10 (buster)"
NAME="Debian GNU/Linux"
VERSION_ID="10"
ID=debian
"""


def _status(openssl: str, zlib: str) -> str:
    return f"""Package: libssl1.1
Status: install ok installed
Architecture: amd64
Source: openssl
Version: {openssl}

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: {zlib}

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.0-4
"""


def _image(openssl: str, zlib: str) -> Blob:
    built = (
        Layer()
        .file("etc/os-release", BUSTER)
        .file("var/lib/dpkg/status", _status(openssl, zlib))
        .build("gzip")
    )
    return Blob(built.data, built.descriptor.media_type)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's OSV snapshot and NVD feed excerpt imported by the real importers."""
    from kubegate.vulndb import import_paths

    path = tmp_path_factory.mktemp("db") / "osv.sqlite3"
    import_paths(path, [REPO / "examples" / "osv"])
    import_demo_nvd(path)
    return path


@pytest.fixture(scope="module")
def pushed(registry_plain: RegistryServer) -> dict[str, str]:
    vulnerable = build_image([_image("1.1.1d-0+deb10u6", "1:1.2.11.dfsg-1")])
    fixed = build_image([_image("1.1.1n-0+deb10u3", "1:1.2.11.dfsg-1+deb10u2")])
    return {
        "vulnerable": registry_plain.push("demo/web", "1.0", vulnerable),
        "fixed": registry_plain.push("demo/web", "1.1", fixed),
    }


def test_vulnerable_image_blocks_with_critical_findings(
    run_cli: RunCli, registry_plain: RegistryServer, pushed: dict[str, str], demo_db: Path
) -> None:
    result = run_cli(
        "image", registry_plain.ref("demo/web", "1.0"), "--db", str(demo_db), "--format", "json"
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    schema = json.loads((REPO / "docs" / "image-v1.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["image"]["digest"] == pushed["vulnerable"]
    by_id = {(f["package"]["name"], f["id"]): f for f in report["findings"]}
    ssl = by_id[("libssl1.1", "CVE-2021-3711")]
    assert ssl["severity"] == "CRITICAL" and ssl["blocking"] is True
    assert "DSA-4963-1" in ssl["ids"]
    assert ssl["package"]["source"] == {"name": "openssl", "version": "1.1.1d-0+deb10u6"}
    assert ssl["fixedVersions"] == ["1.1.1d-0+deb10u7"]
    assert by_id[("zlib1g", "CVE-2022-37434")]["severity"] == "CRITICAL"
    assert report["summary"]["CRITICAL"] >= 2
    assert not any(f["package"]["name"] == "bash" for f in report["findings"])


def test_fixed_image_passes(
    run_cli: RunCli, registry_plain: RegistryServer, pushed: dict[str, str], demo_db: Path
) -> None:
    result = run_cli("image", registry_plain.ref("demo/web", "1.1"), "--db", str(demo_db))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "blocking: 0" in result.stdout


def test_severity_set_decides_what_blocks(
    run_cli: RunCli, registry_plain: RegistryServer, pushed: dict[str, str], demo_db: Path
) -> None:
    ref = registry_plain.ref("demo/web", "1.0")
    # Only MEDIUM blocks: CVE-2021-4160 (5.9) does.
    medium = run_cli("image", ref, "--db", str(demo_db), "--severity", "MEDIUM", "--format", "json")
    assert medium.returncode == 1
    blocking = {f["id"] for f in json.loads(medium.stdout)["findings"] if f["blocking"]}
    assert blocking == {"CVE-2021-4160"}
    low = run_cli("image", ref, "--db", str(demo_db), "--severity", "LOW")
    assert low.returncode == 0, low.stderr


def test_missing_database_is_unproven(
    run_cli: RunCli, registry_plain: RegistryServer, pushed: dict[str, str], tmp_path: Path
) -> None:
    absent = str(tmp_path / "absent.sqlite3")
    result = run_cli(
        "image", registry_plain.ref("demo/web", "1.0"), "--db", absent, "--skip-db-update"
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_database_older_than_max_age_is_unproven(
    run_cli: RunCli, registry_plain: RegistryServer, pushed: dict[str, str], demo_db: Path
) -> None:
    result = run_cli(
        "image", registry_plain.ref("demo/web", "1.0"), "--db", str(demo_db), "--db-max-age", "0s"
    )
    assert result.returncode == 2
    assert "Debian" in result.stderr and "Traceback" not in result.stderr


def test_registry_down_is_unproven(run_cli: RunCli, demo_db: Path) -> None:
    result = run_cli("image", "127.0.0.1:9/demo/web:1.0", "--db", str(demo_db))
    assert result.returncode == 2
    assert "127.0.0.1:9/demo/web:1.0" in result.stderr and "Traceback" not in result.stderr


def test_bad_policy_options_are_usage_errors(run_cli: RunCli, demo_db: Path) -> None:
    result = run_cli("image", "oci:/x", "--severity", "SEVERE", "--db", str(demo_db))
    assert result.returncode == 3
    result = run_cli("image", "oci:/x", "--db-max-age", "soon", "--db", str(demo_db))
    assert result.returncode == 3
