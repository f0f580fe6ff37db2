"""Trivy's ignore formats mapped onto kubegate's exceptions, and the lookup order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kubegate.decide.trivyignore import find_exceptions_file, is_trivy_file, load_exceptions
from kubegate.errors import ConfigError
from tests.unit.test_ignorefile import FINDING, IMAGE, TODAY, USE


def test_line_format_comments_expiry_and_permanent(tmp_path: Path) -> None:
    path = tmp_path / ".trivyignore"
    path.write_text(
        "# OpenSSL SM2 is never used\n# (see ticket 42)\nCVE-2021-3711\n\n"
        "CVE-2022-0778 exp:2026-11-27\nCVE-2022-1292 exp:2026-11-26\n"
    )
    ignore = load_exceptions(path)
    entries = {e.id: e for e in ignore.vulnerabilities}
    assert entries["CVE-2021-3711"].reason == "OpenSSL SM2 is never used (see ticket 42)"
    assert entries["CVE-2021-3711"].expires is None
    assert entries["CVE-2022-0778"].reason == "listed in .trivyignore"
    # Trivy: expired once the date is reached.
    assert entries["CVE-2022-0778"].active(TODAY)
    assert not entries["CVE-2022-1292"].active(TODAY)
    assert [e.id for e in ignore.permanent()] == ["CVE-2021-3711"]
    assert ignore.vulnerability_exception(FINDING, USE, IMAGE, TODAY) is not None
    assert ignore.expired(TODAY) == (entries["CVE-2022-1292"],)


def test_yaml_format_purls_and_paths_scope(tmp_path: Path) -> None:
    path = tmp_path / ".trivyignore.yaml"
    path.write_text(
        "vulnerabilities:\n"
        "  - {id: CVE-2021-3711, purls: ['pkg:deb/debian/libssl1.1'], statement: fine}\n"
        "  - {id: CVE-2021-3711, paths: ['usr/lib/*']}\n"
        "  - {id: CVE-2021-3711, purls: [openssl]}\n"
        "  - {id: CVE-2021-3711, expired_at: tomorrow}\n"
        "secrets: []\n"
    )
    ignore = load_exceptions(path)
    assert [e.where.rsplit(" ", 1)[-1] for e in ignore.vulnerabilities] == [
        "vulnerabilities[1]",
        "vulnerabilities[2]",
    ]
    by_purl, by_path = ignore.vulnerabilities
    assert by_purl.covers(FINDING, USE, IMAGE) and by_purl.reason == "fine"
    assert not by_path.covers(FINDING, USE, IMAGE)
    located = dataclasses.replace(
        FINDING, package=dataclasses.replace(FINDING.package, location="/usr/lib/x/status")
    )
    assert by_path.covers(located, USE, IMAGE)
    problems = "\n".join(ignore.problems)
    assert "secrets do not apply" in problems
    assert "vulnerabilities[3]: purls must be package URLs" in problems
    assert "vulnerabilities[4]: invalid expiry 'tomorrow'" in problems


def test_lookup_order_and_format_by_name(tmp_path: Path) -> None:
    assert find_exceptions_file(tmp_path) is None
    (tmp_path / ".trivyignore").write_text("CVE-1\n")
    assert find_exceptions_file(tmp_path) == tmp_path / ".trivyignore"
    (tmp_path / ".trivyignore.yaml").write_text("vulnerabilities: []\n")
    assert find_exceptions_file(tmp_path) == tmp_path / ".trivyignore.yaml"
    (tmp_path / ".kubegateignore.yaml").write_text("vulnerabilities: []\n")
    assert find_exceptions_file(tmp_path) == tmp_path / ".kubegateignore.yaml"
    assert is_trivy_file(Path(".trivyignore.prod"))
    assert not is_trivy_file(Path("trivyignore"))


def test_kubegate_format_still_requires_expiry(tmp_path: Path) -> None:
    path = tmp_path / "exceptions.yaml"
    path.write_text("vulnerabilities:\n  - {id: CVE-1, reason: r}\n")
    ignore = load_exceptions(path)
    assert ignore.vulnerabilities == () and "expires is required" in ignore.problems[0]


@pytest.mark.parametrize(
    ("name", "body"), [(".trivyignore", b"\xff\xfe"), (".trivyignore.yml", b": [")]
)
def test_unreadable_trivy_files_are_config_errors(tmp_path: Path, name: str, body: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(body)
    with pytest.raises(ConfigError) as caught:
        load_exceptions(path)
    assert caught.value.where == str(path)
