"""Language extractors (Python, Node, Ruby, Java, Go binaries) and OS ownership on real layers."""

from __future__ import annotations

import io
import logging
import re
import zipfile

import pytest

from kubegate.inventory import ImageInventory, InventoryCache, InventoryLimits, inventory_image
from kubegate.inventory.gobinary import parse_modinfo, reduce_executable
from kubegate.inventory.python import core_metadata
from kubegate.inventory.ruby import gemspec_identity
from kubegate.models import Digest, Package
from tests.fixtures.gobuild import GoBinary
from tests.fixtures.layers import DEBIAN_OS_RELEASE, Blobs, Built, Layer, descriptors

MANIFEST = Digest("sha256:" + "ef" * 32)
SITE = "usr/local/lib/python3.12/site-packages"
DIST = "usr/lib/python3/dist-packages"


def run(*built: Built, limits: InventoryLimits | None = None) -> ImageInventory:
    blobs = Blobs(*built)
    kwargs = {"limits": limits} if limits else {}
    result = inventory_image(MANIFEST, descriptors(*built), blobs.open, cache=None, **kwargs)
    assert all(blobs.read_to_eof)
    return result


def of_type(inventory: ImageInventory, kind: str) -> dict[str, Package]:
    return {p.name: p for p in inventory.packages if p.type == kind}


def metadata(name: str, version: str) -> str:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\n"
        "Version: 0.0.0 in the description is not the version\n"
    )


# -- Python -----------------------------------------------------------------------------------


def test_python_upgrade_in_second_layer() -> None:
    base = (
        Layer()
        .file(f"{SITE}/requests-2.31.0.dist-info/METADATA", metadata("requests", "2.31.0"))
        .file(f"{SITE}/requests-2.31.0.dist-info/RECORD", "requests/__init__.py,,\n")
        .file(f"{SITE}/Flask_Login-0.6.3.dist-info/METADATA", metadata("Flask_Login", "0.6.3"))
        .build()
    )
    # pip uninstalls the old dist-info (whiteout) and installs the new one.
    upper = (
        Layer()
        .whiteout(f"{SITE}/requests-2.31.0.dist-info")
        .file(f"{SITE}/requests-2.32.3.dist-info/METADATA", metadata("requests", "2.32.3"))
        .build()
    )
    python = of_type(run(base, upper), "pypi")

    assert set(python) == {"requests", "flask-login"}
    assert python["requests"].version == "2.32.3"
    assert python["requests"].layer == upper.digest
    assert python["requests"].location == f"/{SITE}/requests-2.32.3.dist-info/METADATA"
    assert python["requests"].purl == "pkg:pypi/requests@2.32.3"
    assert python["flask-login"].purl == "pkg:pypi/flask-login@0.6.3"
    assert python["flask-login"].layer == base.digest
    assert python["flask-login"].extractor == "python"


def test_python_egg_info_forms_and_incomplete_metadata() -> None:
    layer = (
        Layer()
        .file(f"{DIST}/six-1.16.0.egg-info/PKG-INFO", metadata("six", "1.16.0"))
        .file(f"{DIST}/zope.interface-5.5.egg-info", metadata("zope.interface", "5.5"))
        .file("app/src/PKG-INFO", metadata("my_app", "0.1"))
        .file(f"{SITE}/broken-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: broken\n")
        .file(f"{SITE}/notes/METADATA", metadata("ignored", "1"))
        .build()
    )  # fmt: skip
    python = of_type(run(layer), "pypi")
    assert {n: p.version for n, p in python.items()} == {
        "six": "1.16.0",
        "zope-interface": "5.5",
        "my-app": "0.1",
    }


def test_core_metadata_reads_only_the_header_block() -> None:
    assert core_metadata(metadata("a", "1").encode()) == ("a", "1")
    assert core_metadata(b"\nName: a\nVersion: 1\n") is None
    assert core_metadata(b"Name: a\n  continued\nVersion: 2\n") == ("a", "2")


