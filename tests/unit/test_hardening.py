"""Issue 15 items 1, 6 and 10 at the unit level: the trust boundary, atomic no-follow writes,
URL redaction, and hostile policy inputs that used to end in "internal error".

Every bad input is built here; each must give a one-line error with the right exit code (3 for
the user's own files, 2 for an image) or be reported as malformed and suppress nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kubegate.config import load_config
from kubegate.decide.gate import GateResult, Revision, Unseen, UnseenKind, Verdict
from kubegate.decide.ignorefile import load_ignore_file
from kubegate.decide.trivyignore import load_exceptions
from kubegate.decide.vex import load_vex
from kubegate.errors import (
    EXIT_UNPROVEN,
    EXIT_USAGE,
    ConfigError,
    InventoryError,
    UsageError,
    redact_urls,
)
from kubegate.images.find import ImageScan
from kubegate.inventory import InventoryLimits, inventory_image
from kubegate.models import Digest, Origin, Problem, SourceInfo
from kubegate.outfile import write_atomic
from kubegate.report.gate import GateFormat, render_gate_report
from kubegate.trust import JudgedTree
from tests.fixtures.layers import Blobs, Layer, descriptors
from tests.unit.test_ignorefile import FINDING

# --- the judged tree ------------------------------------------------------------------------


def _tree(tmp_path: Path) -> tuple[JudgedTree, Path]:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "kubegate.yaml").write_text("{}\n")
    return JudgedTree(root=Path(os.path.realpath(root))), root


def test_inputs_inside_the_tree_by_any_path_are_refused(tmp_path: Path) -> None:
    judged, root = _tree(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "link").symlink_to(root / "kubegate.yaml")
    (outside / "dirlink").symlink_to(root / "sub")
    for path in (
        root / "kubegate.yaml",
        root / "sub" / ".." / "kubegate.yaml",
        outside / ".." / "repo" / "kubegate.yaml",
        outside / "link",
        outside / "dirlink" / "missing.yaml",
        root,
    ):
        with pytest.raises(UsageError) as info:
            judged.check_input(path, "--config")
        assert info.value.exit_code == EXIT_USAGE
        assert "inside the judged source" in info.value.diagnostics()
    (outside / "ok.yaml").write_text("{}\n")
    assert judged.check_input(outside / "ok.yaml", "--config") == outside / "ok.yaml"
    # A sibling whose name starts like the root is not inside it.
    sibling = tmp_path / "repo-other"
    sibling.mkdir()
    assert not judged.contains(sibling / "kubegate.yaml")


def test_trust_and_write_flags_and_remote_sources(tmp_path: Path) -> None:
    judged, root = _tree(tmp_path)
    trusted = JudgedTree(root=judged.root, trust_config=True)
    assert trusted.check_input(root / "kubegate.yaml", "--config") == root / "kubegate.yaml"
    with pytest.raises(UsageError, match="--write-into-source"):
        trusted.check_output(root / "report.json", "--output")
    writable = JudgedTree(root=judged.root, write_into=True)
    assert writable.check_output(root / "r.json", "--output") == root / "r.json"
    # A remote source has no local tree: nothing to compare with.
    assert JudgedTree().check_input(root / "kubegate.yaml", "--config") == root / "kubegate.yaml"


def test_config_named_paths_are_attributed_to_the_config(tmp_path: Path) -> None:
    judged, _ = _tree(tmp_path)
    config = tmp_path / "kubegate.yaml"
    config.write_text(
        "policy: {ignorefile: repo/x.yaml}\ndb: {path: repo/db.sqlite3}\n"
        "imageSources: {'nginx:1': 'oci:repo/images/nginx:1'}\n"
    )
    loaded = load_config(config)
    keys = {key for key, path in loaded.named_paths() if judged.contains(path)}
    assert keys == {"policy.ignorefile", "db.path", "imageSources[docker.io/library/nginx:1]"}
    with pytest.raises(ConfigError) as info:
        for key, path in loaded.named_paths():
            judged.check_input(path, key, config=config)
    assert info.value.diagnostics().startswith(f"{config}: policy.ignorefile: ")


# --- atomic, no-follow writes ----------------------------------------------------------------


def test_write_atomic_refuses_links_and_non_files(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        write_atomic(tmp_path / "link", "x", "--output")
    assert victim.read_text() == "keep\n"
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError, match="not a regular file"):
        write_atomic(tmp_path / "dir", "x", "--output")
    with pytest.raises(UsageError, match="no such directory"):
        write_atomic(tmp_path / "missing" / "r.json", "x", "--output")


def test_write_atomic_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old\n")
    # A lone surrogate cannot be encoded: the write fails half-way through building the file.
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "new \udc80 text", "--output")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]
    write_atomic(target, "new\n", "--output")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def test_write_atomic_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "r.txt", "x", "--output")
    finally:
        os.umask(old)
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o640


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "--source https://u:s3cret@mirror.test:8443/osv?sig=abc: refused",
            "--source https://mirror.test:8443/osv?REDACTED: refused",
        ),
        (
            "fatal: unable to access 'https://tok@git.test/r.git/': 403",
            "fatal: unable to access 'https://git.test/r.git/': 403",
        ),
        ("http://h/a.tar.gz#frag and file:///x", "http://h/a.tar.gz?REDACTED and file:///x"),
        ("pkg:oci/app?repository_url=ghcr.io/a", "pkg:oci/app?repository_url=ghcr.io/a"),
        ("git@host:org/repo.git", "git@host:org/repo.git"),
        ("https://h/a@b", "https://h/a@b"),
    ],
)
def test_redact_urls(text: str, expected: str) -> None:
    assert redact_urls(text) == expected


def test_every_diagnostic_is_redacted() -> None:
    error = UsageError("cannot fetch https://u:p@h/x?token=t", where="--artifact-url")
    assert error.diagnostics() == "--artifact-url: cannot fetch https://h/x?REDACTED"


# --- hostile policy files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body"),
    [
        (".kubegateignore.yaml", "vulnerabilities:\n  - id: CVE-1\n    expires: 2020-02-30\n"),
        (".trivyignore.yaml", "vulnerabilities:\n  - id: CVE-1\n    expired_at: 2020-02-30\n"),
        ("kubegate.yaml", "policy:\n  severity: HIGH\nwhen: 2020-02-30\n"),
    ],
)
def test_an_impossible_unquoted_date_is_a_config_error(
    tmp_path: Path, name: str, body: str
) -> None:
    # PyYAML resolves 2020-02-30 as a timestamp and raises ValueError building the date.
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(path) if name == "kubegate.yaml" else load_exceptions(path)
    line = info.value.diagnostics()
    assert line.startswith(f"{path}: invalid YAML: line ")
    assert "invalid date '2020-02-30' (day is out of range for month)" in line


def test_deeply_nested_yaml_and_vex_are_config_errors(tmp_path: Path) -> None:
    vex = tmp_path / "vex.json"
    vex.write_text('{"statements": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match="nested too deeply") as info:
        load_vex([vex])
    assert info.value.exit_code == EXIT_USAGE
    deep = tmp_path / ".kubegateignore.yaml"
    deep.write_text("vulnerabilities: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_ignore_file(deep)


@pytest.mark.parametrize("ident", ["*", "CVE-2024-*", "CVE-[0-9]", "?", "CVE-2024-1234*"])
def test_pattern_ids_are_malformed_and_suppress_nothing(tmp_path: Path, ident: str) -> None:
    kubegate = tmp_path / ".kubegateignore.yaml"
    kubegate.write_text(
        f"vulnerabilities:\n  - {{id: {json.dumps(ident)}, expires: 2999-01-01, reason: all}}\n"
    )
    trivy = tmp_path / ".trivyignore"
    trivy.write_text(f"{ident}\n")
    trivy_yaml = tmp_path / ".trivyignore.yaml"
    trivy_yaml.write_text(f"vulnerabilities:\n  - id: {json.dumps(ident)}\n")
    for path in (kubegate, trivy, trivy_yaml):
        loaded = load_exceptions(path)
        assert loaded.vulnerabilities == (), path.name
        (problem,) = loaded.problems
        assert "is not a vulnerability id" in problem and "suppresses nothing" in problem
        today = dt.date(2026, 1, 1)
        assert loaded.vulnerability_exception(FINDING, None, None, today) is None


@pytest.mark.parametrize(
    "product",
    ["pkg:deb/debian/*", "pkg:deb/*/zlib1g", "pkg:deb/debian/zlib[12]", "pkg:not a purl"],
)
def test_wildcard_vex_products_are_malformed(tmp_path: Path, product: str) -> None:
    path = tmp_path / "vex.json"
    statement = {
        "vulnerability": {"name": FINDING.id},
        "products": [{"@id": product}],
        "status": "not_affected",
        "justification": "component_not_present",
    }
    path.write_text(json.dumps({"statements": [statement]}))
    loaded = load_vex([path])
    assert loaded.statements == ()
    (problem,) = loaded.problems
    assert repr(product) in problem and "suppresses nothing" in problem
    sub = {**statement, "products": [{"@id": "ghcr.io/a/b", "subcomponents": [{"@id": product}]}]}
    path.write_text(json.dumps({"statements": [sub]}))
    assert load_vex([path]).statements == ()


def test_alpine_release_that_is_not_text_is_not_proven() -> None:
    built = Layer().file("etc/alpine-release", b"3.19\xff\xfe\n").build()
    with pytest.raises(InventoryError) as info:
        inventory_image(
            Digest("sha256:" + "cd" * 32),
            descriptors(built),
            Blobs(built).open,
            cache=None,
            limits=InventoryLimits(),
        )
    assert info.value.exit_code == EXIT_UNPROVEN
    assert info.value.diagnostics().endswith("/etc/alpine-release is not UTF-8 text")


@pytest.mark.parametrize("fmt", list(GateFormat))
def test_every_report_format_redacts_urls(fmt: GateFormat) -> None:
    # A render problem echoing a URL (kustomize quoting a remote resource, say): no format
    # may carry its password or token, and each stays well-formed.
    problem = Problem(
        "accumulating resources: https://ci:s3cret@git.test/base.yaml?token=qtoken: 401",
        Origin("apps/kustomization.yaml", 3),
    )
    revision = Revision(
        SourceInfo("git", "https://git.test/fleet.git", "main@sha1:" + "a" * 40),
        ImageScan((), ()),
        (),
        (problem,),
    )
    unseen = Unseen(UnseenKind.RENDER, problem.message, problem.origin)
    result = GateResult(revision, (), (unseen,), Verdict.UNPROVEN, EXIT_UNPROVEN)
    text = render_gate_report(result, fmt)
    assert "s3cret" not in text and "qtoken" not in text and "ci:" not in text
    # SARIF lists blocking findings only; every other format names what was not proven.
    assert fmt is GateFormat.SARIF or "https://git.test/base.yaml?REDACTED" in text
    if fmt in (GateFormat.JSON, GateFormat.SARIF):
        json.loads(text)
    if fmt is GateFormat.JUNIT:
        ET.fromstring(text)  # noqa: S314 - our own output
