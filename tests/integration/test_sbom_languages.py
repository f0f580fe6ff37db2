"""``kubegate sbom`` on an OCI layout of an application image: Python, Node, Go and Java.

The image is written with ``tests/fixtures/oci.py`` (an ``oci:`` layout on disk, read by the
real CLI in a subprocess); its Go executable is the one Go builds in ``tests/fixtures/gobuild``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.conftest import RunCli
from tests.fixtures.gobuild import GoBinary
from tests.fixtures.layers import DEBIAN_OS_RELEASE, Layer
from tests.fixtures.oci import Blob, build_image, write_oci_layout

SITE = "usr/local/lib/python3.11/site-packages"
DEBIAN_INFO = "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info"


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _pom(group: str, artifact: str, version: str) -> bytes:
    return f"groupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


def _blob(layer: Layer) -> Blob:
    built = layer.build("gzip")
    return Blob(built.data, built.descriptor.media_type)


def _image(go: GoBinary) -> tuple[Blob, Blob]:
    status = (
        "Package: python3-urllib3\nStatus: install ok installed\nArchitecture: all\n"
        "Source: python-urllib3\nVersion: 1.26.12-1\n"
    )
    base = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", status)
        .file("var/lib/dpkg/info/python3-urllib3.list", f"/{DEBIAN_INFO}/PKG-INFO\n")
        .file(f"{DEBIAN_INFO}/PKG-INFO", "Name: urllib3\nVersion: 1.26.12\n")
        .file(f"{SITE}/Django-4.2.1.dist-info/METADATA", "Name: Django\nVersion: 4.2.1\n")
    )  # fmt: skip
    war = _zip(
        {
            "META-INF/maven/com.example/shop/pom.properties": _pom("com.example", "shop", "1.0"),
            "WEB-INF/lib/log4j-core-2.14.1.jar": _zip(
                {
                    "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties": _pom(
                        "org.apache.logging.log4j", "log4j-core", "2.14.1"
                    )
                }
            ),
        }
    )
    app = (
        Layer()
        .whiteout(f"{SITE}/Django-4.2.1.dist-info")
        .file(f"{SITE}/Django-4.2.11.dist-info/METADATA", "Name: Django\nVersion: 4.2.11\n")
        .file("srv/node_modules/@types/node/package.json",
              '{"name": "@types/node", "version": "20.11.5"}')
        .file("srv/node_modules/lodash/package.json", '{"name": "lodash", "version": "4.17.20"}')
        .file("usr/local/bin/app", go.data, mode=0o755)
        .file("opt/tomcat/webapps/shop.war", war)
    )  # fmt: skip
    return _blob(base), _blob(app)


def test_sbom_lists_language_packages_with_purls(
    run_cli: RunCli, go_binary: GoBinary, tmp_path: Path
) -> None:
    base, app = _image(go_binary)
    layout = write_oci_layout(tmp_path / "layout", {"1.0": build_image([base, app])})

    result = run_cli("sbom", f"oci:{layout}:1.0", "--format", "json")

    assert result.returncode == 0, result.stderr
    packages = json.loads(result.stdout)["packages"]
    found = {(p["type"], p["name"], p["version"]): p for p in packages}
    go_version = go_binary.go_version.removeprefix("go")
    purls = {key: p["purl"] for key, p in found.items() if key[0] != "deb"}
    assert purls == {
        ("pypi", "django", "4.2.11"): "pkg:pypi/django@4.2.11",
        ("pypi", "urllib3", "1.26.12"): "pkg:pypi/urllib3@1.26.12",
        ("npm", "@types/node", "20.11.5"): "pkg:npm/%40types/node@20.11.5",
        ("npm", "lodash", "4.17.20"): "pkg:npm/lodash@4.17.20",
        ("golang", "stdlib", go_version): f"pkg:golang/stdlib@v{go_version}",
        ("golang", "example.com/app", "(devel)"): "pkg:golang/example.com/app",
        ("golang", "example.com/lib", "(devel)"): "pkg:golang/example.com/lib",
        ("golang", "example.com/fork", "0.5.0"): "pkg:golang/example.com/fork@v0.5.0",
        ("golang", "example.com/plain", "0.3.1"): "pkg:golang/example.com/plain@v0.3.1",
        ("maven", "com.example:shop", "1.0"): "pkg:maven/com.example/shop@1.0",
        ("maven", "org.apache.logging.log4j:log4j-core", "2.14.1"): (
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
        ),
    }
    assert found[("pypi", "urllib3", "1.26.12")]["osOwned"] is True
    assert found[("pypi", "django", "4.2.11")]["osOwned"] is False
    assert found[("pypi", "django", "4.2.11")]["layer"] == app.digest
    log4j = found[("maven", "org.apache.logging.log4j:log4j-core", "2.14.1")]
    assert log4j["location"] == "/opt/tomcat/webapps/shop.war!/WEB-INF/lib/log4j-core-2.14.1.jar"
    assert found[("golang", "example.com/plain", "0.3.1")]["location"] == "/usr/local/bin/app"

    bom = run_cli("sbom", f"oci:{layout}:1.0", "--format", "cyclonedx-json")
    assert bom.returncode == 0, bom.stderr
    components = {c["purl"] for c in json.loads(bom.stdout)["components"]}
    assert set(purls.values()) <= components


def _advisories(directory: Path) -> Path:
    """Real public advisories (ids, packages, fixed versions, severities as published)."""
    directory.mkdir()
    records = [
        {
            "id": "GHSA-35jh-r3h4-6jhm",
            "aliases": ["CVE-2021-23337"],
            "modified": "2024-02-10T00:00:00Z",
            "summary": "Command Injection in lodash",
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}
            ],
            "database_specific": {"severity": "HIGH"},
            "affected": [
                {
                    "package": {"ecosystem": "npm", "name": "lodash"},
                    "ranges": [
                        {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}
                    ],
                }
            ],
        },
        {
            "id": "GHSA-jfh8-c2jp-5v3q",
            "aliases": ["CVE-2021-44228"],
            "modified": "2024-03-01T00:00:00Z",
            "summary": "Remote code injection in Log4j",
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}
            ],
            "database_specific": {"severity": "CRITICAL"},
            "affected": [
                {
                    "package": {
                        "ecosystem": "Maven",
                        "name": "org.apache.logging.log4j:log4j-core",
                    },
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "2.13.0"}, {"fixed": "2.15.0"}],
                        }
                    ],
                }
            ],
        },
        {
            # Fixed in Django 4.2.3: the image upgraded Django to 4.2.11 in its second layer.
            "id": "GHSA-jh3w-4vvf-mjgr",
            "aliases": ["CVE-2023-36053"],
            "modified": "2024-01-01T00:00:00Z",
            "summary": "Django Denial of service vulnerability in EmailValidator/URLValidator",
            "database_specific": {"severity": "HIGH"},
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "django"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "4.0"}, {"fixed": "4.2.3"}],
                        }
                    ],
                }
            ],
        },
        {
            # urllib3 in the image belongs to Debian's python3-urllib3: not matched here.
            "id": "GHSA-v845-jxx5-vc9f",
            "aliases": ["CVE-2023-43804"],
            "modified": "2024-01-01T00:00:00Z",
            "summary": "Cookie HTTP header isn't stripped on cross-origin redirects",
            "database_specific": {"severity": "HIGH"},
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "urllib3"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.26.17"}]}
                    ],
                }
            ],
        },
        {
            "id": "DEBIAN-CVE-2023-43804",
            "upstream": ["CVE-2023-43804"],
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "python-urllib3"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": "1.26.12-1+deb12u1"}],
                        }
                    ],
                }
            ],
        },
        {
            "id": "GO-2023-1878",
            "aliases": ["CVE-2023-29406"],
            "modified": "2024-01-01T00:00:00Z",
            "summary": "Insufficient sanitization of Host header in net/http",
            "affected": [
                {
                    "package": {"ecosystem": "Go", "name": "stdlib"},
                    "ranges": [
                        {
                            "type": "SEMVER",
                            "events": [
                                {"introduced": "0"},
                                {"fixed": "1.19.11"},
                                {"introduced": "1.20.0-0"},
                                {"fixed": "1.20.6"},
                            ],
                        }
                    ],
                }
            ],
        },
    ]
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return directory


def test_image_finds_language_advisories(
    run_cli: RunCli, go_binary: GoBinary, tmp_path: Path
) -> None:
    base, app = _image(go_binary)
    layout = write_oci_layout(tmp_path / "layout", {"1.0": build_image([base, app])})
    go_version = go_binary.go_version.removeprefix("go")
    db = tmp_path / "osv.sqlite3"
    advisories = _advisories(tmp_path / "osv")
    imported = run_cli("db", "import", "--db", str(db), str(advisories))
    assert imported.returncode == 0, imported.stderr

    result = run_cli(
        "image", f"oci:{layout}:1.0", "--db", str(db), "--skip-db-update", "--format", "json"
    )

    assert result.returncode == 1, result.stderr
    findings = {(f["package"]["name"], f["id"]): f for f in json.loads(result.stdout)["findings"]}
    log4shell = findings[("org.apache.logging.log4j:log4j-core", "CVE-2021-44228")]
    assert log4shell["severity"] == "CRITICAL" and log4shell["blocking"] is True
    assert log4shell["package"]["ecosystem"] == "Maven"
    assert log4shell["fixedVersions"] == ["2.15.0"]
    lodash = findings[("lodash", "CVE-2021-23337")]
    assert lodash["severity"] == "HIGH" and lodash["package"]["purl"] == "pkg:npm/lodash@4.17.20"
    # Django was upgraded past the fix in layer 2; the OS-owned urllib3 is judged by Debian's
    # record on its source package, never by the PyPI advisory.
    assert not any(name == "django" for name, _ in findings)
    assert ("urllib3", "CVE-2023-43804") not in findings
    assert ("python3-urllib3", "CVE-2023-43804") in findings
    if go_version.startswith("1.19.") and int(go_version.split(".")[2]) < 11:
        assert ("stdlib", "CVE-2023-29406") in findings