def test_debian_python_package_is_os_owned() -> None:
    info = "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info"
    status = (
        "Package: python3-urllib3\nStatus: install ok installed\nArchitecture: all\n"
        "Source: python-urllib3\nVersion: 1.26.12-1\n"
    )
    listing = f"/.\n/usr\n/usr/lib/python3/dist-packages\n/{info}\n/{info}/PKG-INFO\n"
    layer = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", status)
        .file("var/lib/dpkg/info/python3-urllib3.list", listing)
        .file(f"{info}/PKG-INFO", metadata("urllib3", "1.26.12"))
        .file(f"{SITE}/urllib3-2.2.1.dist-info/METADATA", metadata("urllib3", "2.2.1"))
        .build()
    )
    found = [p for p in run(layer).packages if p.type == "pypi"]
    owned = {p.version: p.os_owned for p in found}
    assert owned == {"1.26.12": True, "2.2.1": False}


def test_alpine_python_package_is_os_owned() -> None:
    site = "usr/lib/python3.11/site-packages"
    installed = (
        "P:py3-urllib3\nV:1.26.18-r0\nA:noarch\no:py3-urllib3\n"
        f"F:{site}/urllib3-1.26.18.dist-info\nR:METADATA\nR:RECORD\n"
    )
    layer = (
        Layer()
        .file("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")
        .file("lib/apk/db/installed", installed)
        .file(f"{site}/urllib3-1.26.18.dist-info/METADATA", metadata("urllib3", "1.26.18"))
        .file(f"{site}/idna-3.6.dist-info/METADATA", metadata("idna", "3.6"))
        .build()
    )
    owned = {p.name: p.os_owned for p in run(layer).packages if p.type == "pypi"}
    assert owned == {"urllib3": True, "idna": False}


# -- Node ---------------------------------------------------------------------------------------


def test_node_modules_nested_and_scoped() -> None:
    nm = "app/node_modules"
    layer = (
        Layer()
        .file("app/package.json", '{"name": "my-app", "version": "1.0.0"}')
        .file(f"{nm}/express/package.json", '{"name": "express", "version": "4.18.2"}')
        .file(f"{nm}/express/node_modules/debug/package.json", '{"name":"debug","version":"2.6.9"}')
        .file(f"{nm}/debug/package.json", '{"name": "debug", "version": "4.3.4"}')
        .file(f"{nm}/@babel/core/package.json", '{"name": "@babel/core", "version": "7.24.0"}')
        .file(f"{nm}/@babel/core/lib/package.json", '{"type": "module"}')
        .file(f"{nm}/broken/package.json", '{"name": "broken", "version": ')
        .file("usr/lib/node_modules/npm/package.json", '{"name": "npm", "version": "10.2.4"}')
        .build()
    )
    found = sorted(
        (p.name, p.version, p.purl, p.location) for p in run(layer).packages if p.type == "npm"
    )
    assert found == [
        ("@babel/core", "7.24.0", "pkg:npm/%40babel/core@7.24.0",
         f"/{nm}/@babel/core/package.json"),
        ("debug", "2.6.9", "pkg:npm/debug@2.6.9", f"/{nm}/express/node_modules/debug/package.json"),
        ("debug", "4.3.4", "pkg:npm/debug@4.3.4", f"/{nm}/debug/package.json"),
        ("express", "4.18.2", "pkg:npm/express@4.18.2", f"/{nm}/express/package.json"),
        ("npm", "10.2.4", "pkg:npm/npm@10.2.4", "/usr/lib/node_modules/npm/package.json"),
    ]  # fmt: skip


# -- Ruby ---------------------------------------------------------------------------------------

GEMSPEC = """# -*- encoding: utf-8 -*-
# stub: rake 13.0.6 ruby lib

Gem::Specification.new do |s|
  s.name = "rake".freeze
  s.version = "13.0.6"
  s.require_paths = ["lib".freeze]
  s.required_rubygems_version = Gem::Requirement.new(">= 1.3.2".freeze)
end
"""


