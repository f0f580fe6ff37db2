"""``kubegate sbom`` end to end: fixture images pushed to the real loopback registry.

The registry is Debian's ``docker-registry`` started by the session fixtures; images are built
by ``tests/fixtures`` (deterministic tar layers and manifests, pushed over the registry API).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import RunCli
from tests.fixtures.layers import DEBIAN_OS_RELEASE, DPKG_STATUS, Layer
from tests.fixtures.oci import Blob, build_image, build_index
from tests.fixtures.registry import RegistryServer

UPGRADED = DPKG_STATUS.replace("Version: 3.0.11-1~deb12u2", "Version: 3.0.13-1~deb12u1")


def _blob(layer: Layer) -> Blob:
    built = layer.build("gzip")
    return Blob(built.data, built.descriptor.media_type)


def _two_layer_image() -> tuple[Blob, Blob]:
    base = (
        Layer()
        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("var/lib/dpkg/status", DPKG_STATUS)
    )
    # Layer 2 rewrites the status file (libssl3 upgraded, liblzma5 removed by the rewrite).
    without_lzma = "\n\n".join(
        entry for entry in UPGRADED.split("\n\n") if "Package: liblzma5" not in entry
    )
    upper = Layer().file("var/lib/dpkg/status", without_lzma)
    return _blob(base), _blob(upper)


def _packages(stdout: str) -> dict[str, dict[str, str]]:
    document = json.loads(stdout)
    return {p["name"]: p for p in document["packages"]}


def test_sbom_of_a_two_layer_image_shows_the_final_filesystem(
    run_cli: RunCli, registry_plain: RegistryServer
) -> None:
    base, upper = _two_layer_image()
    digest = registry_plain.push("sbom/debian", "12", build_image([base, upper]))

    result = run_cli("sbom", registry_plain.ref("sbom/debian", "12"), "--format", "json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["image"]["digest"] == digest
    packages = _packages(result.stdout)
    assert packages["libssl3"]["version"] == "3.0.13-1~deb12u1"
    assert packages["libssl3"]["sourceName"] == "openssl"
    assert packages["libssl3"]["layer"] == upper.digest
    assert packages["bash"]["layer"] == base.digest
    assert "liblzma5" not in packages
    assert "vim-tiny" not in packages  # deinstalled: config files only
    assert packages["zlib1g"]["purl"].startswith("pkg:deb/debian/zlib1g@1:1.2.11.dfsg-1%2Bb1?")


def test_sbom_with_basic_auth_from_docker_config(
    run_cli: RunCli, registry_basic: RegistryServer, tmp_path: Path
) -> None:
    base, upper = _two_layer_image()
    registry_basic.push("sbom/private", "1", build_image([base, upper]))
    config_dir = tmp_path / "docker"
    registry_basic.docker_config(config_dir)

    anonymous = run_cli("sbom", registry_basic.ref("sbom/private", "1"))
    assert anonymous.returncode == 2
    assert "Traceback" not in anonymous.stderr
    assert len(anonymous.stderr.strip().splitlines()) == 1

    result = run_cli(
        "sbom",
        registry_basic.ref("sbom/private", "1"),
        "--format",
        "cyclonedx-json",
        env={"DOCKER_CONFIG": str(config_dir)},
    )
    assert result.returncode == 0, result.stderr
    bom = json.loads(result.stdout)
    names = {c["name"] for c in bom["components"]}
    assert {"libssl3", "zlib1g", "bash"} <= names
    assert registry_basic.password not in result.stdout + result.stderr


def test_multi_platform_sbom_needs_a_platform_for_json(
    run_cli: RunCli, registry_plain: RegistryServer
) -> None:
    base, upper = _two_layer_image()
    amd64 = build_image([base, upper], architecture="amd64")
    arm64 = build_image([base], architecture="arm64", variant="v8")
    registry_plain.push("sbom/multi", "1", build_index([amd64, arm64]))
    ref = registry_plain.ref("sbom/multi", "1")

    table = run_cli("sbom", ref)
    assert table.returncode == 0, table.stderr
    assert "# linux/amd64" in table.stdout and "# linux/arm64/v8" in table.stdout

    ambiguous = run_cli("sbom", ref, "--format", "json")
    assert ambiguous.returncode == 3
    assert "--platform" in ambiguous.stderr

    arm = run_cli("sbom", ref, "--format", "json", "--platform", "linux/arm64")
    assert arm.returncode == 0, arm.stderr
    assert _packages(arm.stdout)["libssl3"]["version"] == "3.0.11-1~deb12u2"


def test_sbom_of_the_bundled_demo_layout(run_cli: RunCli) -> None:
    layout = Path(__file__).resolve().parents[2] / "examples" / "images" / "nginx-1.21.0"
    result = run_cli("sbom", f"oci:{layout}:1.21.0", "--format", "json")
    assert result.returncode == 0, result.stderr
    packages = _packages(result.stdout)
    assert packages["libssl1.1"]["sourceName"] == "openssl"
    assert packages["zlib1g"]["version"] == "1:1.2.11.dfsg-1"
    assert json.loads(result.stdout)["os"]["versionId"] == "10"


def test_sbom_registry_down_exits_2_in_one_line(run_cli: RunCli) -> None:
    result = run_cli("sbom", "127.0.0.1:9/absent/image:1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:9/absent/image:1" in lines[0]
    assert "Traceback" not in result.stderr


def test_sbom_bad_reference_and_platform_are_usage_errors(run_cli: RunCli) -> None:
    bad_ref = run_cli("sbom", "UPPER/Case:tag")
    assert bad_ref.returncode in (2, 3)
    assert "Traceback" not in bad_ref.stderr
    bad_platform = run_cli("sbom", "oci:/nonexistent", "--platform", "linux")
    assert bad_platform.returncode == 3


def _kubegate_requests(log: Path) -> list[str]:
    """``METHOD URI`` of every request kubegate (user agent ``kubegate``) made, from the log."""
    pattern = re.compile(
        r'http\.request\.method=(\w+) .*?http\.request\.uri="?([^" ]+)"? '
        r'http\.request\.useragent="?kubegate'
    )
    return [f"{m.group(1)} {m.group(2)}" for m in pattern.finditer(log.read_text())]


def test_warm_sbom_only_resolves_the_tag(run_cli: RunCli, registry_plain: RegistryServer) -> None:
    base, upper = _two_layer_image()
    registry_plain.push("sbom/warm", "1", build_image([base, upper]))
    ref = registry_plain.ref("sbom/warm", "1")
    cold = run_cli("sbom", ref, "--format", "json")
    assert cold.returncode == 0, cold.stderr
    before = len(_kubegate_requests(registry_plain.log))
    warm = run_cli("sbom", ref, "--format", "json")
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == cold.stdout
    made = [r for r in _kubegate_requests(registry_plain.log)[before:] if r != "GET /v2/"]
    assert made == ["HEAD /v2/sbom/warm/manifests/1"]


def test_registry_mirror_serves_docker_hub_references(
    run_cli: RunCli, registry_plain: RegistryServer
) -> None:
    base, upper = _two_layer_image()
    digest = registry_plain.push("library/debian", "12-mirrored", build_image([base, upper]))
    result = run_cli(
        "sbom",
        "debian:12-mirrored",
        "--registry-mirror",
        f"docker.io={registry_plain.host}",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["image"]["reference"] == "docker.io/library/debian:12-mirrored"
    assert document["image"]["digest"] == digest


def test_username_and_password_from_stdin(run_cli: RunCli, registry_basic: RegistryServer) -> None:
    base, upper = _two_layer_image()
    registry_basic.push("sbom/login", "1", build_image([base, upper]))
    ref = registry_basic.ref("sbom/login", "1")
    assert registry_basic.username and registry_basic.password
    ok = run_cli(
        "sbom",
        ref,
        "--username",
        registry_basic.username,
        "--password-stdin",
        stdin=registry_basic.password + "\n",
    )
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli(
        "sbom",
        ref,
        "--username",
        registry_basic.username,
        "--password-stdin",
        stdin="not-the-password\n",
    )
    assert wrong.returncode == 2
    assert "not-the-password" not in wrong.stdout + wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    alone = run_cli("sbom", ref, "--username", registry_basic.username)
    assert alone.returncode == 3
