"""User-named text files are read bounded: devices, FIFOs, oversize and non-UTF-8 are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubegate.errors import ConfigError
from kubegate.textfile import read_text
from tests.conftest import RunCli, user_config


def test_reads_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("key: välue\n")
    assert read_text(path, 100, "thing") == "key: välue\n"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_bytes(b"x" * 101), "larger than 100 bytes"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00"), "not UTF-8"),
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
        (lambda p: None, "cannot read thing"),
    ],
    ids=["oversize", "binary", "fifo", "device", "missing"],
)
def test_refusals(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "thing"
    setup(path)
    with pytest.raises(ConfigError, match=message):
        read_text(path, 100, "thing")


def test_config_pointing_at_a_device_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    # The implicit configuration lives in the user config directory (see tests/conftest.py).
    (user_config(tmp_path) / "kubegate.yaml").symlink_to("/dev/zero")
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    result = run_cli("scan", str(fleet), timeout=30)
    assert result.returncode == 3
    assert "not a regular file" in result.stderr and "Traceback" not in result.stderr
