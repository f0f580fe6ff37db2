#!/usr/bin/env python3
"""Rebuild the demo's OCI image layouts (committed next to this script).

The bundled demo (examples/flux-demo) must run offline, so instead of pulling
``docker.io/library/nginx:1.21.0`` it maps that reference (config ``imageSources``) to a small
OCI layout reproducing the packages that matter of the real image: Debian 10 (buster) with
libssl1.1 1.1.1d-0+deb10u6 from source openssl, zlib1g 1:1.2.11.dfsg-1 from source zlib,
libc6 2.28-10 from glibc and nginx from nginx.org's own repository. The "fixed" layout is the
same image rebuilt on the patched buster packages (openssl 1.1.1n-0+deb10u3, zlib
1:1.2.11.dfsg-1+deb10u2).

Layers are deterministic (sorted entries, mtime 0, uid/gid 0, gzip without name or time) so
running this script again reproduces the committed digests byte for byte. Two layers, as the
real image has: the Debian base, then nginx's layer, which rewrites ``var/lib/dpkg/status``.
Standard library only: ``python3 examples/images/build.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 10 (buster)"
NAME="Debian GNU/Linux"
VERSION_ID="10"
VERSION="10 (buster)"
VERSION_CODENAME=buster
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

DEBIAN = "Debian Base System Maintainers <debian-boot@lists.debian.org>"
GLIBC = "GNU Libc Maintainers <debian-glibc@lists.debian.org>"
OPENSSL = "Debian OpenSSL Team <pkg-openssl-devel@lists.alioth.debian.org>"

# (package, version, source or None, arch, maintainer, description)
BASE_PACKAGES = [
    ("base-files", "10.3+deb10u9", None, "amd64", "Santiago Vila <sanvila@debian.org>",
     "Debian base system miscellaneous files"),
    ("bash", "5.0-4", None, "amd64", "Matthias Klose <doko@debian.org>",
     "GNU Bourne Again SHell"),
    ("debian-archive-keyring", "2019.1+deb10u1", None, "all", "Debian Release Team "
     "<packages@release.debian.org>", "GnuPG archive keys of the Debian archive"),
    ("dpkg", "1.19.7", None, "amd64", "Dpkg Developers <debian-dpkg@lists.debian.org>",
     "Debian package management system"),
    ("libc-bin", "2.28-10", "glibc", "amd64", GLIBC, "GNU C Library: Binaries"),
    ("libc6", "2.28-10", "glibc", "amd64", GLIBC, "GNU C Library: Shared libraries"),
    ("libpcre3", "2:8.39-12", "pcre3", "amd64", "Matthew Vernon <matthew@debian.org>",
     "Old Perl 5 Compatible Regular Expression Library - runtime files"),
    ("tzdata", "2021a-0+deb10u1", None, "all", "GNU Libc Maintainers "
     "<debian-glibc@lists.debian.org>", "time zone and daylight-saving time data"),
]
VULNERABLE = [
    ("libssl1.1", "1.1.1d-0+deb10u6", "openssl", "amd64", OPENSSL,
     "Secure Sockets Layer toolkit - shared libraries"),
    ("openssl", "1.1.1d-0+deb10u6", None, "amd64", OPENSSL,
     "Secure Sockets Layer toolkit - cryptographic utility"),
    ("zlib1g", "1:1.2.11.dfsg-1", "zlib", "amd64", "Mark Brown <broonie@debian.org>",
     "compression library - runtime"),
]
FIXED = [
    ("libssl1.1", "1.1.1n-0+deb10u3", "openssl", "amd64", OPENSSL,
     "Secure Sockets Layer toolkit - shared libraries"),
    ("openssl", "1.1.1n-0+deb10u3", None, "amd64", OPENSSL,
     "Secure Sockets Layer toolkit - cryptographic utility"),
    ("zlib1g", "1:1.2.11.dfsg-1+deb10u2", "zlib", "amd64", "Mark Brown <broonie@debian.org>",
     "compression library - runtime"),
]
NGINX = ("nginx", "1.21.0-1~buster", None, "amd64", "NGINX Packaging <nginx-packaging@f5.com>",
         "high performance web server")


def status_entry(pkg: tuple[str, str, str | None, str, str, str]) -> str:
    name, version, source, arch, maintainer, description = pkg
    lines = [f"Package: {name}", "Status: install ok installed", "Priority: optional",
             f"Maintainer: {maintainer}", f"Architecture: {arch}"]
    if source:
        # dpkg writes "Source: name (version)" only when the source version differs.
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {description}"]
    return "\n".join(lines) + "\n"


def status_file(packages: list[tuple[str, str, str | None, str, str, str]]) -> bytes:
    return "\n".join(status_entry(p) for p in sorted(packages)).encode()


def layer(files: dict[str, bytes], symlinks: dict[str, str]) -> bytes:
    """A deterministic gzip-compressed tar layer."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(p).parent) for p in [*files, *symlinks]} - {"."})
        parents: set[str] = set()
        for d in dirs:
            parts = Path(d).parts
            parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        for d in sorted(parents):
            info = tarfile.TarInfo(d + "/")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path in sorted([*files, *symlinks]):
            info = tarfile.TarInfo(path)
            if path in symlinks:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, symlinks[path], 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(files[path]), 0o644
                tar.addfile(info, io.BytesIO(files[path]))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def dpkg_lists(packages: list[tuple[str, str, str | None, str, str, str]]) -> dict[str, bytes]:
    return {
        f"var/lib/dpkg/info/{p[0]}.list": f"/.\n/usr/share/doc/{p[0]}\n".encode() for p in packages
    }


def write_layout(name: str, tag: str, layers: list[bytes]) -> str:
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    layer_descs = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(b),
         "size": len(b)} for b in layers
    ]
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(b)).hexdigest() for b in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["nginx", "-g", "daemon off;"], "Env": ["NGINX_VERSION=1.21.0"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config), "size": len(config)},
        "layers": layer_descs,
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = put(manifest)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": manifest_digest, "size": len(manifest),
                            "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}\n')
    return manifest_digest


def build(name: str, tag: str, libs: list[tuple[str, str, str | None, str, str, str]]) -> str:
    base = BASE_PACKAGES + libs
    base_layer = layer(
        {"usr/lib/os-release": OS_RELEASE, "etc/debian_version": b"10.9\n",
         "var/lib/dpkg/status": status_file(base), **dpkg_lists(base)},
        {"etc/os-release": "../usr/lib/os-release"},
    )
    nginx_layer = layer(
        {"var/lib/dpkg/status": status_file([*base, NGINX]), **dpkg_lists([NGINX]),
         "etc/nginx/nginx.conf": b"events {}\nhttp { server { listen 80; } }\n"},
        {},
    )
    return write_layout(name, tag, [base_layer, nginx_layer])


if __name__ == "__main__":
    print("nginx-1.21.0", build("nginx-1.21.0", "1.21.0", VULNERABLE))
    print("nginx-1.21.0-fixed", build("nginx-1.21.0-fixed", "1.21.0-fixed", FIXED))
