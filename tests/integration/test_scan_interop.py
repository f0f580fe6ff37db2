"""``kubegate scan`` interop end to end: Trivy ignore files, OpenVEX, the registry allow-list,
JUnit and Markdown reports and ``--pin-digests`` (checked with the real ``kubectl kustomize``).

Images live in the real loopback registry, advisories come from the demo's OSV snapshot (plus a
synthetic unfixed flaw in zlib), and every run goes through the CLI in a subprocess. Reports that
name the registry's port or a temporary path are normalised before they meet their golden file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, RunCli, user_config
from tests.fixtures.gatefleet import DEPLOYMENT, FIXED, VULNERABLE, gate_layer, write_fleet
from tests.fixtures.golden import Golden
from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.oci import build_image
from tests.fixtures.registry import RegistryServer


@pytest.fixture(scope="module")
def pushed(registry_plain: RegistryServer) -> dict[str, str]:
    """References and digests of a vulnerable and a fixed image, and a second repository."""
    vulnerable = registry_plain.push(
        "interop/web", "vulnerable", build_image([gate_layer(*VULNERABLE)])
    )
    fixed = registry_plain.push("interop/web", "fixed", build_image([gate_layer(*FIXED)]))
    worker = registry_plain.push("interop/worker", "2.0", build_image([gate_layer(*FIXED)]))
    return {
        "host": registry_plain.host,
        "vulnerable": registry_plain.ref("interop/web", "vulnerable"),
        "vulnerable@": vulnerable,
        "fixed": registry_plain.ref("interop/web", "fixed"),
        "fixed@": fixed,
        "worker": registry_plain.ref("interop/worker", "2.0"),
        "worker@": worker,
    }


def _work(tmp_path: Path) -> Path:
    # Implicit exceptions files are read from the user config directory (never from the
    # working directory); tests also run there so that relative --ignorefile names resolve.
    return user_config(tmp_path)


def _scan(run_cli: RunCli, fleet: Path, db: Path, *args: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    result = run_cli("scan", str(fleet), "--db", str(db), *args, cwd=cwd)
    assert "Traceback" not in result.stderr
    return result


def _json(run_cli: RunCli, fleet: Path, db: Path, *args: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    result = _scan(run_cli, fleet, db, "--format", "json", *args, cwd=cwd)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def _stable(text: str, tmp_path: Path, pushed: dict[str, str]) -> str:
    return text.replace(str(tmp_path), "<tmp>").replace(pushed["host"], "<registry>")


def _suppressions(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        f["id"]: f["suppressed"][0]["exception"]
        for image in report["images"]
        for f in image["findings"]
        if f["suppressed"]
    }


# --- Trivy ignore files -------------------------------------------------------------------


def test_trivyignore_entry_without_expiry_is_permanent_and_listed(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    golden: Golden,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    work = _work(tmp_path)
    (work / ".trivyignore").write_text(
        "# zlib gzip headers are never parsed here\nCVE-2099-1000\n\n# unrelated\nCVE-2000-0001\n"
    )
    table = _scan(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    assert table.returncode == 0, table.stderr
    golden("scan-trivyignore.txt", _stable(table.stdout, tmp_path, pushed))
    assert "Permanent exceptions (no expiry):" in table.stdout
    _, report = _json(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    exception = _suppressions(report)["CVE-2099-1000"]
    assert exception["expires"] is None
    assert exception["reason"] == "zlib gzip headers are never parsed here"
    assert exception["where"].endswith(".trivyignore:2")
    assert len(report["permanentExceptions"]) == 2
    # Every report format names the permanent exceptions.
    for fmt in ("sarif", "junit", "markdown"):
        other = _scan(run_cli, fleet, gate_dbs["unfixed"], "--format", fmt, cwd=work)
        assert other.returncode == 0
        assert "CVE-2099-1000" in other.stdout and "no expiry" in other.stdout, fmt


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        ("CVE-2099-1000 exp:2999-01-01", 0, None),
        ("CVE-2099-1000 exp:2020-01-01", 1, "expired on 2019-12-31"),
        ("CVE-2099-1000 exp:soon", 1, "invalid expiry 'soon'"),
        ("CVE-2099-1000 until:2999-01-01", 1, "unknown field"),
    ],
    ids=["future", "past", "bad-date", "unknown-field"],
)
def test_trivyignore_expiry(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    line: str,
    code: int,
    message: str | None,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    work = _work(tmp_path)
    (work / ".trivyignore").write_text(line + "\n")
    result, report = _json(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    assert result.returncode == code, result.stderr
    if message:
        assert message in report["exceptionProblems"][0]
        assert message in result.stderr
    else:
        assert report["permanentExceptions"] == []


TRIVY_YAML = """vulnerabilities:
  - id: CVE-2099-1000
    purls: ["pkg:deb/debian/zlib1g"]
    paths: ["var/lib/dpkg/*"]
    statement: zlib is only used to deflate here
    expired_at: 2999-01-01
  - id: CVE-2099-1000
    purls: ["pkg:deb/debian/libssl1.1"]
  - {id: CVE-2021-3711, paths: ["usr/lib/python3/*"]}
  - {id: CVE-2022-0778, nope: 1}