def test_ruby_gemspecs() -> None:
    specs = "usr/local/bundle/specifications"
    layer = (
        Layer()
        .file(f"{specs}/rake-13.0.6.gemspec", GEMSPEC)
        .file(f"{specs}/nokogiri-1.16.2-x86_64-linux.gemspec", "# written oddly\n")
        .file("usr/share/rubygems-integration/all/specifications/json-2.6.3.gemspec",
              'Gem::Specification.new "json", "2.6.3" do |s|\nend\n')
        .file("app/rake.gemspec", GEMSPEC.replace("13.0.6", "99"))
        .build()
    )  # fmt: skip
    gems = of_type(run(layer), "gem")
    assert {n: (p.version, p.purl) for n, p in gems.items()} == {
        "rake": ("13.0.6", "pkg:gem/rake@13.0.6"),
        "nokogiri": ("1.16.2", "pkg:gem/nokogiri@1.16.2"),
        "json": ("2.6.3", "pkg:gem/json@2.6.3"),
    }


def test_gemspec_version_object_form() -> None:
    text = 's.name = %q{thor}\nspec.name = "thor"\nspec.version = Gem::Version.new("1.3.0")\n'
    assert gemspec_identity(text, "thor-1.3.0.gemspec") == ("thor", "1.3.0")


# -- Java ---------------------------------------------------------------------------------------


def jar(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def pom(group: str, artifact: str, version: str) -> bytes:
    return (
        f"#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n".encode()
    )


def test_jar_nested_in_war_and_manifest_fallback() -> None:
    inner = jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n",
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties": pom(
                "org.apache.logging.log4j", "log4j-core", "2.14.1"
            ),
            "org/apache/logging/log4j/core/Logger.class": b"\xca\xfe\xba\xbe",
        }
    )
    manifest_only = jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nImplementation-Title: guava\r\n"
            b"Implementation-Vendor-Id: com.google.guava\r\nImplementation-Version: 32.1.2-jre\r\n"
        }
    )
    war = jar(
        {
            "META-INF/maven/com.example/shop/pom.properties": pom("com.example", "shop", "1.4"),
            "WEB-INF/lib/log4j-core-2.14.1.jar": inner,
            "WEB-INF/lib/guava-32.1.2-jre.jar": manifest_only,
        },
        zipfile.ZIP_STORED,
    )
    layer = (
        Layer()
        .file("usr/local/tomcat/webapps/shop.war", war)
        .file("opt/lib/commons-text-1.9.jar", jar({"META-INF/MANIFEST.MF": b"X: y\n"}))
        .build()
    )
    maven = of_type(run(layer), "maven")
    assert {n: (p.version, p.purl, p.location) for n, p in maven.items()} == {
        "com.example:shop": (
            "1.4",
            "pkg:maven/com.example/shop@1.4",
            "/usr/local/tomcat/webapps/shop.war",
        ),
        "org.apache.logging.log4j:log4j-core": (
            "2.14.1",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "/usr/local/tomcat/webapps/shop.war!/WEB-INF/lib/log4j-core-2.14.1.jar",
        ),
        "com.google.guava:guava": (
            "32.1.2-jre",
            "pkg:maven/com.google.guava/guava@32.1.2-jre",
            "/usr/local/tomcat/webapps/shop.war!/WEB-INF/lib/guava-32.1.2-jre.jar",
        ),
        # No group known: the file name still names artifact and version.
        "commons-text": ("1.9", "pkg:maven/commons-text@1.9", "/opt/lib/commons-text-1.9.jar"),
    }
    assert all(p.layer == layer.digest for p in maven.values())


