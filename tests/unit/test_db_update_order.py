"""Default ``db update`` order: feeds of images already in the inventory cache come first."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubegate.cli.dbupdate import ordered_defaults, seen_feeds
from kubegate.inventory.cache import FILENAME, InventoryCache, encode_packages, seen_inventory
from kubegate.models import Digest, OSInfo, Package
from kubegate.vulndb.update import DEFAULT_ECOSYSTEMS


def _package(name: str, type_: str) -> Package:
    return Package(
        name=name, version="1.0", type=type_, purl=f"pkg:{type_}/{name}@1.0", extractor=type_
    )


def _cache(path: Path) -> None:
    cache = InventoryCache(path)
    try:
        cache.put_image(
            Digest("sha256:" + "a" * 64),
            encode_packages(OSInfo("alpine", "3.20.1"), (_package("musl", "apk"),)),
        )
        cache.put_image(
            Digest("sha256:" + "b" * 64),
            encode_packages(None, (_package("requests", "pypi"), _package("left-pad", "npm"))),
        )
    finally:
        cache.close()


def test_seen_inventory_reads_systems_and_types(tmp_path: Path) -> None:
    path = tmp_path / "inventory.sqlite3"
    _cache(path)
    seen = seen_inventory(path)
    assert seen.systems == {("alpine", "3.20.1")}
    assert seen.package_types == {"apk", "pypi", "npm"}
    assert seen_inventory(tmp_path / "absent.sqlite3").systems == frozenset()
    assert not (tmp_path / "absent.sqlite3").exists()  # read-only: never created
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database")
    assert seen_inventory(tmp_path / "junk.sqlite3").package_types == frozenset()


def test_defaults_put_seen_feeds_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEGATE_CACHE_DIR", str(tmp_path))
    assert ordered_defaults() == DEFAULT_ECOSYSTEMS  # no cache yet
    _cache(tmp_path / FILENAME)
    assert seen_feeds() == ["Alpine", "npm", "PyPI"]
    ordered = ordered_defaults()
    assert ordered[:4] == ("Alpine", "npm", "PyPI", "Debian")
    assert sorted(ordered) == sorted(DEFAULT_ECOSYSTEMS)