misconfigurations:
  - id: AVD-DS-0002
"""


def test_trivyignore_yaml_scopes_and_lookup_order(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    work = _work(tmp_path)
    (work / ".trivyignore.yaml").write_text(TRIVY_YAML)
    (work / ".trivyignore").write_text("CVE-2000-0001\n")  # read only without the YAML file
    result, report = _json(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    assert result.returncode == 0, result.stderr
    exception = _suppressions(report)["CVE-2099-1000"]
    assert exception["reason"] == "zlib is only used to deflate here"
    assert exception["expires"] == "2998-12-31"  # Trivy: expired from that day on
    assert ".trivyignore.yaml: vulnerabilities[1]" in exception["where"]
    problems = "\n".join(report["exceptionProblems"])
    assert "vulnerabilities[4]: unknown field(s) nope" in problems
    assert "misconfigurations do not apply" in problems
    assert [p.split(" [")[0] for p in report["permanentExceptions"]] == [
        "CVE-2099-1000 (packages pkg:deb/debian/libssl1.1): listed in .trivyignore.yaml",
        "CVE-2021-3711 (paths usr/lib/python3/*): listed in .trivyignore.yaml",
    ]
    # kubegate's own file comes first in the lookup order.
    (work / ".kubegateignore.yaml").write_text("vulnerabilities: []\n")
    blocked, _ = _json(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    assert blocked.returncode == 1


def test_trivyignore_yaml_out_of_scope_purl_does_not_suppress(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    work = _work(tmp_path)
    (work / ".trivyignore.yaml").write_text(
        "vulnerabilities:\n  - {id: CVE-2099-1000, purls: ['pkg:deb/debian/libssl1.1']}\n"
    )
    result, report = _json(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    assert result.returncode == 1
    assert report["summary"]["suppressed"] == 0


def test_ignorefile_option_picks_the_format_by_name(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    work = _work(tmp_path)
    (work / ".trivyignore.ci").write_text("CVE-2099-1000 exp:2999-01-01\n")
    (work / "exceptions.txt").write_text("CVE-2099-1000 exp:2999-01-01\n")
    trivy, _ = _json(
        run_cli, fleet, gate_dbs["unfixed"], "--ignorefile", ".trivyignore.ci", cwd=work
    )
    assert trivy.returncode == 0, trivy.stderr
    kubegate = _scan(
        run_cli, fleet, gate_dbs["unfixed"], "--ignorefile", "exceptions.txt", cwd=work
    )
    assert kubegate.returncode == 3
    assert "exceptions.txt: expected a mapping" in kubegate.stderr
    assert len(kubegate.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [("- just a list\n", "expected a mapping"), ("vulnerabilities: [\n", "invalid YAML")],
)
def test_bad_trivyignore_yaml_is_a_config_error(
    run_cli: RunCli, tmp_path: Path, body: str, message: str
) -> None:
    fleet = write_fleet(tmp_path / "fleet", "nginx:1")
    work = _work(tmp_path)
    (work / ".trivyignore.yaml").write_text(body)
    result = run_cli("scan", str(fleet), cwd=work)
    assert result.returncode == 3
    assert ".trivyignore.yaml: " + message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- OpenVEX --------------------------------------------------------------------------------


def _vex(path: Path, *statements: dict, timestamp: str = "2026-01-01T00:00:00Z") -> Path:  # type: ignore[type-arg]
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.invalid/vex/interop",
        "author": "kubegate tests",
        "timestamp": timestamp,
        "version": 1,
        "statements": list(statements),
    }
    path.write_text(json.dumps(document, indent=2))
    return path


def test_vex_not_affected_and_fixed_suppress_with_justification(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    golden: Golden,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["vulnerable"])
    name = pushed["vulnerable"].rsplit(":", 1)[0]
    oci = f"pkg:oci/web@{pushed['vulnerable@'].replace(':', '%3A')}?repository_url={name}"
    vex = _vex(
        tmp_path / "web.openvex.json",
        {
            "vulnerability": {"name": "CVE-2021-3711"},
            "products": [{"@id": oci, "subcomponents": [{"@id": "pkg:deb/debian/libssl1.1"}]}],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
            "impact_statement": "SM2 is never used",
        },
        {
            "vulnerability": {"@id": "https://nvd.nist.gov/vuln/detail/CVE-2022-37434"},
            "products": [{"@id": "pkg:deb/debian/zlib1g"}],
            "status": "fixed",
        },
        {
            "vulnerability": {"name": "DSA-5103-1", "aliases": ["CVE-2022-0778"]},
            "products": [{"@id": f"{name}:vulnerable"}],
            "status": "not_affected",
            "justification": "inline_mitigations_already_exist",
        },
        {
            "vulnerability": {"name": "CVE-2021-3712"},
            "products": [{"@id": f"{name}:vulnerable"}],
            "status": "not_affected",
        },
        {"vulnerability": {"name": "CVE-2022-1292"}, "products": [], "status": "fixed"},
        {
            "vulnerability": {"name": "CVE-2022-2068"},
            "products": [{"@id": f"{name}:vulnerable"}],
            "status": "wontfix",
        },
    )
    result, report = _json(run_cli, fleet, gate_dbs["osv"], "--vex", str(vex))
    assert result.returncode == 1, result.stderr
    suppressed = _suppressions(report)
    # DSA-5103-1 names two flaws: a statement about the advisory covers both.
    assert set(suppressed) == {"CVE-2021-3711", "CVE-2022-37434", "CVE-2022-0778", "CVE-2021-4160"}
    assert suppressed["CVE-2021-3711"]["source"] == "vex"
    assert suppressed["CVE-2021-3711"]["justification"] == "vulnerable_code_not_in_execute_path"
    assert "SM2 is never used" in suppressed["CVE-2021-3711"]["reason"]
    assert suppressed["CVE-2022-37434"]["reason"] == "VEX fixed"
    problems = report["exceptionProblems"]
    assert len(problems) == 3
    assert "statements[4]: not_affected needs a justification" in problems[0]
    assert "statements[5]: products must be a non-empty list" in problems[1]
    assert "statements[6]: status must be one of" in problems[2]
    assert all("suppresses nothing" in line for line in problems)
    assert "statements[4]" in result.stderr
    blocking = {f["id"] for f in report["images"][0]["findings"] if f["blocking"]}
    assert "CVE-2021-3712" in blocking and "CVE-2021-3711" not in blocking
    table = _scan(run_cli, fleet, gate_dbs["osv"], "--vex", str(vex))
    golden("scan-vex.txt", _stable(table.stdout, tmp_path, pushed))
    assert "vulnerable_code_not_in_execute_path" in table.stdout
    markdown = _scan(run_cli, fleet, gate_dbs["osv"], "--vex", str(vex), "--format", "markdown")
    golden("scan-vex.md", _stable(markdown.stdout, tmp_path, pushed))
    assert "SM2 is never used" in markdown.stdout.split("Suppressed and accepted", 1)[1]


def test_vex_latest_statement_wins_and_products_must_match(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    name = pushed["fixed"].rsplit(":", 1)[0]
    not_affected = {
        "vulnerability": {"name": "CVE-2099-1000"},
        "products": [{"@id": f"{name}@{pushed['fixed@']}"}],
        "status": "not_affected",
        "justification": "vulnerable_code_not_present",
        "timestamp": "2026-02-01T00:00:00Z",
    }
    passed = _vex(tmp_path / "a.json", not_affected)
    result, _ = _json(run_cli, fleet, gate_dbs["unfixed"], "--vex", str(passed))
    assert result.returncode == 0, result.stderr
    later = _vex(
        tmp_path / "b.json",
        {**not_affected, "status": "affected", "timestamp": "2026-03-01T00:00:00Z"},
    )
    result, _ = _json(
        run_cli, fleet, gate_dbs["unfixed"], "--vex", str(passed), "--vex", str(later)
    )
    assert result.returncode == 1
    other = _vex(
        tmp_path / "c.json",
        {**not_affected, "products": [{"@id": f"{name}@{pushed['vulnerable@']}"}]},
        {**not_affected, "products": [{"@id": f"{name}:other-tag"}]},
        {**not_affected, "products": [{"@id": "pkg:oci/web?repository_url=elsewhere.invalid/web"}]},
    )
    result, report = _json(run_cli, fleet, gate_dbs["unfixed"], "--vex", str(other))
    assert result.returncode == 1
    assert report["exceptionProblems"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [("{not json", "not a JSON document"), ('{"statements": 3}', "not an OpenVEX document")],
)
def test_bad_vex_file_is_a_config_error(
    run_cli: RunCli, tmp_path: Path, body: str, message: str
) -> None:
    fleet = write_fleet(tmp_path / "fleet", "nginx:1")
    (tmp_path / "bad.json").write_text(body)
    result = run_cli("scan", str(fleet), "--vex", str(tmp_path / "bad.json"))
    assert result.returncode == 3
    assert message in result.stderr and "bad.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run_cli("scan", str(fleet), "--vex", str(tmp_path / "missing.json"))
    assert missing.returncode == 3 and "cannot read VEX document" in missing.stderr


# --- registry allow-list --------------------------------------------------------------------


def _two_registries_fleet(root: Path, allowed_image: str, other_image: str) -> Path:
    fleet = write_fleet(root, allowed_image)
    other = DEPLOYMENT.replace("web", "sidecar").replace("IMAGE", other_image)
    (fleet / "apps" / "sidecar.yaml").write_text(other)
    return fleet


def test_image_from_a_registry_not_allowed_blocks_without_any_request(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    http_serve: HTTPServe,
    golden: Golden,
) -> None:
    other = f"127.0.0.1:{http_serve.port}/evil/miner:1.0"
    fleet = _two_registries_fleet(tmp_path / "fleet", pushed["fixed"], other)
    result, report = _json(
        run_cli, fleet, gate_dbs["osv"], "--allowed-registries", f"{pushed['host']},quay.invalid"
    )
    assert result.returncode == 1, result.stderr
    assert sum(http_serve.requests.values()) == 0
    images = {image["image"]: image for image in report["images"]}
    assert images[other]["digest"] is None and images[other]["errors"] == []
    assert "registry 127.0.0.1:" in images[other]["policyViolations"][0]
    assert images[pushed["fixed"]]["digest"] == pushed["fixed@"]
    assert report["verdict"] == "BLOCKED" and report["summary"]["policyViolations"] == 1
    table = _scan(run_cli, fleet, gate_dbs["osv"], "--allowed-registries", pushed["host"])
    stable = _stable(table.stdout, tmp_path, pushed).replace(str(http_serve.port), "<port>")
    golden("scan-registry-not-allowed.txt", stable)
    assert sum(http_serve.requests.values()) == 0
    # Allowed, the same image is asked for: the counter does see requests.
    both = f"{pushed['host']},127.0.0.1:{http_serve.port}"
    reached, _ = _json(run_cli, fleet, gate_dbs["osv"], "--allowed-registries", both)
    assert reached.returncode == 2
    assert sum(http_serve.requests.values()) > 0


def test_allowed_registries_from_config(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    http_serve: HTTPServe,
) -> None:
    other = f"127.0.0.1:{http_serve.port}/evil/miner:1.0"
    fleet = _two_registries_fleet(tmp_path / "fleet", pushed["fixed"], other)
    work = _work(tmp_path)
    (work / "kubegate.yaml").write_text(f"registry:\n  allowedRegistries: ['{pushed['host']}']\n")
    result, _ = _json(run_cli, fleet, gate_dbs["osv"], cwd=work)
    assert result.returncode == 1
    assert sum(http_serve.requests.values()) == 0
    sarif = _scan(run_cli, fleet, gate_dbs["osv"], "--format", "sarif", cwd=work)
    rules = [r["ruleId"] for r in json.loads(sarif.stdout)["runs"][0]["results"]]
    assert rules == ["kubegate/registry-not-allowed"]
    (work / "kubegate.yaml").write_text("registry:\n  allowedRegistries: ['bad host']\n")
    bad = run_cli("scan", str(fleet), cwd=work)
    assert bad.returncode == 3 and "registry.allowedRegistries" in bad.stderr


def test_invalid_allowed_registry_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path / "fleet", "nginx:1")
    result = run_cli("scan", str(fleet), "--allowed-registries", "https://x/")
    assert result.returncode == 3
    assert "--allowed-registries: invalid registry host" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- JUnit and Markdown ---------------------------------------------------------------------


def test_junit_has_a_case_per_use_and_failures_list_blocking_findings(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    golden: Golden,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["vulnerable"], helm=True)
    (fleet / "apps" / "worker.yaml").write_text(
        DEPLOYMENT.replace("web", "worker").replace("IMAGE", pushed["worker"])
    )
    result = _scan(run_cli, fleet, gate_dbs["osv"], "--format", "junit")
    assert result.returncode == 1
    golden("scan-junit-fleet.xml", _stable(result.stdout, tmp_path, pushed))
    root = ET.fromstring(result.stdout)  # noqa: S314 - our own output
    (suite,) = root.findall("testsuite")
    cases = {case.get("name", "").split(" (")[0]: case for case in suite.findall("testcase")}
    assert len(cases) == 3
    assert {"Deployment apps/web container web", "Deployment apps/worker container worker"} < set(
        cases
    )
    (helm,) = (case for name, case in cases.items() if name.startswith("HelmRelease"))
    assert helm.get("classname") == "kubegate.notSeen" and helm.find("error") is not None
    web = cases["Deployment apps/web container web"]
    failure = web.find("failure")
    assert failure is not None and "CVE-2021-3711" in (failure.text or "")
    assert "CRITICAL CVE-2022-37434 in zlib1g" in (failure.text or "")
    assert cases["Deployment apps/worker container worker"].find("failure") is None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "BLOCKED"


def test_markdown_comment(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["vulnerable"])
    result = _scan(run_cli, fleet, gate_dbs["osv"], "--format", "markdown")
    assert result.returncode == 1
    text = result.stdout
    assert text.startswith("## ❌ kubegate: BLOCKED\n")
    blocking = text.split("### Blocking", 1)[1].split("<details>", 1)[0]
    rows = [line for line in blocking.splitlines() if line.startswith("| CRITICAL")]
    assert any("CVE-2021-3711" in row and "web.yaml:13" in row for row in rows)
    assert "MEDIUM" not in blocking  # not blocking: only in the collapsed details
    assert "<details><summary><code>" in text and "</details>" in text


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of examples/ (manifests, OCI layouts, OSV snapshot, config)."""
    target = tmp_path / "repo" / "examples"
    shutil.copytree(REPO / "examples", target, ignore=shutil.ignore_patterns(".kubegate"))
    return target.parent


