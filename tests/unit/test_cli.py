"""The CLI's contract: exit codes for usage errors, one-line errors, no tracebacks."""

from __future__ import annotations

import pytest

from tests.conftest import RunCli


@pytest.mark.parametrize(
    "args",
    [
        ("--no-such-flag",),
        ("no-such-command",),
        (),
        ("images", "--format", "yaml"),
        ("images", "--bogus"),
    ],
)
def test_usage_errors_exit_3_with_one_line(run_cli: RunCli, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kubegate: error:")
    assert "Traceback" not in result.stderr


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("kubegate ")


def test_missing_source_directory_exits_2(run_cli: RunCli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("images", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "absent" in result.stderr
    assert "Traceback" not in result.stderr