def test_nested_bomb_depth_and_corruption_are_refused_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deep = jar({"META-INF/maven/g/deep/pom.properties": pom("g", "deep", "1")})
    for level in range(4):
        deep = jar({f"lib/level{level}.jar": deep})
    app = jar(
        {
            "META-INF/maven/com.example/app/pom.properties": pom("com.example", "app", "2.0"),
            # 16 MiB of zeros deflate ~1000:1: refused on its declared sizes, never inflated.
            "BOOT-INF/lib/bomb.jar": b"\0" * (16 * 1024 * 1024),
            "BOOT-INF/lib/deep.jar": deep,
            "BOOT-INF/lib/broken.jar": b"PK\x03\x04 not really a zip",
            "BOOT-INF/lib/ok.jar": jar({"META-INF/maven/g/ok/pom.properties": pom("g", "ok", "3")}),
        }
    )
    layer = Layer().file("app/app.jar", app).build()
    with caplog.at_level(logging.WARNING):
        maven = of_type(run(layer), "maven")
    assert set(maven) == {"com.example:app", "g:ok"}
    assert maven["g:ok"].location == "/app/app.jar!/BOOT-INF/lib/ok.jar"
    assert "bomb.jar refused: BOOT-INF/lib/bomb.jar compression ratio over 100" in caplog.text
    assert "nested deeper than 3 archives" in caplog.text
    assert "broken.jar unreadable" in caplog.text


def test_corrupt_top_level_archive_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    layer = Layer().file("app/lib/x-1.0.jar", b"PK\x05\x06" + b"\xff" * 40).build()
    with caplog.at_level(logging.WARNING):
        assert of_type(run(layer), "maven") == {}
    assert "x-1.0.jar unreadable" in caplog.text


# -- Go -----------------------------------------------------------------------------------------


def _go_expected(info: str) -> set[tuple[str, str]]:
    """What ``go version -m`` says the binary holds, in kubegate's form."""
    lines = [line.strip().split("\t") for line in info.splitlines()[1:]]
    expected = {("stdlib", info.split(": ", 1)[1].split()[0].removeprefix("go"))}
    modules: list[list[str]] = []
    for fields in lines:
        if fields[0] in ("mod", "dep"):
            modules.append([fields[1], fields[2]])
        elif fields[0] == "=>":
            modules[-1] = [modules[-1][0], "(devel)"] if fields[1].startswith(".") else fields[1:3]
    expected |= {(m[0], m[1].removeprefix("v")) for m in modules}
    return expected


def test_go_binary_build_info_matches_go_version_m(go_binary: GoBinary) -> None:
    layer = (
        Layer()
        .file("usr/local/bin/app", go_binary.data, mode=0o755)
        .file("usr/share/doc/app.bin", go_binary.data)  # not executable: not looked at
        .build()
    )
    # The binary (~2 MB) is over max_file_bytes: streamed, never held, never refused.
    limits = InventoryLimits(max_file_bytes=1024 * 1024)
    golang = [p for p in run(layer, limits=limits).packages if p.type == "golang"]

    assert {(p.name, p.version) for p in golang} == _go_expected(go_binary.buildinfo)
    by_name = {p.name: p for p in golang}
    assert by_name["example.com/fork"].version == "0.5.0"
    assert by_name["example.com/fork"].purl == "pkg:golang/example.com/fork@v0.5.0"
    assert by_name["example.com/plain"].purl == "pkg:golang/example.com/plain@v0.3.1"
    assert by_name["example.com/lib"].version == "(devel)"  # replaced by a local directory
    assert by_name["example.com/lib"].purl == "pkg:golang/example.com/lib"
    assert by_name["stdlib"].version == go_binary.go_version.removeprefix("go")
    assert by_name["stdlib"].purl == f"pkg:golang/stdlib@v{by_name['stdlib'].version}"
    assert all(p.location == "/usr/local/bin/app" for p in golang)
    assert all(p.layer == layer.digest for p in golang)