@pytest.mark.parametrize(
    ("fmt", "name"), [("junit", "scan-demo.junit.xml"), ("markdown", "scan-demo.md")]
)
def test_demo_junit_and_markdown_goldens(
    run_cli: RunCli, demo: Path, golden: Golden, fmt: str, name: str
) -> None:
    result = run_cli(
        "scan",
        "examples/flux-demo",
        "--config",
        "examples/flux-demo.kubegate.yaml",
        "--format",
        fmt,
        cwd=demo,
    )
    assert result.returncode == 1, result.stderr
    golden(name, result.stdout.replace(str(demo), "<repo>"))
    if fmt == "junit":
        ET.fromstring(result.stdout)  # noqa: S314 - our own output


# --- digest pinning -------------------------------------------------------------------------


def _kustomize(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(yaml.safe_load_all(built.stdout))


def _images(objects: list[dict]) -> dict[str, str]:  # type: ignore[type-arg]
    return {
        obj["metadata"]["name"]: c["image"]
        for obj in objects
        for c in obj["spec"]["template"]["spec"]["containers"]
    }


def test_pinned_digests_are_what_kustomize_deploys(
    run_cli: RunCli,
    tmp_path: Path,
    pushed: dict[str, str],
    gate_dbs: dict[str, Path],
    golden: Golden,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    (fleet / "apps" / "worker.yaml").write_text(
        DEPLOYMENT.replace("web", "worker").replace("IMAGE", pushed["worker"])
    )
    (fleet / "apps" / "kustomization.yaml").write_text("resources: [web.yaml, worker.yaml]\n")
    pins = tmp_path / "pins" / "kustomization.yaml"
    pins.parent.mkdir()
    result = _scan(run_cli, fleet, gate_dbs["osv"], "--pin-digests", str(pins))
    assert result.returncode == 0, result.stderr
    golden("pin-digests.yaml", _stable(pins.read_text(), tmp_path, pushed))
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../fleet/apps]\ncomponents: [../pins]\n"
    )
    name = pushed["fixed"].rsplit(":", 1)[0]
    worker = pushed["worker"].rsplit(":", 1)[0]
    assert _images(_kustomize(overlay)) == {
        "web": f"{name}@{pushed['fixed@']}",
        "worker": f"{worker}@{pushed['worker@']}",
    }
    before = _images(_kustomize(fleet / "apps"))
    assert before["web"] == pushed["fixed"]


