"""kubegate's own image: built by ``scripts/build-image``, pushed to the loopback registry, then
inventoried and judged by kubegate itself, and run without a container runtime.

The build runs once per session (the ``self_image`` fixture: a few minutes cold, well under a
minute once the Debian base is cached in ``~/.cache/kubegate/image-build``). It needs root
(debootstrap, chroot) and the network to the Debian mirror and the Python package index; when
either is missing the build fails and so do these tests, with the script's own one-line error
(they are never skipped: CI builds the image).

Oracles are independent of kubegate: ``dpkg-query --admindir`` on the unpacked root file system
for the Debian packages, the image's own Python (``importlib.metadata`` in a chroot) for the
venv, ``go version -m`` for the Go binaries.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name

from tests.conftest import REPO, RunCli
from tests.fixtures.registry import RegistryServer

# The first test waits for the whole build.
pytestmark = pytest.mark.timeout(1800)

SCRIPT = REPO / "scripts" / "build-image"
#: deploy/deployment.yaml runs this image name; the test pushes under the same repository path
#: and maps registry.example.com to the loopback registry with --registry-mirror.
DEPLOY_IMAGE = "registry.example.com/kubegate/kubegate:0.1.0"
REPOSITORY = "kubegate/kubegate"
#: Found on the host's PATH (the image's Env is given to the command, not to this lookup).
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
SOURCE_URL = "https://git.example.test/kubegate.git"
ROOTFS_WRITABLE = ("tmp", "var/cache/kubegate")  # the Deployment's two volumes


@dataclass(frozen=True)
class SelfImage:
    ref: str  # HOST/kubegate/kubegate:0.1.0 in the loopback registry
    digest: str
    layout: Path  # the --output OCI layout
    rootfs: Path  # its layers unpacked, as root (owners kept)
    config: dict[str, Any]  # the image config document
    summary: dict[str, Any]  # the script's JSON line


def _build(args: list[str], timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONFIG"}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def _unpack(layout: Path, manifest: dict[str, Any], rootfs: Path) -> None:
    rootfs.mkdir()
    for layer in manifest["layers"]:
        blob = layout / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
        subprocess.run(
            ["tar", "--numeric-owner", "-xpzf", str(blob), "-C", str(rootfs)], check=True
        )
    # What a container runtime provides in the empty /dev (git opens /dev/null).
    null = rootfs / "dev" / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    null.chmod(0o666)


@pytest.fixture(scope="session")
def self_image(
    registry_plain: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> SelfImage:
    base = tmp_path_factory.mktemp("self-image")
    layout = base / "layout"
    ref = registry_plain.ref(REPOSITORY, "0.1.0")
    started = time.monotonic()
    result = _build(["--output", str(layout), "--push", ref, "--source-url", SOURCE_URL])
    if result.returncode != 0:
        pytest.fail(
            "scripts/build-image failed (it needs root, debootstrap, npm and the network to the "
            f"Debian mirror and the Python package index):\n{result.stderr[-3000:]}"
        )
    print(f"self image built in {time.monotonic() - started:.0f}s", file=sys.stderr)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "0.1.0"
    blobs = layout / "blobs" / "sha256"
    manifest_bytes = (blobs / entry["digest"].removeprefix("sha256:")).read_bytes()
    manifest = json.loads(manifest_bytes)
    config = json.loads((blobs / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    rootfs = base / "rootfs"
    _unpack(layout, manifest, rootfs)
    return SelfImage(ref, entry["digest"], layout, rootfs, config, summary)


def _run_in(
    image: SelfImage, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in the image's root file system as the image's user, with its Env."""
    user = image.config["config"]["User"]
    environment = dict(item.split("=", 1) for item in image.config["config"]["Env"])
    environment.update(env or {})
    return subprocess.run(
        [CHROOT, f"--userspec={user}", str(image.rootfs), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _chroot(image: SelfImage, *args: str, env: dict[str, str] | None = None) -> str:
    """:func:`_run_in`, which must succeed; its stdout."""
    result = _run_in(image, *args, env=env)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


def _sbom(run_cli: RunCli, ref: str) -> list[dict[str, Any]]:
    result = run_cli("sbom", ref, "--format", "json", timeout=300)
    assert result.returncode == 0, result.stderr
    packages: list[dict[str, Any]] = json.loads(result.stdout)["packages"]
    return packages


def test_pushed_image_is_the_layout_with_labels_and_deploy_settings(
    self_image: SelfImage, registry_plain: RegistryServer
) -> None:
    with registry_plain.http(REPOSITORY) as client:
        answer = client.get(
            f"/v2/{REPOSITORY}/manifests/0.1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    assert answer.status_code == 200
    assert "sha256:" + hashlib.sha256(answer.content).hexdigest() == self_image.digest
    assert self_image.summary["digest"] == self_image.digest
    manifest = json.loads(answer.content)
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ] * 2
    revision = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    labels = self_image.config["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == revision
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.source"] == SOURCE_URL
    assert manifest["annotations"] == labels

    # What deploy/deployment.yaml expects of the image.
    deployment = yaml.safe_load((REPO / "deploy" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = self_image.config["config"]
    assert container["image"] == DEPLOY_IMAGE
    assert "command" not in container  # the image's entrypoint runs `kubegate ARGS`
    assert config["Entrypoint"] == ["/opt/kubegate/bin/kubegate"]
    assert (
        config["User"]
        == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    )
    cache = next(e["value"] for e in container["env"] if e["name"] == "KUBEGATE_CACHE_DIR")
    assert f"KUBEGATE_CACHE_DIR={cache}" in config["Env"]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {cache, "/tmp"}
    assert config["Volumes"] == {cache: {}}
    assert (self_image.rootfs / cache.lstrip("/")).stat().st_uid == pod["securityContext"][
        "runAsUser"
    ]


def test_entrypoint_runs_as_the_non_root_user_without_a_container_runtime(
    self_image: SelfImage, tmp_path: Path
) -> None:
    entrypoint = self_image.config["config"]["Entrypoint"]
    assert _chroot(self_image, *entrypoint, "--version").strip() == "kubegate 0.1.0"
    assert _chroot(self_image, "git", "--version").startswith("git version 2.")
    assert "v1.35.2" in _chroot(self_image, "kubectl", "version", "--client")
    assert _chroot(self_image, "helm", "version", "--template", "{{.Version}}") == "v4.1.4"
    # The Deployment's own kustomize base renders with the image's kubectl, as that user.
    work = self_image.rootfs / "tmp" / "deploy"
    shutil.copytree(REPO / "deploy", work)
    rendered = _chroot(self_image, "kubectl", "kustomize", "/tmp/deploy", env={"HOME": "/tmp"})
    assert "kind: Deployment" in rendered
    # The image has no pip (nothing to install at run time) and no byte code.
    site = self_image.rootfs / "opt/kubegate/lib/python3.11/site-packages"
    assert not list(site.glob("pip-*.dist-info"))
    assert not list(self_image.rootfs.rglob("__pycache__"))


def test_kubegate_in_the_image_inventories_its_own_layout_on_a_read_only_root(
    self_image: SelfImage, run_cli: RunCli
) -> None:
    """As the Deployment runs it: the user of the image, HOME=/tmp, the cache on its volume.
    Afterwards nothing outside the two volumes was written (readOnlyRootFilesystem)."""
    shutil.copytree(self_image.layout, self_image.rootfs / "tmp" / "layout")
    started = time.time()
    inside = json.loads(
        _chroot(
            self_image,
            "/opt/kubegate/bin/kubegate",
            "sbom",
            "oci:/tmp/layout:0.1.0",
            "--format",
            "json",
            env={"HOME": "/tmp"},
        )
    )
    outside = _sbom(run_cli, f"oci:{self_image.layout}:0.1.0")
    key = ("type", "name", "version", "location")
    assert sorted(tuple(p[k] for k in key) for p in inside["packages"]) == sorted(
        tuple(p[k] for k in key) for p in outside
    )
    written = []
    for current, dirs, files in os.walk(self_image.rootfs):
        rel = os.path.relpath(current, self_image.rootfs)
        for name in (*dirs, *files):
            path = name if rel == "." else f"{rel}/{name}"
            if any(path == v or path.startswith(v + "/") for v in ROOTFS_WRITABLE):
                continue
            info = os.lstat(os.path.join(current, name))
            if info.st_mtime >= started or info.st_uid == 65532:
                written.append(path)
    assert written == ["home/kubegate"]  # the empty home directory the build created
    assert any((self_image.rootfs / ROOTFS_WRITABLE[1]).iterdir())  # the inventory cache


def test_sbom_of_the_pushed_image_matches_dpkg_pip_and_go(
    self_image: SelfImage, run_cli: RunCli
) -> None:
    packages = _sbom(run_cli, self_image.ref)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for package in packages:
        by_type.setdefault(package["type"], []).append(package)
    assert set(by_type) == {"deb", "pypi", "golang"}

    # Debian: every installed package, with its source package name and version.
    query = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={self_image.rootfs}/var/lib/dpkg",
            "-W",
            "-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected_debs = {
        tuple(line.split("\t")[1:]) for line in query.splitlines() if line.startswith("ii")
    }
    found_debs = {
        (p["name"], p["version"], p["sourceName"], p["sourceVersion"]) for p in by_type["deb"]
    }
    assert found_debs == expected_debs
    assert ("libssl3", "openssl") in {(d[0], d[2]) for d in found_debs}
    assert {d[0] for d in found_debs} >= {"git", "python3.11", "ca-certificates", "libc6"}

    # The venv: what the image's Python sees installed (what pip installed), no more, no less.
    listing = _chroot(
        self_image,
        "/opt/kubegate/bin/python",
        "-c",
        "import importlib.metadata as m, json;"
        "print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))",
    )
    expected_pypi = {(canonicalize_name(n), v) for n, v in json.loads(listing)}
    found_pypi = {(canonicalize_name(p["name"]), p["version"]) for p in by_type["pypi"]}
    assert found_pypi == expected_pypi
    names = {name for name, _ in found_pypi}
    assert names >= {"kubegate", "httpx", "pyyaml", "msgspec", "cyclonedx-python-lib"}
    assert "pip" not in names
    assert all(
        p["location"].startswith("/opt/kubegate/lib/python3.11/site-packages/")
        for p in by_type["pypi"]
    )

    # Go: the main module, the toolchain and every dependency `go version -m` lists.
    for binary, main in (("kubectl", "k8s.io/kubernetes"), ("helm", "helm.sh/helm/v4")):
        build_info = subprocess.run(
            ["go", "version", "-m", str(self_image.rootfs / "usr/local/bin" / binary)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        toolchain = re.match(r".*: go(\S+)", build_info)
        assert toolchain is not None
        expected_go = {("stdlib", toolchain.group(1))}
        for line in build_info.splitlines():
            fields = line.split()
            if fields and fields[0] in ("mod", "dep"):
                expected_go.add((fields[1], fields[2].removeprefix("v")))
        found_go = {
            (p["name"], p["version"])
            for p in by_type["golang"]
            if p["location"] == f"/usr/local/bin/{binary}"
        }
        assert found_go == expected_go
        assert any(name == main for name, _ in found_go)


def _advisory(ident: str, ecosystem: str, name: str, fixed: str) -> dict[str, Any]:
    return {
        "id": ident,
        "modified": "2026-01-01T00:00:00Z",
        "summary": f"synthetic flaw in {name} (test data)",
        "database_specific": {"severity": "HIGH"},
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def test_scan_of_the_deploy_base_judges_the_self_image(
    self_image: SelfImage, registry_plain: RegistryServer, run_cli: RunCli, tmp_path: Path
) -> None:
    """``kubegate scan deploy/`` with the Deployment's image served by the loopback registry.
    The test advisories alone: not proven (no Go data); plus harmless records: pass (they name
    nothing a current bookworm image holds); plus synthetic flaws aimed at each ecosystem of
    the image (a Debian source package, the venv, a Go module): blocked, each one found."""
    from kubegate.vulndb import import_paths
    from tests.fixtures.osvdb import OSV_DATA, VALID_DIRS

    db = tmp_path / "osv.sqlite3"
    import_paths(db, [OSV_DATA / name for name in VALID_DIRS])
    mirror = ("--registry-mirror", f"registry.example.com={registry_plain.host}")
    args = ("scan", str(REPO / "deploy"), "--db", str(db), "--skip-db-update", "--format", "json")

    # The test advisories hold Debian:12 and PyPI records but no Go ones: the Go binaries
    # cannot be proven clean, so the gate fails closed.
    unproven = run_cli(*args, *mirror, timeout=300)
    assert unproven.returncode == 2, unproven.stderr
    assert "the advisory database holds no Go data" in unproven.stderr

    def add(*records: dict[str, Any]) -> None:
        directory = tmp_path / records[0]["id"]
        directory.mkdir()
        for record in records:
            (directory / f"{record['id']}.json").write_text(json.dumps(record))
        import_paths(db, [directory])

    add(
        _advisory("GO-2099-9100", "Go", "example.com/not/in/the/image", "1.0.0"),
        _advisory("GHSA-test-9999-9103", "PyPI", "httpx", "0.0.1"),  # fixed long ago
    )
    clean = run_cli(*args, *mirror, timeout=300)
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["verdict"] == "PASS"
    (image,) = report["images"]
    assert image["digest"] == self_image.digest
    assert image["findings"] == []

    add(
        _advisory("DEBIAN-CVE-2099-9101", "Debian:12", "git", "1:2.39.5-0+deb12u99"),
        _advisory("GHSA-test-9999-9102", "PyPI", "httpx", "999.0"),
        _advisory("GO-2099-9104", "Go", "helm.sh/helm/v4", "4.99.0"),
    )
    blocked = run_cli(*args, *mirror, timeout=300)
    assert blocked.returncode == 1, blocked.stderr
    (image,) = json.loads(blocked.stdout)["images"]
    found = {(f["id"], f["package"]["name"]) for f in image["findings"]}
    assert found == {
        ("DEBIAN-CVE-2099-9101", "git"),
        ("DEBIAN-CVE-2099-9101", "git-man"),
        ("GHSA-test-9999-9102", "httpx"),
        ("GO-2099-9104", "helm.sh/helm/v4"),
    }
    assert image["image"] == DEPLOY_IMAGE
    (use,) = image["uses"]
    assert (use["file"], use["kind"], use["name"]) == ("deployment.yaml", "Deployment", "kubegate")

    # The same gate run by the image itself, as the Deployment runs it: its kubectl renders
    # deploy/, the database is on the cache volume, the registry is reached from the image.
    shutil.copytree(REPO / "deploy", self_image.rootfs / "tmp" / "deploy-scan")
    volume = self_image.rootfs / ROOTFS_WRITABLE[1]
    shutil.copyfile(db, volume / "osv.sqlite3")
    os.chown(volume / "osv.sqlite3", 65532, 65532)
    inside = _run_in(
        self_image,
        "/opt/kubegate/bin/kubegate",
        "scan",
        "/tmp/deploy-scan",
        "--db",
        "/var/cache/kubegate/osv.sqlite3",
        *args[4:],  # --skip-db-update --format json
        *mirror,
        env={"HOME": "/tmp"},
    )
    assert inside.returncode == 1, inside.stderr
    (image,) = json.loads(inside.stdout)["images"]
    assert image["digest"] == self_image.digest
    assert {(f["id"], f["package"]["name"]) for f in image["findings"]} == found


def test_bad_invocations_fail_with_one_line(tmp_path: Path) -> None:
    usage = _build([])
    assert usage.returncode == 3
    assert "give --output DIR and/or --push HOST/REPO:TAG" in usage.stderr

    digest = "sha256:" + "0" * 64
    pinned = _build(["--push", f"127.0.0.1:9/kubegate@{digest}"])
    assert pinned.returncode == 1
    assert pinned.stderr.strip().splitlines() == [
        f"build-image: error: --push: 127.0.0.1:9/kubegate@{digest}: give HOST/REPO:TAG "
        "(a tag, no digest)"
    ]

    # An unreachable mirror is named before anything is built.
    offline = _build(
        ["--output", str(tmp_path / "out"), "--mirror", "http://127.0.0.1:9/debian"], timeout=120
    )
    assert offline.returncode == 1
    (line,) = offline.stderr.strip().splitlines()
    assert line.startswith(
        "build-image: error: http://127.0.0.1:9/debian/dists/bookworm/InRelease: "
        "Debian mirror unreachable"
    )
    assert not (tmp_path / "out").exists()
