"""``kubegate scan`` end to end: a Flux fleet in a temporary directory whose Deployment runs
images pushed to the real loopback registry, advisories imported by the real importer, the real
kustomize, judged and reported through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunCli, user_config
from tests.fixtures.fleets import two_clusters
from tests.fixtures.gatefleet import FIXED, VULNERABLE, gate_layer, write_fleet
from tests.fixtures.oci import build_image
from tests.fixtures.registry import RegistryServer


@pytest.fixture(scope="module")
def images(registry_plain: RegistryServer) -> dict[str, str]:
    """References of a vulnerable and a fixed image in the loopback registry."""
    registry_plain.push("gate/web", "vulnerable", build_image([gate_layer(*VULNERABLE)]))
    registry_plain.push("gate/web", "fixed", build_image([gate_layer(*FIXED)]))
    return {
        "vulnerable": registry_plain.ref("gate/web", "vulnerable"),
        "fixed": registry_plain.ref("gate/web", "fixed"),
    }


def _scan(run_cli: RunCli, fleet: Path, db: Path, *args: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    result = run_cli("scan", str(fleet), "--db", str(db), "--format", "json", *args, cwd=cwd)
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout) if result.stdout.strip() else None
    return result, document


def _exceptions(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_vulnerable_revision_is_blocked_at_the_image_line(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["vulnerable"])
    result, report = _scan(run_cli, fleet, gate_dbs["osv"])
    assert result.returncode == 1, result.stderr
    assert report["verdict"] == "BLOCKED"
    (image,) = report["images"]
    assert image["image"] == images["vulnerable"]
    assert image["digest"].startswith("sha256:")
    blocking = {f["id"]: f for f in image["findings"] if f["blocking"]}
    assert {"CVE-2021-3711", "CVE-2022-37434"} <= set(blocking)
    use = blocking["CVE-2021-3711"]["blockingUses"][0]
    assert (use["file"], use["line"], use["kustomization"]) == (
        "apps/web.yaml",
        13,
        "flux-system/apps",
    )
    assert (use["kind"], use["namespace"], use["name"], use["container"]) == (
        "Deployment",
        "apps",
        "web",
        "web",
    )


def test_fixed_revision_passes(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    result, report = _scan(run_cli, fleet, gate_dbs["osv"])
    assert result.returncode == 0, result.stderr
    assert report["verdict"] == "PASS" and report["summary"]["uses"] == 1


def test_ignore_unfixed(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    blocked, report = _scan(run_cli, fleet, gate_dbs["unfixed"])
    assert blocked.returncode == 1
    assert [f["id"] for f in report["images"][0]["findings"]] == ["CVE-2099-1000"]
    passed, report = _scan(run_cli, fleet, gate_dbs["unfixed"], "--ignore-unfixed")
    assert passed.returncode == 0, passed.stderr
    (finding,) = report["images"][0]["findings"]
    assert finding["blocking"] is False and "ignore-unfixed" in finding["policy"]


@pytest.mark.parametrize(
    ("workloads", "expires", "code"),
    [
        ('["apps/Deployment/web"]', "2999-12-31", 0),
        ('["other/Deployment/*"]', "2999-12-31", 1),
        ('["apps/Deployment/web"]', "2020-01-01", 1),
    ],
    ids=["in-scope", "out-of-scope", "expired"],
)
def test_exceptions_scope_and_expiry(
    run_cli: RunCli,
    tmp_path: Path,
    images: dict[str, str],
    gate_dbs: dict[str, Path],
    workloads: str,
    expires: str,
    code: int,
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    # The implicit exceptions file lives in the user config directory.
    _exceptions(
        user_config(tmp_path) / ".kubegateignore.yaml",
        f"vulnerabilities:\n  - id: CVE-2099-1000\n    workloads: {workloads}\n"
        f"    expires: {expires}\n    reason: zlib gzip headers never parsed here\n",
    )
    result, report = _scan(run_cli, fleet, gate_dbs["unfixed"])
    assert result.returncode == code, result.stderr
    (finding,) = report["images"][0]["findings"]
    if code == 0:
        assert finding["suppressed"][0]["exception"]["reason"].startswith("zlib gzip")
        assert report["summary"]["suppressed"] == 1
    if expires == "2020-01-01":
        assert "expired on 2020-01-01" in report["exceptionProblems"][0]
        assert "expired on 2020-01-01" in result.stderr


def test_exceptions_inside_the_revision_are_not_read(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    _exceptions(
        fleet / ".kubegateignore.yaml",
        "vulnerabilities:\n  - {id: CVE-2099-1000, expires: 2999-01-01, reason: self-exempt}\n",
    )
    work = tmp_path / "work"
    work.mkdir()
    result, _ = _scan(run_cli, fleet, gate_dbs["unfixed"], cwd=work)
    assert result.returncode == 1


def test_helm_release_not_seen_is_unproven_unless_accepted(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"], helm=True)
    work = tmp_path / "work"
    work.mkdir()
    unproven, report = _scan(run_cli, fleet, gate_dbs["osv"], cwd=work)
    assert unproven.returncode == 2
    assert report["verdict"] == "UNPROVEN"
    assert "HelmRelease infra/cert-manager" in unproven.stderr
    _exceptions(
        work / "exceptions.yaml",
        "notSeen:\n  - kind: HelmRelease\n    namespace: infra\n    name: cert-manager\n"
        "    expires: 2999-12-31\n    reason: chart scanned in its own pipeline\n",
    )
    accepted, report = _scan(
        run_cli, fleet, gate_dbs["osv"], "--ignorefile", "exceptions.yaml", cwd=work
    )
    assert accepted.returncode == 0, accepted.stderr
    (unseen,) = report["unseen"]
    assert unseen["accepted"]["reason"] == "chart scanned in its own pipeline"


def test_registry_down_is_unproven_and_fail_open_lets_it_through(
    run_cli: RunCli, tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", "127.0.0.1:9/gate/web:1.0")
    down, report = _scan(run_cli, fleet, gate_dbs["osv"])
    assert down.returncode == 2
    assert report["images"][0]["errors"] and report["images"][0]["digest"] is None
    assert "not proven" in down.stderr and "127.0.0.1:9/gate/web:1.0" in down.stderr
    opened, report = _scan(run_cli, fleet, gate_dbs["osv"], "--fail-open")
    assert opened.returncode == 0
    assert report["verdict"] == "UNPROVEN" and report["failOpen"] is True
    assert "--fail-open" in opened.stderr


def test_fail_open_still_blocks_on_policy(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["vulnerable"])
    result, _ = _scan(run_cli, fleet, gate_dbs["osv"], "--fail-open")
    assert result.returncode == 1


def test_database_older_than_max_age_is_unproven(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["fixed"])
    result, report = _scan(run_cli, fleet, gate_dbs["osv"], "--db-max-age", "0s")
    assert result.returncode == 2
    assert any(u["kind"] == "database" for u in report["unseen"])
    assert "Debian" in result.stderr


def test_several_formats_and_outputs(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    fleet = write_fleet(tmp_path / "fleet", images["vulnerable"])
    result = run_cli(
        "scan",
        str(fleet),
        "--db",
        str(gate_dbs["osv"]),
        "--format",
        "sarif",
        "--output",
        str(tmp_path / "out.sarif"),
        "--format",
        "table",
    )
    assert result.returncode == 1
    assert result.stdout.startswith("BLOCKED:")
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    two_stdout = run_cli("scan", str(fleet), "--format", "json", "--format", "table")
    assert two_stdout.returncode == 3


def test_bad_config_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path / "fleet", "nginx:1")
    config = tmp_path / "kubegate.yaml"
    config.write_text("policy:\n  severty: HIGH\n")
    result = run_cli("scan", str(fleet), "--config", str(config))
    assert result.returncode == 3
    assert "unknown key policy.severty" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_timeout_bounds_the_scan(
    run_cli: RunCli, tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    # A registry that accepts connections and never answers: the kernel completes the
    # handshake on the listening socket, nobody ever reads or writes.
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        fleet = write_fleet(tmp_path / "fleet", f"127.0.0.1:{port}/gate/web:1.0")
        started = time.monotonic()
        result, report = _scan(run_cli, fleet, gate_dbs["osv"], "--timeout", "3")
        elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert elapsed < 20
    assert report["unseen"][0]["kind"] == "timeout"
    assert "--timeout" in result.stderr


def test_each_cluster_is_judged_on_its_own_images(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], gate_dbs: dict[str, Path]
) -> None:
    # Issue 12 point 1: staging runs the vulnerable image through its own `cluster-vars`; prod
    # (same Kustomization and ConfigMap names) the fixed one. Only staging blocks.
    fleet = two_clusters(
        tmp_path / "fleet", {"staging": images["vulnerable"], "prod": images["fixed"]}
    )
    result, report = _scan(run_cli, fleet, gate_dbs["osv"])
    assert result.returncode == 1, result.stderr
    by_image = {i["image"]: i for i in report["images"]}
    assert {u["cluster"] for u in by_image[images["vulnerable"]]["uses"]} == {"clusters/staging"}
    assert {u["cluster"] for u in by_image[images["fixed"]]["uses"]} == {"clusters/prod"}
    blocking = [u for f in by_image[images["vulnerable"]]["findings"] for u in f["blockingUses"]]
    assert blocking and {u["cluster"] for u in blocking} == {"clusters/staging"}

    sarif_path = tmp_path / "out.sarif"
    run_cli(
        "scan",
        str(fleet),
        "--db",
        str(gate_dbs["osv"]),
        "--format",
        "sarif",
        "--output",
        str(sarif_path),
    )
    results = json.loads(sarif_path.read_text())["runs"][0]["results"]
    assert results and {r["properties"]["cluster"] for r in results} == {"clusters/staging"}

    result, report = _scan(run_cli, fleet, gate_dbs["osv"], "--cluster", "prod")
    assert result.returncode == 0, result.stderr
    assert report["verdict"] == "PASS"
    assert [i["image"] for i in report["images"]] == [images["fixed"]]


def test_an_image_error_names_the_reference_once(
    run_cli: RunCli, tmp_path: Path, gate_dbs: dict[str, Path]
) -> None:
    # Issue 12 point 10: `REF: REF: cannot reach` became `REF: cannot reach`.
    reference = "127.0.0.1:9/gate/web:1.0"
    fleet = write_fleet(tmp_path / "fleet", reference)
    result = run_cli("scan", str(fleet), "--db", str(gate_dbs["osv"]))
    assert result.returncode == 2
    text = result.stdout + result.stderr
    assert reference in text
    assert f"{reference}: {reference}" not in text
    report = json.loads(
        run_cli("scan", str(fleet), "--db", str(gate_dbs["osv"]), "--format", "json").stdout
    )
    assert all(not e.startswith(reference) for e in report["images"][0]["errors"])
