"""The merged final filesystem: upgrades, whiteouts, opaque dirs, links across layers."""

from __future__ import annotations

import pytest

from kubegate.errors import InventoryError
from kubegate.inventory import ImageInventory, inventory_gap, inventory_image
from kubegate.models import Digest
from tests.fixtures.layers import (
    ALPINE_OS_RELEASE,
    APK_INSTALLED,
    DEBIAN_OS_RELEASE,
    DISTROLESS_STATUS_D,
    DPKG_STATUS,
    UBUNTU_OS_RELEASE,
    Blobs,
    Built,
    Layer,
    descriptors,
)

MANIFEST = Digest("sha256:" + "ab" * 32)


def run(*built: Built, blobs: Blobs | None = None) -> ImageInventory:
    blobs = blobs or Blobs(*built)
    result = inventory_image(MANIFEST, descriptors(*built), blobs.open, cache=None)
    assert blobs.read_to_eof and all(blobs.read_to_eof), "every blob must be read to EOF"
    return result


def by_name(inventory: ImageInventory) -> dict[str, object]:
    return {p.name: p for p in inventory.packages}


def debian_base() -> Layer:
    return (
        Layer()
        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("etc/debian_version", "12.5\n")
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .file(
            "var/lib/dpkg/info/libssl3:amd64.list",
            "/.\n/usr\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n",
        )
        .file("var/lib/dpkg/info/bash.list", "/.\n/bin\n/bin/bash\n")
        .file("var/lib/dpkg/info/libssl3:amd64.md5sums", "0 x\n")
        .file("usr/bin/unrelated", b"\0" * 1000)
    )


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_debian_image_inventory(compression: str) -> None:
    base = debian_base().build(compression)
    inv = run(base)
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("debian", "12")
    pkgs = {p.name: p for p in inv.packages}
    assert sorted(pkgs) == ["bash", "liblzma5", "libssl3", "tzdata", "zlib1g"]
    ssl = pkgs["libssl3"]
    assert (ssl.source_name, ssl.source_version) == ("openssl", "3.0.11-1~deb12u2")
    assert ssl.purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
    assert ssl.files == ("/usr", "/usr/lib/x86_64-linux-gnu/libssl.so.3")
    assert ssl.layer == base.digest and ssl.location == "/var/lib/dpkg/status"
    zlib = pkgs["zlib1g"]
    assert zlib.version == "1:1.2.11.dfsg-1+b1"
    assert (zlib.source_name, zlib.source_version) == ("zlib", "1:1.2.11.dfsg-1")
    # purl-spec percent-encodes "+" in versions (as Trivy prints it); the epoch stays.
    assert zlib.purl == "pkg:deb/debian/zlib1g@1:1.2.11.dfsg-1%2Bb1?arch=amd64&distro=debian-12"
    assert pkgs["bash"].version == "5.2.15-2+b2"
    assert pkgs["bash"].source_name == "bash" and pkgs["bash"].source_version == "5.2.15-2+b2"
    assert pkgs["bash"].files == ("/bin", "/bin/bash")
    assert pkgs["tzdata"].arch == "all"


@pytest.mark.parametrize("root", ["/", "./", "."])
def test_root_directory_entry_is_the_layer_root(root: str) -> None:
    # umoci writes the layer root as "/" (bench/sbom.py's debootstrap image), Docker as "./".
    layer = Layer().dir(root)
    layer.members += debian_base().members
    # The first header carries the root's name as written (tarfile adds the directory's "/").
    assert layer.tar().startswith(root.rstrip("/").encode() + b"/\0")
    inv = run(layer.build())
    assert sorted(p.name for p in inv.packages) == [
        "bash",
        "liblzma5",
        "libssl3",
        "tzdata",
        "zlib1g",
    ]


def test_upgrade_in_upper_layer_shows_new_version_and_its_layer() -> None:
    base = debian_base().build()
    upgraded = DPKG_STATUS.replace("3.0.11-1~deb12u2", "3.0.13-1~deb12u1")
    upper = Layer().file("var/lib/dpkg/status", upgraded).build()
    inv = run(base, upper)
    pkgs = {p.name: p for p in inv.packages}
    assert [p.version for p in inv.packages if p.name == "libssl3"] == ["3.0.13-1~deb12u1"]
    assert pkgs["libssl3"].layer == upper.digest
    # Untouched packages keep the layer that first installed their current version.
    assert pkgs["bash"].layer == base.digest


def test_package_added_in_upper_layer_belongs_to_it() -> None:
    base = debian_base().build()
    extra = "\nPackage: jq\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1\n"
    upper = Layer().file("var/lib/dpkg/status", DPKG_STATUS + extra).build()
    pkgs = {p.name: p for p in run(base, upper).packages}
    assert pkgs["jq"].layer == upper.digest and pkgs["zlib1g"].layer == base.digest


