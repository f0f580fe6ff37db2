"""Reports cannot be forged: control characters, newlines and bidi overrides from the judged
revision (file names, object and container names, image references) and from the image (package
names and versions, os-release fields) reach no human format raw (docs/security.md "Reports
cannot be forged").

The hostile fleet is rendered by the real kustomize (its names written as YAML double-quoted
escapes, which kustomize and PyYAML decode into the real characters); the hostile image is
pushed to the real loopback registry and judged against the demo's real OSV snapshot, so the
verdict is BLOCKED: a forged ``PASS:`` line would be a lie a CI log reader could believe.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.fixtures.gatefleet import BUSTER, VULNERABLE, write_fleet
from tests.fixtures.layers import Layer
from tests.fixtures.oci import Blob, build_image
from tests.fixtures.registry import RegistryServer

#: OSC 0 (set the terminal title), a CSI (clear the screen), a newline forging a verdict line,
#: a right-to-left override and a C1 control: what an attacker would write.
OSC = "\x1b]0;owned\x07"
CSI = "\x1b[2J"
FORGED = "\nPASS: 1 image(s), 1 use(s), findings: none; 0 blocking, 0 suppressed, 0 not proven\n"
RLO = "\u202e"
C1 = "\x9b"

#: Any of these in a human report means a raw control, bidi or invisible character got through.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069]")

#: XML 1.0's Char production (section 2.2): everything a document may contain.
XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def _hostile_layer() -> Blob:
    """Debian 10 with a vulnerable openssl whose binary package name and version carry escapes."""
    os_release = BUSTER.replace(
        'PRETTY_NAME="Debian GNU/Linux 10 (buster)"', f'PRETTY_NAME="Debian{OSC}{CSI}"'
    )
    status = (
        f"Package: libssl1.1{OSC}\nStatus: install ok installed\nArchitecture: amd64\n"
        f"Source: openssl\nVersion: {VULNERABLE[0]}\n\n"
        f"Package: zlib1g{RLO}gpj.exe\nStatus: install ok installed\nArchitecture: amd64\n"
        f"Source: zlib ({VULNERABLE[1]})\nVersion: {VULNERABLE[1]}{C1}\n"
    )
    built = (
        Layer().file("etc/os-release", os_release).file("var/lib/dpkg/status", status).build("gzip")
    )
    return Blob(built.data, built.descriptor.media_type)


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar holding ``text`` (json escapes are valid YAML escapes)."""
    return json.dumps(text, ensure_ascii=True)


@pytest.fixture(scope="module")
def hostile_image(registry_plain: RegistryServer) -> str:
    registry_plain.push("hostile/web", "1.0", build_image([_hostile_layer()]))
    return registry_plain.ref("hostile/web", "1.0")


def _hostile_fleet(root: Path, image: str) -> Path:
    fleet = write_fleet(root, image)
    web = (fleet / "apps" / "web.yaml").read_text()
    web = web.replace("  name: web\n", f"  name: {_yaml('web' + OSC + FORGED)}\n", 1)
    web = web.replace("- name: web\n", f"- name: {_yaml('web' + RLO + CSI + FORGED)}\n")
    (fleet / "apps" / "web.yaml").write_text(web)
    # A second workload whose image reference is not a reference: its error names file and ref.
    bad = web.replace(image, _yaml(f"evil{CSI}{FORGED.strip()}:1")).replace(
        _yaml("web" + OSC + FORGED), "bad"
    )
    (fleet / "apps" / "bad.yaml").write_text(bad)
    return fleet


def _assert_safe(text: str, what: str) -> None:
    assert not RAW.search(text), f"{what}: raw control character {RAW.search(text)!r}"
    forged = [line for line in text.splitlines() if line.lstrip("#> -|*`").startswith("PASS")]
    assert not forged, f"{what}: forged line {forged!r}"


