"""The scan pipeline's warm path against the real loopback registry: once an image digest was
inventoried, inspecting its tag again makes one ``HEAD`` and no other registry request."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from kubegate.inventory import InventoryCache
from kubegate.registry import RegistryClient
from kubegate.scan import ImageInspector
from tests.fixtures.layers import DEBIAN_OS_RELEASE, DPKG_STATUS, Layer
from tests.fixtures.oci import Blob, build_image
from tests.fixtures.registry import RegistryServer

REQUEST = re.compile(r": (HEAD|GET) \S+ -> (\d+)$")


def _requests(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = (REQUEST.search(r.getMessage()) for r in caplog.records)
    return [m.group(1) for m in found if m]


def test_warm_inspection_only_resolves_the_tag(
    registry_plain: RegistryServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .build("gzip")
    )
    image = build_image([Blob(built.data, built.descriptor.media_type)])
    registry_plain.push("warm/app", "1.0", image)
    reference = registry_plain.ref("warm/app", "1.0")
    caplog.set_level(logging.DEBUG, logger="kubegate.registry.client")
    cache = InventoryCache(tmp_path / "inventory.sqlite3")
    try:
        with RegistryClient() as client:
            inspector = ImageInspector(client, cache)
            cold = inspector.inspect(reference)
            assert not cold.warm
            assert "GET" in _requests(caplog)
            caplog.clear()
            warm = inspector.inspect(reference)
    finally:
        cache.close()
    assert warm.warm and warm.digest == cold.digest == image.digest
    assert _requests(caplog) == ["HEAD"]
    (cold_platform,) = cold.platforms
    (warm_platform,) = warm.platforms
    assert warm_platform.inventory.packages == cold_platform.inventory.packages
    assert {p.name for p in warm_platform.inventory.packages} >= {"bash", "libssl3"}