def distroless(layer: Layer) -> Layer:
    layer.file("etc/os-release", DEBIAN_OS_RELEASE)
    for name, text in DISTROLESS_STATUS_D.items():
        layer.file(f"var/lib/dpkg/status.d/{name}", text)
        layer.file(f"var/lib/dpkg/status.d/{name}.md5sums", "d41d8cd98f00b204e9800998ecf8427e  x\n")
    return layer


def test_distroless_status_d_and_whiteout() -> None:
    base = distroless(Layer()).build()
    inv = run(base)
    assert {p.name for p in inv.packages} == {"base-files", "libc6", "tzdata"}
    libc = next(p for p in inv.packages if p.name == "libc6")
    assert (libc.source_name, libc.source_version) == ("glibc", "2.36-9+deb12u4")
    assert libc.location == "/var/lib/dpkg/status.d/libc6"
    removed = Layer().whiteout("var/lib/dpkg/status.d/tzdata").build()
    assert {p.name for p in run(base, removed).packages} == {"base-files", "libc6"}


def test_opaque_directory_hides_lower_content() -> None:
    base = distroless(Layer()).build()
    upper = (
        Layer()
        .opaque("var/lib/dpkg/status.d")
        .file("var/lib/dpkg/status.d/libc6", DISTROLESS_STATUS_D["libc6"])
        .build()
    )
    inv = run(base, upper)
    assert [p.name for p in inv.packages] == ["libc6"]
    # The opaque directory recreated the file: its history starts in the upper layer.
    assert inv.packages[0].layer == upper.digest


def test_whiteout_of_whole_db_directory_then_fresh_db() -> None:
    base = debian_base().build()
    upper = (
        Layer()
        .whiteout("var/lib/dpkg")
        .file("var/lib/dpkg/status", DPKG_STATUS.split("\n\n")[3] + "\n")
        .build()
    )
    inv = run(base, upper)
    assert [(p.name, p.layer) for p in inv.packages] == [("bash", upper.digest)]
    assert inv.packages[0].files == ()  # the info lists went with the whited-out directory


def test_os_release_symlink_across_layers() -> None:
    lower = Layer().file("usr/lib/os-release", UBUNTU_OS_RELEASE).build()
    upper = (
        Layer()
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .build()
    )
    inv = run(lower, upper)
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("ubuntu", "22.04")
    assert inv.os.id_like == ("debian",)
    bash = next(p for p in inv.packages if p.name == "bash")
    assert bash.purl == "pkg:deb/ubuntu/bash@5.2.15-2%2Bb2?arch=amd64&distro=ubuntu-22.04"


def test_absolute_symlink_and_directory_symlink_reach_a_file_not_kept_in_first_pass() -> None:
    # lib/apk is a link to a directory whose files no extractor names: a second pass reads it.
    blobs = Blobs()
    lower = (
        Layer()
        .file("etc/os-release", ALPINE_OS_RELEASE)
        .file("opt/apkdb/db/installed", APK_INSTALLED)
        .build()
    )
    upper = Layer().dir("lib").symlink("lib/apk", "/opt/apkdb").build()
    blobs = Blobs(lower, upper)
    inv = run(lower, upper, blobs=blobs)
    assert {p.name for p in inv.packages} == {"musl", "libcrypto3", "busybox-binsh"}
    assert blobs.opened.count(lower.digest) == 2


def test_hardlink_to_database() -> None:
    layer = (
        Layer()
        .file("etc/os-release", ALPINE_OS_RELEASE)
        .file("lib/apk/db/installed", APK_INSTALLED)
        .hardlink("lib/apk/db/installed.bak", "lib/apk/db/installed")
        .build()
    )
    assert len(run(layer).packages) == 3
    # The database itself a hardlink to a file no extractor asked for.
    other = (
        Layer()
        .file("etc/os-release", ALPINE_OS_RELEASE)
        .file("var/tmp/db", APK_INSTALLED)
        .dir("lib/apk/db")
        .hardlink("lib/apk/db/installed", "var/tmp/db")
        .build()
    )
    assert len(run(other).packages) == 3


