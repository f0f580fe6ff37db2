"""The rpm extractor on databases written by real rpm (sqlite), db5.3_load (BDB) and NDB."""

from __future__ import annotations

import logging
import sqlite3
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubegate.inventory import ImageInventory, inventory_image
from kubegate.inventory.rpm import split_source_rpm
from kubegate.inventory.rpmdb import RpmDBError, bdb_blobs, ndb_blobs, parse_header
from kubegate.models import Digest, Package
from tests.fixtures.layers import Blobs, Built, Layer, descriptors
from tests.fixtures.rpms import RpmDatabases, ndb_from_blobs

MANIFEST = Digest("sha256:" + "cd" * 32)

RHEL_OS_RELEASE = """NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
"""
SLES_OS_RELEASE = 'NAME="SLES"\nVERSION_ID="15.5"\nID="sles"\nID_LIKE="suse"\n'


def run(*built: Built) -> ImageInventory:
    blobs = Blobs(*built)
    return inventory_image(MANIFEST, descriptors(*built), blobs.open, cache=None)


def rpms(inventory: ImageInventory) -> dict[str, Package]:
    return {p.name: p for p in inventory.packages if p.type == "rpm"}


def _listed(packages: dict[str, Package]) -> tuple[str, ...]:
    return tuple(sorted(f"{p.name} {p.version} {p.arch}" for p in packages.values()))


def test_sqlite_database_as_rpm_lists_it(rpm_databases: RpmDatabases) -> None:
    layer = (
        Layer()
        .file("etc/os-release", RHEL_OS_RELEASE)
        .file("var/lib/rpm/rpmdb.sqlite", rpm_databases.sqlite)
        .build()
    )
    packages = rpms(run(layer))

    assert _listed(packages) == rpm_databases.listed
    libs = packages["openssl-libs"]
    assert libs.version == "1:3.0.7-27.el9"
    assert (libs.source_name, libs.source_version) == ("openssl", "1:3.0.7-27.el9")
    assert libs.purl == (
        "pkg:rpm/redhat/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.3&epoch=1"
    )
    assert libs.files == ("/usr/lib64/libssl.so.3",)
    assert libs.location == "/var/lib/rpm/rpmdb.sqlite"
    assert libs.layer == layer.digest
    assert not libs.third_party
    agent = packages["acme-agent"]
    assert agent.third_party  # Vendor: Acme Corp on a Red Hat system
    assert agent.version == "2.1-4"  # no epoch: none written
    assert "epoch=" not in agent.purl


def test_fedora_layout_through_a_symlink_and_upgrade_layer(
    rpm_databases: RpmDatabases, tmp_path: Path
) -> None:
    # Layer 2 rebuilds the database without acme-agent and with openssl-libs unchanged.
    smaller = tmp_path / "smaller.sqlite"
    smaller.write_bytes(rpm_databases.sqlite)
    conn = sqlite3.connect(smaller)
    names = {h: parse_header(b) for h, b in rpm_databases.blobs}
    agent = next(h for h, header in names.items() if header and header.name == "acme-agent")
    with conn:
        conn.execute("DELETE FROM Packages WHERE hnum = ?", (agent,))
    conn.close()
    fedora = 'ID=fedora\nVERSION_ID=39\nNAME="Fedora Linux"\n'
    base = (
        Layer()
        .file("usr/lib/os-release", fedora)
        .file("usr/lib/sysimage/rpm/rpmdb.sqlite", rpm_databases.sqlite)
        .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
        .build()
    )
    upper = Layer().file("usr/lib/sysimage/rpm/rpmdb.sqlite", smaller.read_bytes()).build()
    packages = rpms(run(base, upper))

    assert set(packages) == {"openssl-libs", "python3-foo"}
    assert packages["openssl-libs"].layer == base.digest  # same version since layer 1
    assert packages["openssl-libs"].purl.startswith("pkg:rpm/fedora/openssl-libs@")
    # Red Hat's vendor on a Fedora system is not Fedora's.
    assert packages["python3-foo"].third_party


def test_berkeley_db_database(rpm_databases: RpmDatabases) -> None:
    layer = (
        Layer()
        .file("etc/os-release", RHEL_OS_RELEASE)
        .file("var/lib/rpm/Packages", rpm_databases.bdb)
        .build()
    )
    packages = rpms(run(layer))
    assert _listed(packages) == rpm_databases.listed
    assert packages["openssl-libs"].files == ("/usr/lib64/libssl.so.3",)


def test_ndb_database_of_suse(rpm_databases: RpmDatabases) -> None:
    layer = (
        Layer()
        .file("etc/os-release", SLES_OS_RELEASE)
        .file("usr/lib/sysimage/rpm/Packages.db", rpm_databases.ndb)
        .build()
    )
    packages = rpms(run(layer))
    assert _listed(packages) == rpm_databases.listed
    assert packages["openssl-libs"].purl.startswith("pkg:rpm/suse/openssl-libs@3.0.7-27.el9?")
    assert packages["openssl-libs"].third_party  # Red Hat's vendor on SLES


