"""``kubegate db import|status`` as a user runs them (real subprocess, real SQLite file)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from tests.conftest import RunCli
from tests.fixtures.osvdb import OSV_DATA


def _zip(tmp_path: Path, directory: str) -> Path:
    archive = tmp_path / f"{directory}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((OSV_DATA / directory).glob("*.json")):
            zf.write(path, path.name)
    return archive


def test_import_directory_counts_invalid_and_exits_0(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    result = run_cli("db", "import", str(OSV_DATA), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "28 added" in result.stdout and "1 withdrawn" in result.stdout
    assert "3 invalid (skipped)" in result.stdout
    assert "skipping invalid OSV record" in result.stderr and "Traceback" not in result.stderr
    again = run_cli("db", "import", str(OSV_DATA), "--db", str(db))
    assert again.returncode == 0
    assert "0 added, 0 replaced, 28 unchanged" in again.stdout


def test_import_zip_into_default_cache_location(run_cli: RunCli, tmp_path: Path) -> None:
    archive = _zip(tmp_path, "debian")
    result = run_cli("db", "import", str(archive))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kubegate-cache" / "osv.sqlite3").is_file()
    status = run_cli("db", "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["schemaVersion"] == 2
    assert document["records"] == 4
    assert document["sizeBytes"] > 0
    (debian,) = document["ecosystems"]
    assert debian["ecosystem"] == "Debian" and debian["records"] == 4
    assert debian["newestModified"].startswith("2024-06-01")
    assert debian["lastImport"]


def test_kubegate_db_env_and_table_status(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    env = {"KUBEGATE_DB": str(db)}
    assert run_cli("db", "import", str(OSV_DATA / "pypi"), env=env).returncode == 0
    status = run_cli("db", "status", env=env)
    assert status.returncode == 0
    assert f"database: {db}" in status.stdout
    assert "schema version: 2" in status.stdout
    assert any(line.split()[:2] == ["PyPI", "2"] for line in status.stdout.splitlines())


def test_missing_path_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("db", "import", str(tmp_path / "missing.zip"), "--db", str(tmp_path / "d"))
    assert result.returncode == 3
    assert result.stderr.strip().endswith("missing.zip: no such file or directory")
    assert "Traceback" not in result.stderr
    assert run_cli("db", "import").returncode == 3


def test_corrupt_zip_exits_2_and_keeps_previous_db(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "osv.db"
    assert run_cli("db", "import", str(_zip(tmp_path, "debian")), "--db", str(db)).returncode == 0
    bad = tmp_path / "bad.zip"
    shutil.copy(_zip(tmp_path, "nvd"), bad)
    bad.write_bytes(bad.read_bytes()[:-60])  # cut the central directory
    result = run_cli("db", "import", str(_zip(tmp_path, "pypi")), str(bad), "--db", str(db))
    assert result.returncode == 2
    assert "bad.zip" in result.stderr and "Traceback" not in result.stderr
    status = json.loads(run_cli("db", "status", "--db", str(db), "--format", "json").stdout)
    assert [e["ecosystem"] for e in status["ecosystems"]] == ["Debian"]


def test_status_without_db_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("db", "status", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 2
    assert "no advisory database" in result.stderr


def test_not_a_database_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"x" * 4096)
    result = run_cli("db", "import", str(OSV_DATA / "nvd"), "--db", str(bogus))
    assert result.returncode == 2
    assert "not a kubegate advisory database" in result.stderr


def test_usage_errors_exit_3(run_cli: RunCli) -> None:
    for args in (("db",), ("db", "status", "--format", "xml"), ("db", "frobnicate")):
        result = run_cli(*args)
        assert result.returncode == 3, args
        assert result.stderr.startswith("kubegate: error: kubegate db")
        assert "Traceback" not in result.stderr
