"""Images whose packages would vanish from the inventory are judged, never passed silently.

Each hostile image is built here and pushed to the real loopback registry, judged by the real
CLI against the demo's OSV snapshot (Debian 10 advisories): dpkg entries left in between states
are counted, an unreadable or missing dpkg database and an image with nothing to inventory are
not proven (exit 2), and a release the database has no advisories for is not proven either.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.fixtures.gatefleet import BUSTER, VULNERABLE, gate_layer, write_fleet
from tests.fixtures.layers import Layer
from tests.fixtures.oci import Blob, build_image
from tests.fixtures.registry import RegistryServer

#: One package per dpkg status that leaves the files on disk (dpkg(1) "INFORMATION ABOUT
#: PACKAGES"); Trivy's dpkg analyzer counts these too. The versions are the demo's vulnerable
#: ones (examples/osv: DSA-4963-1 for openssl, CVE-2022-37434 for zlib).
IN_BETWEEN = f"""Package: libssl1.1
Status: install ok triggers-pending
Architecture: amd64
Source: openssl
Version: {VULNERABLE[0]}

Package: zlib1g
Status: install reinstreq half-installed
Architecture: amd64
Source: zlib
Version: {VULNERABLE[1]}

Package: openssl
Status: install ok unpacked
Architecture: amd64
Version: {VULNERABLE[0]}

Package: bash
Status: install ok half-configured
Architecture: amd64
Version: 5.0-4

Package: dash
Status: install ok triggers-awaited
Architecture: amd64
Version: 0.5.10.2-5

Package: sed
Status: deinstall ok installed
Architecture: amd64
Version: 4.7-1

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Source: vim
Version: 2:8.1.0875-5

Package: nano
Status: purge ok not-installed
Architecture: amd64
"""


def _blob(layer: Layer) -> Blob:
    built = layer.build("gzip")
    return Blob(built.data, built.descriptor.media_type)


def _debian(status: str | bytes, os_release: str = BUSTER) -> Layer:
    return Layer().file("etc/os-release", os_release).file("var/lib/dpkg/status", status)


@pytest.fixture(scope="module")
def hostile(registry_plain: RegistryServer) -> dict[str, str]:
    """Reference of each hostile image, pushed once."""
    rng = random.Random(15)
    garbage = bytes(rng.randrange(256) for _ in range(4096))
    full = gate_layer(*VULNERABLE)
    images = {
        "in-between": build_image([_blob(_debian(IN_BETWEEN))]),
        "empty": build_image([_blob(_debian(""))]),
        "garbage": build_image([_blob(_debian(garbage))]),
        "no-installed": build_image(
            [_blob(_debian(IN_BETWEEN.split("\n\n", 6)[6]))]  # config-files + not-installed
        ),
        "whiteout": build_image([full, _blob(Layer().whiteout("var/lib/dpkg/status"))]),
        "dangling": build_image(
            [
                _blob(
                    Layer()
                    .file("etc/os-release", BUSTER)
                    .symlink("var/lib/dpkg/status", "/var/lib/dpkg/status-gone")
                )
            ]
        ),
        "release-99": build_image(
            [full, _blob(Layer().file("etc/os-release", BUSTER.replace('"10"', '"99"')))]
        ),
        "static": build_image(
            [
                _blob(
                    Layer().file(
                        "app",
                        b"\x7fELF" + bytes(rng.randrange(256) for _ in range(2048)),
                        mode=0o755,
                    )
                )
            ]
        ),
        "no-layers": build_image([]),
    }
    refs = {}
    for name, built in images.items():
        registry_plain.push(f"vanish/{name}", "1", built)
        refs[name] = registry_plain.ref(f"vanish/{name}", "1")
    return refs


def _image(run_cli: RunCli, ref: str, db: Path, *args: str):  # type: ignore[no-untyped-def]
    result = run_cli("image", ref, "--db", str(db), "--skip-db-update", *args)
    assert "Traceback" not in result.stderr
    return result


def test_in_between_dpkg_states_are_counted(
    run_cli: RunCli, hostile: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    result = _image(run_cli, hostile["in-between"], gate_dbs["osv"], "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    found = {(f["package"]["name"], f["id"]) for f in report["findings"] if f["blocking"]}
    # triggers-pending, half-installed and unpacked packages were dropped before: they block.
    assert {("libssl1.1", "CVE-2021-3711"), ("openssl", "CVE-2021-3711")} <= found
    assert ("zlib1g", "CVE-2022-37434") in found
    sbom = run_cli("sbom", hostile["in-between"], "--format", "json")
    assert sbom.returncode == 0, sbom.stderr
    names = {p["name"] for p in json.loads(sbom.stdout)["packages"]}
    assert names == {"libssl1.1", "zlib1g", "openssl", "bash", "dash", "sed"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty", "/var/lib/dpkg/status: lists no package (empty or unreadable package database)"),
        ("garbage", "/var/lib/dpkg/status: line 1: not a 'Field: value' line"),
        ("no-installed", "/var/lib/dpkg/status: lists no installed package"),
        ("whiteout", "debian 10 image without any deb package: its dpkg"),
        ("dangling", "debian 10 image without any deb package: its dpkg"),
        ("release-99", "the advisory database holds no advisories for Debian:99"),
        ("static", "no operating system and no package found"),
        ("no-layers", "the image has no layers: nothing to inventory"),
    ],
)
def test_nothing_to_judge_is_not_proven(
    run_cli: RunCli,
    hostile: dict[str, str],
    gate_dbs: dict[str, Path],
    name: str,
    message: str,
) -> None:
    result = _image(run_cli, hostile[name], gate_dbs["osv"])
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kubegate: error:")]
    assert errors and any(message in line for line in errors), result.stderr
    assert all("\n" not in line for line in errors)


def test_empty_image_is_unproven_in_a_scan_unless_accepted(
    run_cli: RunCli, tmp_path: Path, hostile: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", hostile["static"])
    work = tmp_path / "work"
    work.mkdir()
    args = (
        "scan",
        str(fleet),
        "--db",
        str(gate_dbs["osv"]),
        "--skip-db-update",
        "--format",
        "json",
    )
    unproven = run_cli(*args, cwd=work)
    assert unproven.returncode == 2, unproven.stderr
    report = json.loads(unproven.stdout)
    assert report["verdict"] == "UNPROVEN"
    (unseen,) = report["unseen"]
    assert unseen["kind"] == "image" and unseen["image"] == hostile["static"]
    assert "no operating system and no package found" in unseen["message"]
    assert unseen["accepted"] is None
    # A notSeen exception of kind Image names the image (a glob) and accepts it for a while.
    (work / "exceptions.yaml").write_text(
        "notSeen:\n  - kind: Image\n    name: '*/vanish/static:*'\n"
        "    expires: 2999-12-31\n    reason: static Go binary built without module info\n"
    )
    accepted = run_cli(*args, "--ignorefile", "exceptions.yaml", cwd=work)
    assert accepted.returncode == 0, accepted.stderr
    (unseen,) = json.loads(accepted.stdout)["unseen"]
    assert unseen["accepted"]["reason"] == "static Go binary built without module info"
    # Expired, it accepts nothing again.
    (work / "exceptions.yaml").write_text(
        "notSeen:\n  - kind: Image\n    name: '*/vanish/static:*'\n"
        "    expires: 2000-01-01\n    reason: old\n"
    )
    expired = run_cli(*args, "--ignorefile", "exceptions.yaml", cwd=work)
    assert expired.returncode == 2