def test_rpm_file_lists_make_python_packages_os_owned(rpm_databases: RpmDatabases) -> None:
    metadata = "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n"
    layer = (
        Layer()
        .file("etc/os-release", RHEL_OS_RELEASE)
        .file("var/lib/rpm/rpmdb.sqlite", rpm_databases.sqlite)
        .file("usr/lib/python3.9/site-packages/foo-1.0.dist-info/METADATA", metadata)
        .file(
            "usr/local/lib/python3.9/site-packages/bar-2.0.dist-info/METADATA",
            "Name: bar\nVersion: 2.0\n",
        )
        .build()
    )
    python = {p.name: p for p in run(layer).packages if p.type == "pypi"}
    assert python["foo"].os_owned
    assert not python["bar"].os_owned


def test_malformed_header_is_skipped_with_a_warning(
    rpm_databases: RpmDatabases, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "rpmdb.sqlite"
    broken.write_bytes(rpm_databases.sqlite)
    conn = sqlite3.connect(broken)
    with conn:
        # Claims 1000 index entries in a 20-byte blob.
        conn.execute("INSERT INTO Packages (hnum, blob) VALUES (99, ?)",
                     (struct.pack(">II", 1000, 4) + b"\0" * 12,))  # fmt: skip
    conn.close()
    layer = Layer().file("var/lib/rpm/rpmdb.sqlite", broken.read_bytes()).build()
    with caplog.at_level(logging.WARNING):
        packages = rpms(run(layer))
    assert len(packages) == 3
    assert "1 malformed headers skipped" in caplog.text


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("var/lib/rpm/rpmdb.sqlite", b"not a database at all" * 50),
        ("var/lib/rpm/Packages", b"\0" * 4096),
        ("var/lib/rpm/Packages.db", b"RpmP" + b"\xff" * 5000),
    ],
)
def test_corrupt_database_is_a_warning_not_a_crash(
    path: str, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    layer = Layer().file(path, content).build()
    with caplog.at_level(logging.WARNING):
        inventory = run(layer)
    assert rpms(inventory) == {}
    assert "rpm:" in caplog.text and "not read" in caplog.text


def test_bdb_overflow_loop_is_refused(rpm_databases: RpmDatabases) -> None:
    data = bytearray(rpm_databases.bdb)
    page_size = struct.unpack_from("<I", data, 20)[0]
    overflow = [n for n in range(len(data) // page_size) if data[n * page_size + 25] == 7]
    # Point the first overflow page's "next" at itself.
    struct.pack_into("<I", data, overflow[0] * page_size + 16, overflow[0])
    with pytest.raises(RpmDBError, match="overflow chain"):
        list(bdb_blobs(bytes(data)))


def test_ndb_blob_outside_file_is_refused(rpm_databases: RpmDatabases) -> None:
    data = bytearray(ndb_from_blobs(rpm_databases.blobs))
    struct.pack_into("<I", data, 32 + 8, 10_000_000)  # first slot's block offset
    with pytest.raises(RpmDBError, match="corrupt"):
        list(ndb_blobs(bytes(data)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_parse_header_never_crashes_on_garbage(blob: bytes) -> None:
    header = parse_header(struct.pack(">II", 3, 40) + blob)
    assert header is None or header.name


def test_parse_header_fuzzed_real_headers(rpm_databases: RpmDatabases) -> None:
    blob = rpm_databases.blobs[0][1]
    for position in range(8, min(len(blob), 400), 7):
        mutated = bytearray(blob)
        mutated[position] ^= 0xFF
        parse_header(bytes(mutated))  # returns or gives None; must never raise


def test_source_rpm_names() -> None:
    assert split_source_rpm("openssl-3.0.7-27.el9.src.rpm") == ("openssl", "3.0.7-27.el9")
    assert split_source_rpm("python-urllib3-1.26.5-3.el9.src.rpm") == (
        "python-urllib3",
        "1.26.5-3.el9",
    )
    assert split_source_rpm("kernel-5.14.0-362.nosrc.rpm") == ("kernel", "5.14.0-362")
    assert split_source_rpm("garbage") is None
    assert split_source_rpm(None) is None


def test_rpm_itself_reads_the_ndb_encoder_blobs(rpm_databases: RpmDatabases) -> None:
    # What the NDB file carries is exactly what rpm stored in sqlite.
    assert [bytes(b) for b in ndb_blobs(rpm_databases.ndb)] == [b for _, b in rpm_databases.blobs]
    # And the BDB file (checked by rpm's bdb_ro in the fixture) carries the same headers.
    values = [b for b in bdb_blobs(rpm_databases.bdb) if len(b) > 8]
    assert sorted(values) == sorted(b for _, b in rpm_databases.blobs)


def test_unreadable_or_oversized_database_costs_no_second_pass(
    rpm_databases: RpmDatabases, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = Layer().file("var/lib/rpm/rpmdb.sqlite", b"garbage" * 100).build()
    blobs = Blobs(corrupt)
    inventory_image(MANIFEST, descriptors(corrupt), blobs.open, cache=None)
    assert blobs.opened == [corrupt.digest]

    monkeypatch.setattr("kubegate.inventory.rpm.MAX_DATABASE_BYTES", 1000)
    big = Layer().file("var/lib/rpm/Packages", rpm_databases.bdb).build()
    blobs = Blobs(big)
    with caplog.at_level(logging.WARNING):
        inventory = inventory_image(MANIFEST, descriptors(big), blobs.open, cache=None)
    assert blobs.opened == [big.digest]
    assert rpms(inventory) == {}
    assert "over 1000: not read" in caplog.text