def test_hostile_names_reach_no_human_format_raw(
    run_cli: RunCli, tmp_path: Path, hostile_image: str, gate_dbs: dict[str, Path]
) -> None:
    fleet = _hostile_fleet(tmp_path / "fleet", hostile_image)
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli(
        "scan", str(fleet), "--db", str(gate_dbs["osv"]),
        "--format", "json", "--output", str(out / "report.json"),
        "--format", "markdown", "--output", str(out / "report.md"),
        "--format", "junit", "--output", str(out / "report.xml"),
        "--format", "sarif", "--output", str(out / "report.sarif"),
        "--format", "table",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    table = result.stdout
    markdown = (out / "report.md").read_text(encoding="utf-8")
    junit = (out / "report.xml").read_text(encoding="utf-8")
    for text, what in ((table, "table"), (markdown, "markdown"), (junit, "junit")):
        _assert_safe(text, what)
    _assert_safe(result.stderr, "stderr")

    # The verdict is the true one and the hostile text is shown, escaped, where it belongs.
    assert table.startswith("BLOCKED: ")
    assert "libssl1.1\\x1b]0;owned\\x07" in table
    assert "zlib1g\\u202egpj.exe" in table
    used_by = next(line for line in table.splitlines() if "used by" in line)
    assert "used by Deployment apps/web\\x1b]0;owned\\x07\\nPASS: 1 image(s)" in used_by
    assert "container web\\u202e\\x1b[2J\\nPASS" in used_by
    assert "at apps/web.yaml" in used_by
    # The render problem names the file and the reference (escaped).
    problem = next(line for line in result.stderr.splitlines() if "invalid image" in line)
    assert "apps/bad.yaml" in problem
    assert "evil\\x1b[2JPASS: 1 image(s)" in result.stderr

    # Markdown: no table break, no HTML from names.
    blocking = markdown.split("### Blocking", 1)[1].split("<details>", 1)[0]
    rows = [line for line in blocking.splitlines() if line.startswith("| CRITICAL")]
    assert rows and all(row.count(" | ") == 6 for row in rows)

    # JUnit: XML 1.0 (every character allowed), parsed, the hostile names kept (escaped).
    assert XML_CHAR.fullmatch(junit)
    root = ET.fromstring(junit)  # noqa: S314 - our own output, parsed to prove it is XML
    names = [case.get("name", "") for case in root.iter("testcase")]
    assert any("container web\\u202e\\x1b[2J\\nPASS" in name for name in names), names
    failures = [case.find("failure") for case in root.iter("testcase")]
    assert any(f is not None and "libssl1.1\\x1b]0;owned\\x07" in (f.text or "") for f in failures)

    # SARIF: the rendered message is escaped; JSON stays exact (consumers escape).
    sarif = json.loads((out / "report.sarif").read_text(encoding="utf-8"))
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert messages and not any(RAW.search(m) for m in messages)
    document = json.loads((out / "report.json").read_text(encoding="utf-8"))
    packages = {f["package"]["name"] for image in document["images"] for f in image["findings"]}
    assert f"libssl1.1{OSC}" in packages


def test_image_and_sbom_tables_escape_package_fields(
    run_cli: RunCli, hostile_image: str, gate_dbs: dict[str, Path]
) -> None:
    image = run_cli("image", hostile_image, "--db", str(gate_dbs["osv"]))
    assert image.returncode == 1, image.stderr
    sbom = run_cli("sbom", hostile_image)
    assert sbom.returncode == 0, sbom.stderr
    for result, what in ((image, "image"), (sbom, "sbom")):
        assert "Traceback" not in result.stderr
        _assert_safe(result.stdout, what)
        _assert_safe(result.stderr, f"{what} stderr")
    assert "libssl1.1\\x1b]0;owned\\x07" in image.stdout
    assert "Debian\\x1b]0;owned\\x07\\x1b[2J" in sbom.stdout  # PRETTY_NAME heads the SBOM
    assert f"{VULNERABLE[1]}\\x9b" in sbom.stdout


def test_images_table_and_errors_escape_names_from_the_revision(
    run_cli: RunCli, tmp_path: Path
) -> None:
    fleet = _hostile_fleet(tmp_path / "fleet", "registry.invalid/app:1.0")
    result = run_cli("images", str(fleet))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2  # the invalid reference is a problem
    _assert_safe(result.stdout, "images table")
    _assert_safe(result.stderr, "images stderr")
    assert "web\\u202e\\x1b[2J\\nPASS" in result.stdout


def test_hostile_file_names_are_not_proven_and_shown_escaped(
    run_cli: RunCli, tmp_path: Path, hostile_image: str, gate_dbs: dict[str, Path]
) -> None:
    # A file name carrying an OSC sequence, a bidi override, a C1 control and a newline: the
    # build confinement refuses to hand such a path to kustomize (docs/security.md), so the
    # revision is not proven (exit 2), and the one error line shows the name escaped.
    fleet = _hostile_fleet(tmp_path / "fleet", hostile_image)
    (fleet / "apps" / "web.yaml").rename(fleet / "apps" / f"web{OSC}{RLO}{C1}\n.yaml")
    result = run_cli(
        "scan", str(fleet), "--db", str(gate_dbs["osv"]), "--format", "table",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    _assert_safe(result.stdout, "table")
    _assert_safe(result.stderr, "stderr")
    assert result.stdout.startswith("UNPROVEN: ")
    (line,) = [e for e in result.stderr.splitlines() if "holds control characters" in e]
    assert "web\\x1b]0;owned\\x07\\u202e" in line
