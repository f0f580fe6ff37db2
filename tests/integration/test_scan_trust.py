"""The judged revision never sets its own policy, and kubegate never writes into it (issue 15).

Each test builds the hostile input itself: a real git repository (``tests.fixtures.gitserve.git``)
holding the Flux fleet of ``tests.fixtures.gatefleet`` whose only image, pushed to the real
loopback registry, has one unfixed CRITICAL flaw (CVE-2099-1000 in the ``unfixed`` database).
Any policy file that reached the gate could turn that block into a pass: an exception for it,
``ignoreUnfixed``, ``failOpen``, a VEX ``not_affected`` statement. Every scan runs through the
CLI in a subprocess, as CI runs it, usually with the judged repository as working directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import RunCli, user_config
from tests.fixtures.gatefleet import FIXED, gate_layer, write_fleet
from tests.fixtures.gitserve import git
from tests.fixtures.oci import build_image
from tests.fixtures.registry import RegistryServer

#: Exceptions that would suppress the one blocking finding.
EXEMPT = "vulnerabilities:\n  - {id: CVE-2099-1000, expires: 2999-01-01, reason: self-exempt}\n"
#: A configuration that would let the finding through twice over.
LENIENT = "policy:\n  ignoreUnfixed: true\n  failOpen: true\n  severity: LOW\n"
VEX = {
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": "https://example.invalid/vex/self",
    "author": "the judged revision",
    "timestamp": "2026-01-01T00:00:00Z",
    "version": 1,
    "statements": [
        {
            "vulnerability": {"name": "CVE-2099-1000"},
            "products": [{"@id": "pkg:deb/debian/zlib1g"}],
            "status": "not_affected",
            "justification": "vulnerable_code_not_present",
        }
    ],
}


@pytest.fixture(scope="module")
def image(registry_plain: RegistryServer) -> str:
    """The fixed image: only the synthetic unfixed flaw remains (it blocks)."""
    registry_plain.push("trust/web", "fixed", build_image([gate_layer(*FIXED)]))
    return registry_plain.ref("trust/web", "fixed")


def _repo(path: Path, image: str) -> Path:
    """A git repository holding the fleet, committed on ``main``."""
    write_fleet(path, image)
    git("init", "-q", "-b", "main", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "fleet", cwd=path)
    return path


def _hostile(repo: Path) -> None:
    """Every policy file kubegate ever read from a working directory, written by the revision."""
    (repo / "kubegate.yaml").write_text(LENIENT)
    (repo / ".kubegateignore.yaml").write_text(EXEMPT)
    (repo / ".trivyignore").write_text("CVE-2099-1000\n")
    (repo / ".trivyignore.yaml").write_text("vulnerabilities:\n  - id: CVE-2099-1000\n")
    (repo / "vex.json").write_text(json.dumps(VEX))


def _scan(run_cli: RunCli, source: str, db: Path, *args: str, cwd: Path):  # type: ignore[no-untyped-def]
    result = run_cli("scan", source, "--db", str(db), "--format", "json", *args, cwd=cwd)
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result, report


def test_policy_files_in_the_judged_tree_are_never_read(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    _hostile(repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "exempt myself", cwd=repo)
    # The default source "." is the working directory, which is the judged revision.
    result, report = _scan(run_cli, ".", gate_dbs["unfixed"], cwd=repo)
    assert result.returncode == 1, result.stderr
    assert report["verdict"] == "BLOCKED" and report["failOpen"] is False
    assert report["summary"]["suppressed"] == 0
    assert report["policySource"] == {
        "config": None,
        "exceptions": None,
        "ref": None,
        "commit": None,
    }
    # The same repository as a git source at a ref, still from inside it.
    as_git, report = _scan(run_cli, ".", gate_dbs["unfixed"], "--ref", "main", cwd=repo)
    assert as_git.returncode == 1, as_git.stderr
    assert report["source"]["kind"] == "git" and report["summary"]["suppressed"] == 0


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("--config", "kubegate.yaml"),
        ("--ignorefile", ".kubegateignore.yaml"),
        ("--ignorefile", ".trivyignore"),
        ("--vex", "vex.json"),
        ("--var-file", "kubegate.yaml"),
    ],
)
def test_an_explicit_policy_file_inside_the_judged_tree_is_refused(
    run_cli: RunCli,
    tmp_path: Path,
    image: str,
    gate_dbs: dict[str, Path],
    option: str,
    name: str,
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    _hostile(repo)
    result, report = _scan(run_cli, ".", gate_dbs["unfixed"], option, name, cwd=repo)
    assert result.returncode == 3, result.stderr
    assert report is None
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"kubegate: error: {option}: {name} is inside the judged source")
    assert "--trust-source-config" in line
    assert "image 1/1" not in result.stderr  # refused before anything was pulled


def test_symlinks_and_dotdot_into_the_tree_are_caught(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    _hostile(repo)
    outside = tmp_path / "ci"
    outside.mkdir()
    (outside / "exceptions.yaml").symlink_to(repo / ".kubegateignore.yaml")
    (outside / "linked-repo").symlink_to(repo)
    attempts = [
        ("--ignorefile", str(outside / "exceptions.yaml")),
        ("--config", str(outside / "linked-repo" / "kubegate.yaml")),
        ("--config", str(outside / ".." / "fleet" / "kubegate.yaml")),
    ]
    for option, path in attempts:
        result, _ = _scan(run_cli, str(repo), gate_dbs["unfixed"], option, path, cwd=outside)
        assert result.returncode == 3, (option, path, result.stderr)
        assert "is inside the judged source" in result.stderr
    # The user config directory itself linking into the tree is caught too.
    config_dir = user_config(tmp_path)
    (config_dir / ".kubegateignore.yaml").symlink_to(repo / ".kubegateignore.yaml")
    result, _ = _scan(run_cli, str(repo), gate_dbs["unfixed"], cwd=outside)
    assert result.returncode == 3
    assert "exceptions file: " in result.stderr and "inside the judged source" in result.stderr


def test_a_config_outside_may_not_point_into_the_tree(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    _hostile(repo)
    config = tmp_path / "kubegate.yaml"
    config.write_text("policy:\n  ignorefile: fleet/.kubegateignore.yaml\n")
    result, _ = _scan(run_cli, str(repo), gate_dbs["unfixed"], "--config", str(config), cwd=repo)
    assert result.returncode == 3
    assert f"{config}: policy.ignorefile: " in result.stderr
    config.write_text("imageSources:\n  nginx:1.21.0: oci:fleet/images/nginx:1.21.0\n")
    result, _ = _scan(run_cli, str(repo), gate_dbs["unfixed"], "--config", str(config), cwd=repo)
    assert result.returncode == 3
    assert "imageSources[docker.io/library/nginx:1.21.0]" in result.stderr


def test_trust_source_config_reads_them(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    _hostile(repo)
    result, report = _scan(
        run_cli,
        ".",
        gate_dbs["unfixed"],
        "--ignorefile",
        ".kubegateignore.yaml",
        "--trust-source-config",
        cwd=repo,
    )
    assert result.returncode == 0, result.stderr
    assert report["summary"]["suppressed"] == 1
    assert report["policySource"]["exceptions"] == ".kubegateignore.yaml"
    lenient, report = _scan(
        run_cli,
        ".",
        gate_dbs["unfixed"],
        "--config",
        "kubegate.yaml",
        "--trust-source-config",
        cwd=repo,
    )
    assert lenient.returncode == 0, lenient.stderr
    assert report["policy"]["ignoreUnfixed"] is True and report["failOpen"] is True
    assert report["policySource"]["config"] == "kubegate.yaml"


def test_user_config_directory_is_the_default(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    config_dir = user_config(tmp_path)
    (config_dir / "kubegate.yaml").write_text("policy:\n  ignoreUnfixed: true\n")
    result, report = _scan(run_cli, ".", gate_dbs["unfixed"], cwd=repo)
    assert result.returncode == 0, result.stderr
    assert report["policy"]["ignoreUnfixed"] is True
    assert report["policySource"]["config"] == str(config_dir / "kubegate.yaml")


def test_config_ref_judges_a_branch_with_the_approved_policy(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    upstream = _repo(tmp_path / "upstream", image)
    # CI: a clone of the fleet repository, the pull request's branch checked out.
    work = tmp_path / "ci"
    git("clone", "-q", str(upstream), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "pr", cwd=work)
    (work / ".kubegateignore.yaml").write_text(EXEMPT)
    (work / "kubegate.yaml").write_text(LENIENT)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "exempt myself", cwd=work)
    main = git("rev-parse", "origin/main", cwd=work)
    blocked, report = _scan(
        run_cli, ".", gate_dbs["unfixed"], "--config-ref", "origin/main", cwd=work
    )
    assert blocked.returncode == 1, blocked.stderr
    assert report["summary"]["suppressed"] == 0 and report["policy"]["ignoreUnfixed"] is False
    assert report["policySource"] == {
        "config": None,
        "exceptions": None,
        "ref": "origin/main",
        "commit": main,
    }
    # The exception is reviewed and merged upstream: the approved policy now suppresses it.
    (upstream / ".kubegateignore.yaml").write_text(EXEMPT.replace("self-exempt", "reviewed"))
    (upstream / "kubegate.yaml").write_text("policy:\n  severity: CRITICAL\n")
    git("add", "-A", cwd=upstream)
    git("commit", "-q", "-m", "approve the exception", cwd=upstream)
    git("fetch", "-q", "origin", cwd=work)
    main = git("rev-parse", "origin/main", cwd=work)
    passed, report = _scan(
        run_cli, ".", gate_dbs["unfixed"], "--config-ref", "origin/main", cwd=work
    )
    assert passed.returncode == 0, passed.stderr
    assert report["policySource"] == {
        "config": "origin/main:kubegate.yaml",
        "exceptions": "origin/main:.kubegateignore.yaml",
        "ref": "origin/main",
        "commit": main,
    }
    (finding,) = report["images"][0]["findings"]
    exception = finding["suppressed"][0]["exception"]
    assert exception["reason"] == "reviewed"
    assert exception["where"] == "origin/main:.kubegateignore.yaml: vulnerabilities[1]"
    # Every format with a revision block names the ref and its commit.
    table = run_cli(
        "scan", ".", "--db", str(gate_dbs["unfixed"]), "--config-ref", "origin/main", cwd=work
    )
    assert table.returncode == 0
    assert table.stdout.splitlines()[1] == (
        f"policy from --config-ref origin/main at commit {main}: origin/main:kubegate.yaml "
        "and origin/main:.kubegateignore.yaml"
    )
    for fmt in ("sarif", "junit", "markdown"):
        other = run_cli(
            "scan",
            ".",
            "--db",
            str(gate_dbs["unfixed"]),
            "--config-ref",
            "origin/main",
            "--format",
            fmt,
            cwd=work,
        )
        assert other.returncode == 0, (fmt, other.stderr)
        assert "origin/main" in other.stdout and main in other.stdout, fmt


def test_config_ref_of_a_git_url_source(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    # The approved policy names its exceptions file; relative to the ref's root.
    (repo / "policy").mkdir()
    (repo / "policy" / "exceptions.yaml").write_text(EXEMPT.replace("self-exempt", "approved"))
    (repo / "kubegate.yaml").write_text("policy:\n  ignorefile: policy/exceptions.yaml\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "approved exception", cwd=repo)
    approved = git("rev-parse", "main", cwd=repo)
    git("checkout", "-q", "-b", "feature", cwd=repo)
    git("rm", "-q", "policy/exceptions.yaml", cwd=repo)
    (repo / "kubegate.yaml").write_text(LENIENT)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "drop the exception, loosen the policy", cwd=repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = repo.as_uri()
    result, report = _scan(
        run_cli,
        url,
        gate_dbs["unfixed"],
        "--ref",
        "feature",
        "--config-ref",
        "main",
        cwd=elsewhere,
    )
    assert result.returncode == 0, result.stderr
    assert report["source"]["revision"].startswith("feature@sha1:")
    assert report["policy"]["ignoreUnfixed"] is False  # main's policy, not the branch's
    assert report["policySource"] == {
        "config": "main:kubegate.yaml",
        "exceptions": "main:policy/exceptions.yaml",
        "ref": "main",
        "commit": approved,
    }
    assert report["summary"]["suppressed"] == 1
    (finding,) = report["images"][0]["findings"]
    where = finding["suppressed"][0]["exception"]["where"]
    assert where == "main:policy/exceptions.yaml: vulnerabilities[1]"
    # A Flux artifact has no other ref.
    artifact = run_cli(
        "scan",
        "--artifact-url",
        "http://127.0.0.1:9/a.tar.gz",
        "--artifact-digest",
        "sha256:" + "0" * 64,
        "--config-ref",
        "main",
        cwd=elsewhere,
    )
    assert artifact.returncode == 3
    assert "--config-ref: a Flux artifact has no other ref" in artifact.stderr


def test_explicit_files_win_over_config_ref_and_the_report_names_them(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    """--config and --ignorefile are read instead of the ref's files; the report's policy source
    names the files read (was: the ref's kubegate.yaml and .kubegateignore.yaml, never read)."""
    repo = _repo(tmp_path / "fleet", image)
    (repo / "kubegate.yaml").write_text(LENIENT)
    (repo / ".kubegateignore.yaml").write_text(EXEMPT)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "policy at main", cwd=repo)
    approved = git("rev-parse", "main", cwd=repo)
    own = tmp_path / "own"
    own.mkdir()
    config = own / "kubegate.yaml"
    config.write_text("policy:\n  severity: CRITICAL\n")
    exceptions = own / "exceptions.yaml"
    exceptions.write_text(EXEMPT.replace("self-exempt", "mine"))
    args = ("--config-ref", "main", "--config", str(config), "--ignorefile", str(exceptions))
    result, report = _scan(run_cli, ".", gate_dbs["unfixed"], *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert report["policy"]["ignoreUnfixed"] is False  # not the ref's LENIENT config
    assert report["policySource"] == {
        "config": str(config),
        "exceptions": str(exceptions),
        "ref": "main",
        "commit": approved,
    }
    (finding,) = report["images"][0]["findings"]
    assert finding["suppressed"][0]["exception"]["reason"] == "mine"


def test_config_ref_errors(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    missing, _ = _scan(run_cli, ".", gate_dbs["unfixed"], "--config-ref", "nope", cwd=repo)
    assert missing.returncode == 2
    assert "ref 'nope' not found" in missing.stderr
    plain = tmp_path / "plain"
    write_fleet(plain, image)
    result, _ = _scan(run_cli, ".", gate_dbs["unfixed"], "--config-ref", "main", cwd=plain)
    assert result.returncode == 3
    assert "--config-ref: " in result.stderr and "not inside a git repository" in result.stderr
    # A policy file that is a symlink in the approved ref is refused, not followed.
    os.symlink("/etc/hostname", repo / "kubegate.yaml")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "link", cwd=repo)
    linked, _ = _scan(run_cli, ".", gate_dbs["unfixed"], "--config-ref", "main", cwd=repo)
    assert linked.returncode == 3
    assert "symbolic link" in linked.stderr


# --- what kubegate writes -----------------------------------------------------------------


def test_output_through_a_symlink_is_refused_and_the_target_untouched(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").symlink_to(victim)
    (out / "pins.yaml").symlink_to(victim)
    for option in ("--output", "--pin-digests"):
        result = run_cli(
            "scan", str(repo), "--db", str(gate_dbs["unfixed"]), option, str(out / "report.json")
        )
        assert result.returncode == 3, result.stderr
        assert "is a symbolic link" in result.stderr
        assert victim.read_text() == "precious\n"
        assert (out / "report.json").is_symlink()
    # A dangling link (a file it would create) is refused the same way.
    (out / "new.json").symlink_to(tmp_path / "created-by-link.json")
    result = run_cli("scan", str(repo), "--output", str(out / "new.json"))
    assert result.returncode == 3
    assert not (tmp_path / "created-by-link.json").exists()


def test_output_inside_the_judged_tree_needs_write_into_source(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    before = git("status", "--porcelain", "--ignored", cwd=repo)
    for option, name in (("--output", "report.json"), ("--pin-digests", "apps/pins.yaml")):
        result = run_cli("scan", ".", "--db", str(gate_dbs["unfixed"]), option, name, cwd=repo)
        assert result.returncode == 3, result.stderr
        assert f"{option}" in result.stderr and "--write-into-source" in result.stderr
    assert git("status", "--porcelain", "--ignored", cwd=repo) == before
    allowed = run_cli(
        "scan",
        ".",
        "--db",
        str(gate_dbs["unfixed"]),
        "--format",
        "json",
        "--output",
        "report.json",
        "--write-into-source",
        cwd=repo,
    )
    assert allowed.returncode == 1, allowed.stderr
    assert json.loads((repo / "report.json").read_text())["verdict"] == "BLOCKED"
    # Written by rename: no temporary file is left behind.
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith(".report")) == []


def test_report_replaces_the_old_file_whole(
    run_cli: RunCli, tmp_path: Path, image: str, gate_dbs: dict[str, Path]
) -> None:
    repo = _repo(tmp_path / "fleet", image)
    out = tmp_path / "out"
    out.mkdir()
    report = out / "report.json"
    report.write_text("old report\n")
    reader = out / "held-by-a-reader"
    os.link(report, reader)  # a reader that opened the old report keeps the old bytes
    result = run_cli(
        "scan",
        str(repo),
        "--db",
        str(gate_dbs["unfixed"]),
        "--format",
        "json",
        "--output",
        str(report),
    )
    assert result.returncode == 1, result.stderr
    assert reader.read_text() == "old report\n"
    assert json.loads(report.read_text())["verdict"] == "BLOCKED"
    assert report.stat().st_ino != reader.stat().st_ino
    assert sorted(p.name for p in out.iterdir()) == ["held-by-a-reader", "report.json"]


def test_git_url_credentials_and_queries_are_never_echoed(
    run_cli: RunCli, gate_dbs: dict[str, Path]
) -> None:
    url = "https://ci-user:s3cret-token@127.0.0.1:9/fleet.git?private_token=qtoken"
    db = ("--db", str(gate_dbs["unfixed"]), "--skip-db-update")
    result = run_cli("scan", url, *db, timeout=60)
    assert result.returncode == 2
    assert "127.0.0.1:9/fleet.git" in result.stderr
    assert "s3cret-token" not in result.stderr and "qtoken" not in result.stderr
    assert "ci-user" not in result.stderr
    # -v logs every git command: still nothing.
    verbose = run_cli("scan", url, *db, "-v", timeout=60)
    assert "s3cret-token" not in verbose.stderr and "qtoken" not in verbose.stderr


def test_db_source_credentials_and_queries_are_never_echoed(run_cli: RunCli) -> None:
    result = run_cli("db", "update", "--source", "https://u:s3cret@127.0.0.1:9/osv?key=qtoken")
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "kubegate: error: --source https://127.0.0.1:9/osv?REDACTED: not a usable bucket URL"
    )