def test_go_binary_record_survives_the_layer_cache(
    go_binary: GoBinary, inventory_cache: InventoryCache
) -> None:
    layer = Layer().file("ko-app/server", go_binary.data, mode=0o755).build()
    blobs = Blobs(layer)
    first = inventory_image(MANIFEST, descriptors(layer), blobs.open, cache=inventory_cache)
    blobs.fail = True  # the second run must not open any blob
    other = Digest("sha256:" + "01" * 32)
    second = inventory_image(other, descriptors(layer), blobs.open, cache=inventory_cache)
    assert second.cache_hit == "layers"
    assert second.packages == first.packages
    assert any(p.name == "example.com/plain" for p in second.packages)


def test_go_binary_owned_by_a_debian_package(go_binary: GoBinary) -> None:
    status = "Package: app\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1-1\n"
    layer = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", status)
        .file("var/lib/dpkg/info/app:amd64.list", "/.\n/bin\n/bin/app\n")
        .symlink("bin", "usr/bin")
        .file("usr/bin/app", go_binary.data, mode=0o755)
        .build()
    )
    golang = [p for p in run(layer).packages if p.type == "golang"]
    assert golang and all(p.os_owned for p in golang)  # /bin/app is /usr/bin/app (merged /usr)


def test_pre_go_1_18_pointer_format() -> None:
    # Go 1.13-1.17: the header holds pointers; the module info is a sentinel-wrapped string.
    start = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
    end = bytes.fromhex("f932433186182072008242104116d8f2")
    modinfo = (
        "path\texample.com/old\nmod\texample.com/old\tv1.0.0\th1:x=\n"
        "dep\tgolang.org/x/text\tv0.3.7\th1:y=\n"
    )
    elf = bytearray(b"\x7fELF" + b"\0" * 60)
    elf += b"\x11" * 5000 + start + modinfo.encode() + end + b"\x22" * 3000
    header = b"\xff Go buildinf:" + bytes([8, 0]) + b"\0" * 16  # pointer size 8, flags 0
    elf += header + b"\x33" * 100
    chunks = [bytes(elf[i : i + 1000]) for i in range(0, len(elf), 1000)]
    record = reduce_executable(iter(chunks))
    assert record is not None
    layer = Layer().file("usr/bin/old", bytes(elf), mode=0o755).build()
    golang = {p.name: p for p in run(layer).packages if p.type == "golang"}
    assert {n: p.version for n, p in golang.items()} == {
        "example.com/old": "1.0.0",
        "golang.org/x/text": "0.3.7",
    }  # no stdlib: the version is only reachable through pointers


def test_non_go_executables_are_skipped() -> None:
    script = b"#!/bin/sh\necho \xff Go buildinf: not an ELF\n" * 10
    assert reduce_executable(iter([script])) is None
    assert reduce_executable(iter([b"\x7fELF" + b"\0" * 5000])) is None
    # Magic split across two chunks, inline format, but the strings are truncated.
    cut = b"\x7fELF" + b"\0" * 10 + b"\xff Go buil"
    assert reduce_executable(iter([cut, b"dinf:\x08\x02" + b"\0" * 16 + b"\x7f"])) is None


def test_parse_modinfo_replacements() -> None:
    text = (
        "path\tx/cmd\nmod\tx\t(devel)\t\ndep\ta\tv1.0.0\th1:a\n=>\tb\tv2.0.0\th1:b\n"
        "dep\tc\tv0.1.0\n=>\t/src/c\t(devel)\t\nbuild\tGOOS=linux\n"
    )
    assert parse_modinfo(text) == [
        ("x", "(devel)", True),
        ("b", "v2.0.0", False),
        ("c", "(devel)", False),
    ]
    assert re.match(r"^\(devel\)$", parse_modinfo("mod\tx\n")[0][1])


def test_go_expectation_is_not_empty(go_binary: GoBinary) -> None:
    expected = _go_expected(go_binary.buildinfo)
    assert {name for name, _ in expected} == {
        "stdlib",
        "example.com/app",
        "example.com/lib",
        "example.com/fork",
        "example.com/plain",
    }
