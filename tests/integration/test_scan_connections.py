"""``kubegate scan --concurrency N`` opens at most N connections to a registry, and reuses them.

The registry is the real loopback one behind bench/wan.py's proxy (no added latency), which
counts the TCP connections a whole scan opens; the scan runs through the CLI in a subprocess.
The refused HTTPS probe a plain-HTTP loopback registry gets first is counted apart (against a
TLS registry that first connection is the one reused).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.wan import WanProxy

from tests.conftest import RunCli
from tests.fixtures.gatefleet import VULNERABLE, gate_layer, write_fleet
from tests.fixtures.oci import build_image, layer_blob
from tests.fixtures.registry import RegistryServer


@pytest.mark.parametrize("concurrency", [1, 2])
def test_scan_connections_bounded_by_concurrency(
    concurrency: int,
    run_cli: RunCli,
    registry_plain: RegistryServer,
    gate_dbs: dict[str, Path],
    tmp_path: Path,
) -> None:
    # Four layers: at -c 1 the layer walkers (one per core) used to open one connection each.
    layers = [gate_layer(*VULNERABLE)] + [
        layer_blob({f"app/{n}.bin": bytes([n]) * 50_000}) for n in range(3)
    ]
    registry_plain.push("conn/web", "1", build_image(layers))
    host, _, port = registry_plain.host.rpartition(":")
    with WanProxy((host, int(port)), latency=0.0) as proxy:
        fleet = write_fleet(tmp_path / "fleet", f"{proxy.address}/conn/web:1")
        result = run_cli(
            "scan",
            str(fleet),
            "--db",
            str(gate_dbs["osv"]),
            "--skip-db-update",
            "--concurrency",
            str(concurrency),
        )
        counters = proxy.counters()
    assert result.returncode == 1, result.stderr  # the vulnerable openssl: BLOCKED
    assert "Traceback" not in result.stderr
    assert counters.tls == 1
    assert 1 <= counters.accepted - counters.tls <= concurrency