def test_alpine_inventory() -> None:
    layer = (
        Layer()
        .file("etc/os-release", ALPINE_OS_RELEASE)
        .file("etc/alpine-release", "3.19.1\n")
        .file("lib/apk/db/installed", APK_INSTALLED)
        .build("zstd")
    )
    inv = run(layer)
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("alpine", "3.19.1")
    pkgs = {p.name: p for p in inv.packages}
    crypto = pkgs["libcrypto3"]
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1"
    assert crypto.source_name == "openssl" and crypto.source_version == "3.1.4-r5"
    assert crypto.files == (
        "/lib",
        "/lib/libcrypto.so.3",
        "/usr/lib/engines-3",
        "/usr/lib/engines-3/afalg.so",
    )
    assert pkgs["musl"].version == "1.2.4_git20230717-r4" and pkgs["musl"].layer == layer.digest


def test_os_from_marker_files_only() -> None:
    deb = Layer().file("etc/debian_version", "11.9\n").build()
    inv = run(deb)
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("debian", "11")
    alp = Layer().file("etc/alpine-release", "3.18.6\n").build()
    inv = run(alp)
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("alpine", "3.18.6")


def test_no_databases_means_no_packages() -> None:
    inv = run(Layer().file("app/main", b"binary").build())
    assert inv.os is None and inv.packages == ()


def test_symlink_loop_on_database_path_is_refused() -> None:
    layer = (
        Layer()
        .dir("var/lib/dpkg")
        .symlink("var/lib/dpkg/status", "status2")
        .symlink("var/lib/dpkg/status2", "status")
        .build()
    )
    with pytest.raises(InventoryError, match="too many levels of symbolic links") as info:
        run(layer)
    assert "var/lib/dpkg/status" in info.value.diagnostics()


def test_dangling_database_symlink_means_absent() -> None:
    layer = Layer().dir("var/lib/dpkg").symlink("var/lib/dpkg/status", "/nowhere").build()
    assert run(layer).packages == ()


def test_symlink_cannot_escape_root() -> None:
    layer = (
        Layer()
        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
        .symlink("etc/os-release", "../../../../../usr/lib/os-release")
        .build()
    )
    inv = run(layer)
    assert inv.os is not None and inv.os.id == "debian"


def test_no_databases_gives_the_gap_that_makes_it_unproven() -> None:
    static = run(Layer().file("app/main", b"binary").build())
    assert inventory_gap(static) is not None
    assert "no operating system and no package" in (inventory_gap(static) or "")
    empty = inventory_image(MANIFEST, [], Blobs().open, cache=None)
    assert inventory_gap(empty) == "the image has no layers: nothing to inventory"
    # An OS whose package database is missing (here: whited out) proves nothing either.
    gone = run(debian_base().build(), Layer().whiteout("var/lib/dpkg/status").build())
    assert gone.os is not None and "debian 12 image without any deb package" in (
        inventory_gap(gone) or ""
    )
    # Distroless keeps its database in status.d/ alone: complete, no gap.
    assert inventory_gap(run(distroless(Layer()).build())) is None
    assert inventory_gap(run(debian_base().build())) is None
    # An ID_LIKE derivative is held to its family's database.
    mint = run(Layer().file("etc/os-release", "ID=linuxmint\nID_LIKE='ubuntu debian'\n").build())
    assert "linuxmint" in (inventory_gap(mint) or "")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("Package: a\nStatus: install ok wobbly\nVersion: 1\n", "unknown package status"),
        ("Package: a\nStatus: install ok\nVersion: 1\n", "unknown package status"),
        ("Package: a\nVersion: 1\n", "line 1: package without a Status field"),
        ("Version: 1\nStatus: install ok installed\n", "stanza without a Package field"),
        ("Package: a\nStatus: install ok unpacked\n", "installed 'a' has no Version"),
        (" continued\nPackage: a\n", "line 1: continuation line outside a stanza"),
        ("Package: a\nthis is no field\n", "line 2: not a 'Field: value' line"),
        ("\n\n \n", "lists no package"),
        (
            "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n"
            "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n",
            "line 6: 'a' 'amd64' listed twice",
        ),
    ],
)
def test_untrustworthy_dpkg_status_is_refused(status: str, message: str) -> None:
    layer = Layer().file("etc/os-release", DEBIAN_OS_RELEASE).file("var/lib/dpkg/status", status)
    with pytest.raises(InventoryError, match=message) as info:
        run(layer.build())
    assert info.value.diagnostics().count("\n") == 0
    assert "/var/lib/dpkg/status: " in info.value.diagnostics()


def test_lower_layer_status_only_attributes_layers() -> None:
    # A broken status in a lower layer, replaced above, does not hide the current one.
    lower = Layer().file("var/lib/dpkg/status", b"\x00\xff garbage").build()
    upper = debian_base().build()
    inv = run(lower, upper)
    assert {p.name for p in inv.packages} == {"bash", "liblzma5", "libssl3", "tzdata", "zlib1g"}
    assert {p.layer for p in inv.packages} == {upper.digest}
