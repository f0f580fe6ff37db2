"""Hostile layer sets are refused within bounded time and memory (exit 2, one clear line).

Each image is built here as an OCI layout and read by the real CLI (``kubegate sbom``) in a
child process whose peak RSS and wall time are measured by a parent process of its own
(``resource.getrusage(RUSAGE_CHILDREN)``), so that nothing else this test run started counts.
Layer data is repetitive (fast to build and compress) after a small random file that keeps the
compression ratio under the decompression-bomb bound, so each refusal is the limit under test.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubegate.inventory import InventoryLimits
from kubegate.inventory.dpkg import MAX_LISTED_PATHS
from tests.conftest import cli_env
from tests.fixtures.oci import Blob, build_image, layer_blob, write_oci_layout

MiB = 1024 * 1024
LIMITS = InventoryLimits()
BOOKWORM = 'ID=debian\nVERSION_ID="12"\n'

_MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
print(json.dumps({"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
                  "seconds": time.monotonic() - start,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _measured_sbom(tmp_path: Path, layers: list[Blob]) -> dict[str, Any]:
    layout = write_oci_layout(tmp_path / "image", {"1": build_image(layers)})
    command = [sys.executable, "-m", "kubegate", "sbom", f"oci:{layout}:1", "--format", "json"]
    env = cli_env({"KUBEGATE_CACHE_DIR": str(tmp_path / "cache")})
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    assert "Traceback" not in result["stderr"]
    return result


def _noise(size: int = 2 * MiB) -> bytes:
    """Incompressible bytes: with them first, repetitive data stays under the 200:1 bound."""
    return random.Random(7).randbytes(size)


def _status(names: list[str], description: bytes = b"") -> bytes:
    return b"".join(
        b"Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n"
        b"Description: test package\n%s\n" % (name.encode(), description)
        for name in names
    )


def _error(result: dict[str, Any]) -> str:
    lines = [line for line in result["stderr"].splitlines() if line.startswith("kubegate: error:")]
    assert len(lines) == 1, result["stderr"]
    return lines[0]


def test_captured_bytes_per_image_are_capped(tmp_path: Path) -> None:
    # Five 60 MiB dpkg file lists (each under the 64 MiB per-file limit): 300 MiB kept in
    # memory without the per-image cap (30 of them took 9.3 GB before it existed).
    lines = b"/usr/share/doc/some-package/changelog.Debian.gz\n"
    big = lines * (60 * MiB // len(lines))
    names = [f"pkg{n}" for n in range(5)]
    files = {f"var/lib/dpkg/info/{name}.list": big for name in names}
    layer = layer_blob(
        {
            "etc/os-release": BOOKWORM.encode(),
            "usr/share/noise": _noise(),
            "var/lib/dpkg/status": _status(names),
            **files,
        }
    )
    del files, big
    result = _measured_sbom(tmp_path, [layer])
    assert result["code"] == 2
    assert (
        f"the image's package data (files kept for the extractors) exceeds "
        f"{LIMITS.max_captured_bytes} bytes" in _error(result)
    )
    assert result["maxrss_mib"] < 1024, result
    assert result["seconds"] < 60, result


def test_dpkg_file_lists_are_capped_in_paths(tmp_path: Path) -> None:
    # Within the byte cap, short lines still cost ~100 bytes each as strings: bounded in count.
    line = b"/a/b\n"
    per_file = (MAX_LISTED_PATHS // 2) + 1000
    names = ["pkg0", "pkg1"]
    layer = layer_blob(
        {
            "etc/os-release": BOOKWORM.encode(),
            "usr/share/noise": _noise(MiB),
            "var/lib/dpkg/status": _status(names),
            **{f"var/lib/dpkg/info/{name}.list": line * per_file for name in names},
        }
    )
    result = _measured_sbom(tmp_path, [layer])
    assert result["code"] == 2
    assert f"the dpkg file lists name more than {MAX_LISTED_PATHS} paths in all" in _error(result)
    assert result["maxrss_mib"] < 1024, result


def test_large_dpkg_status_is_parsed_streaming(tmp_path: Path) -> None:
    # A 60 MB status of 60 packages with 1 MB descriptions: 37 s here when every field of every
    # stanza was kept and long fields were joined by repeated concatenation (quadratic); the
    # red-team's 63 MB status took 47 s and 2.3 GB. Streamed, keeping five fields: ~2.5 s.
    description = b" a long description line that dpkg would show in apt show output\n" * 16000
    names = [f"pkg{n:04d}" for n in range(60)]
    status = _status(names, description)
    assert 55 * MiB < len(status) < LIMITS.max_file_bytes
    layer = layer_blob(
        {
            "etc/os-release": BOOKWORM.encode(),
            "usr/share/noise": _noise(MiB),
            "var/lib/dpkg/status": status,
        }
    )
    del status
    result = _measured_sbom(tmp_path, [layer])
    assert result["code"] == 0, result["stderr"]
    packages = json.loads(result["stdout"])["packages"]
    assert sorted(p["name"] for p in packages) == names
    assert result["maxrss_mib"] < 768, result
    assert result["seconds"] < 20, result


@pytest.mark.parametrize(
    ("copies", "distinct", "message"),
    [
        (
            LIMITS.max_layer_repeats + 1,
            1,
            f"is listed {LIMITS.max_layer_repeats + 1} times, more than the "
            f"{LIMITS.max_layer_repeats} allowed",
        ),
        # One 1.2 MB layer listed 5,000 times took 4 minutes and 6.3 GB before.
        (5000, 1, f"the image has 5000 layers, more than the {LIMITS.max_layers} allowed"),
        (
            1,
            LIMITS.max_layers + 1,
            f"the image has {LIMITS.max_layers + 1} layers, more than the "
            f"{LIMITS.max_layers} allowed",
        ),
    ],
)
def test_layer_lists_are_capped(tmp_path: Path, copies: int, distinct: int, message: str) -> None:
    layers = [
        layer_blob({"etc/os-release": BOOKWORM.encode(), f"srv/{n}": b"x"}) for n in range(distinct)
    ]
    result = _measured_sbom(tmp_path, layers * copies)
    assert result["code"] == 2
    assert message in _error(result)
    assert result["seconds"] < 30, result
    assert result["maxrss_mib"] < 512, result


def test_repeated_layers_within_the_limit_are_applied_each_time(tmp_path: Path) -> None:
    # A repeat is legitimate (identical build steps): walked once, applied where it is listed.
    base = layer_blob(
        {"etc/os-release": BOOKWORM.encode(), "var/lib/dpkg/status": _status(["a", "b"])}
    )
    result = _measured_sbom(tmp_path, [base] * LIMITS.max_layer_repeats)
    assert result["code"] == 0, result["stderr"]
    assert sorted(p["name"] for p in json.loads(result["stdout"])["packages"]) == ["a", "b"]