def test_pins_follow_a_renaming_override_and_refuse_ambiguous_names(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", "web-image:latest")
    name = pushed["fixed"].rsplit(":", 1)[0]
    (fleet / "apps" / "kustomization.yaml").write_text(
        f"resources: [web.yaml, worker.yaml]\nimages:\n  - name: web-image\n"
        f"    newName: {name}\n    newTag: fixed\n"
    )
    # The same repository under two tags: kustomize pins per name, so it cannot be pinned.
    (fleet / "apps" / "worker.yaml").write_text(
        DEPLOYMENT.replace("web", "worker").replace("IMAGE", pushed["vulnerable"])
    )
    pins = tmp_path / "pins.yaml"
    result = _scan(run_cli, fleet, gate_dbs["unfixed"], "--pin-digests", str(pins))
    assert result.returncode == 1
    document = yaml.safe_load(pins.read_text())
    entries = {e["name"]: e for e in document["images"]}
    assert entries["web-image"] == {
        "name": "web-image",
        "newName": name,
        "digest": pushed["fixed@"],
    }
    assert name not in entries
    assert f"NOT PINNED: {name} not pinned: used for 2 different images" in pins.read_text()
    assert "--pin-digests: " + name in result.stderr


def test_image_sources_are_named_not_pinned(run_cli: RunCli, demo: Path, golden: Golden) -> None:
    result = run_cli(
        "scan",
        "examples/flux-demo",
        "--config",
        "examples/flux-demo.kubegate.yaml",
        "--pin-digests",
        "pins.yaml",
        cwd=demo,
    )
    assert result.returncode == 1
    assert (
        "kubegate: warning: --pin-digests: docker.io/library/nginx:1.21.0 not pinned: served "
        "from imageSources" in result.stderr
    )
    text = (demo / "pins.yaml").read_text()
    golden("pin-digests-image-sources.yaml", text)
    assert yaml.safe_load(text)["images"] == []


def test_pin_file_that_cannot_be_written_is_a_usage_error(
    run_cli: RunCli, tmp_path: Path, pushed: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", pushed["fixed"])
    result = _scan(
        run_cli,
        fleet,
        gate_dbs["osv"],
        "--pin-digests",
        str(tmp_path / "no" / "such" / "pins.yaml"),
    )
    assert result.returncode == 3
    # Refused before the scan starts: nothing is pulled for a report that cannot be written.
    assert "--pin-digests " in result.stderr and "no such directory" in result.stderr
    assert "image 1/1" not in result.stderr
