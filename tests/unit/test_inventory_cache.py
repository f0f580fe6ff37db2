"""The per-layer and per-image inventory cache: warm runs open no blob, corruption is survived."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest

from kubegate.inventory import ImageInventory, InventoryCache, cached_inventory, inventory_image
from kubegate.inventory import cache as cache_module
from kubegate.inventory.extractors import EXTRACTORS
from kubegate.inventory.walker import WALKER_VERSION
from kubegate.models import Descriptor, Digest
from tests.conftest import REPO, cli_env
from tests.fixtures.layers import (
    DEBIAN_OS_RELEASE,
    DPKG_STATUS,
    Blobs,
    Built,
    Layer,
    descriptors,
)

IMAGE_A = Digest("sha256:" + "a1" * 32)
IMAGE_B = Digest("sha256:" + "b2" * 32)


def layers() -> tuple[Built, Built]:
    base = (
        Layer()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .file("var/lib/dpkg/info/bash.list", "/bin/bash\n")
        .build()
    )
    upper = (
        Layer().file("var/lib/dpkg/status", DPKG_STATUS.replace("5.2.15-2+b2", "5.2.15-3")).build()
    )
    return base, upper


def test_cached_inventory_alone(inventory_cache: InventoryCache) -> None:
    """What a warm scan reads: the per-image entry only; missing or unreadable gives None."""
    base, upper = layers()
    assert cached_inventory(IMAGE_A, inventory_cache) is None
    cold = inventory_image(
        IMAGE_A, descriptors(base, upper), Blobs(base, upper).open, cache=inventory_cache
    )
    hit = cached_inventory(IMAGE_A, inventory_cache)
    assert hit is not None and hit.cache_hit == "image"
    assert (hit.os, hit.packages, hit.layers) == (cold.os, cold.packages, ())
    inventory_cache.put_image(IMAGE_B, {"os": None, "packages": [{"name": "no-version"}]})
    assert cached_inventory(IMAGE_B, inventory_cache) is None


def test_warm_run_opens_no_blob(inventory_cache: InventoryCache) -> None:
    base, upper = layers()
    blobs = Blobs(base, upper)
    cold = inventory_image(IMAGE_A, descriptors(base, upper), blobs.open, cache=inventory_cache)
    assert sorted(blobs.opened) == sorted([base.digest, upper.digest])
    assert cold.cache_hit == "none"

    blobs.fail = True
    warm = inventory_image(IMAGE_A, descriptors(base, upper), blobs.open, cache=inventory_cache)
    assert warm == cold and warm.cache_hit == "image"
    # Another image made of the same layers: merged and extracted from cached layers alone.
    other = inventory_image(IMAGE_B, descriptors(base, upper), blobs.open, cache=inventory_cache)
    assert other.cache_hit == "layers"
    assert other.packages == cold.packages and other.os == cold.os
    bash = next(p for p in other.packages if p.name == "bash")
    assert (bash.version, bash.layer, bash.files) == ("5.2.15-3", upper.digest, ("/bin/bash",))


def test_warm_run_in_a_new_process_uses_the_file(tmp_path: Path) -> None:
    base, upper = layers()
    path = tmp_path / "inv.sqlite3"
    first = InventoryCache(path)
    cold = inventory_image(IMAGE_A, descriptors(base, upper), Blobs(base, upper).open, cache=first)
    first.close()
    second = InventoryCache(path)
    failing = Blobs()
    failing.fail = True
    warm = inventory_image(IMAGE_B, descriptors(base, upper), failing.open, cache=second)
    assert warm.packages == cold.packages
    second.close()


def test_default_location_is_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEGATE_CACHE_DIR", str(tmp_path / "kc"))
    cache = InventoryCache()
    assert cache.path == tmp_path / "kc" / "inventory.sqlite3" and cache.path.exists()
    cache.close()


def test_key_covers_walker_and_every_extractor_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = cache_module.versions_key()
    assert f"walker:{WALKER_VERSION}" in key
    for extractor in EXTRACTORS:
        assert f"{extractor.name}:{extractor.version}" in key
    base, upper = layers()
    path = tmp_path / "inv.sqlite3"
    cache = InventoryCache(path)
    inventory_image(IMAGE_A, descriptors(base, upper), Blobs(base, upper).open, cache=cache)
    cache.close()
    monkeypatch.setattr(cache_module, "fingerprint", lambda: "os-release:1,dpkg:2,apk:1")
    bumped = InventoryCache(path)
    blobs = Blobs(base, upper)
    result = inventory_image(IMAGE_A, descriptors(base, upper), blobs.open, cache=bumped)
    assert result.cache_hit == "none" and len(blobs.opened) == 2
    bumped.close()


@pytest.mark.parametrize(
    "garbage", [b"this is not sqlite" * 100, b"SQLite format 3\0" + b"\xff" * 4000]
)
def test_corrupt_cache_file_is_rebuilt(
    tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kubegate.inventory.cache")
    base, upper = layers()
    path = tmp_path / "inv.sqlite3"
    cache = InventoryCache(path)
    inventory_image(IMAGE_A, descriptors(base, upper), Blobs(base, upper).open, cache=cache)
    cache.close()
    path.write_bytes(garbage)
    rebuilt = InventoryCache(path)
    assert "rebuilding" in caplog.text
    blobs = Blobs(base, upper)
    result = inventory_image(IMAGE_A, descriptors(base, upper), blobs.open, cache=rebuilt)
    assert len(blobs.opened) == 2 and {p.name for p in result.packages} >= {"bash", "libssl3"}
    blobs.fail = True
    again = inventory_image(IMAGE_A, descriptors(base, upper), blobs.open, cache=rebuilt)
    assert again.cache_hit == "image"
    rebuilt.close()


def test_cache_corrupted_while_open_is_not_fatal(tmp_path: Path) -> None:
    base, upper = layers()
    path = tmp_path / "inv.sqlite3"
    cache = InventoryCache(path)
    path.write_bytes(b"\0garbage" * 2000)
    Path(f"{path}-wal").unlink(missing_ok=True)
    blobs = Blobs(base, upper)
    result = inventory_image(IMAGE_A, descriptors(base, upper), blobs.open, cache=cache)
    assert {p.name for p in result.packages} >= {"bash"}
    cache.close()


_WORKER = """
import json, sys
from pathlib import Path
from kubegate.inventory import ImageInventory, InventoryCache, cached_inventory, inventory_image
from kubegate.models import Descriptor, Digest
from tests.unit.test_inventory_cache import layers
from tests.fixtures.layers import Blobs, descriptors

base, upper = layers()
cache = InventoryCache(Path(sys.argv[1]))
names = []
for i in range(int(sys.argv[2]), int(sys.argv[2]) + 5):
    digest = Digest("sha256:" + f"{i:064x}")
    inv = inventory_image(digest, descriptors(base, upper), Blobs(base, upper).open, cache=cache)
    names.append(sorted(p.name for p in inv.packages))
print(json.dumps(names))
"""


def test_concurrent_processes_share_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    env = cli_env({"PYTHONPATH": f"{REPO / 'src'}:{REPO}"})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(start)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, 100, 200, 300)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "corrupt" not in err and "unusable" not in err
        for names in json.loads(out):
            assert names == ["bash", "liblzma5", "libssl3", "tzdata", "zlib1g"]
    cache = InventoryCache(path)
    blobs = Blobs()
    blobs.fail = True
    base, upper = layers()
    for start in (0, 100, 200, 300):
        digest = Digest("sha256:" + f"{start + 4:064x}")
        warm = inventory_image(digest, descriptors(base, upper), blobs.open, cache=cache)
        assert warm.cache_hit == "image"
    cache.close()


def test_layers_decoded_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Images of one scan share base layers: their cached entry is decoded once, not per image."""
    base, upper = layers()
    path = tmp_path / "inv.sqlite3"
    first = InventoryCache(path)
    inventory_image(IMAGE_A, descriptors(base, upper), Blobs(base, upper).open, cache=first)
    first.close()
    decoded: list[Digest] = []
    real = cache_module._decode_layer

    def counting(digest: Digest, blob: bytes):  # type: ignore[no-untyped-def]
        decoded.append(digest)
        return real(digest, blob)

    monkeypatch.setattr(cache_module, "_decode_layer", counting)
    second = InventoryCache(path)
    failing = Blobs(base, upper)
    failing.fail = True
    for image in (IMAGE_B, Digest("sha256:" + "c3" * 32)):
        result = inventory_image(image, descriptors(base, upper), failing.open, cache=second)
        assert result.cache_hit == "layers"
    assert sorted(decoded) == sorted([base.digest, upper.digest])
    second.close()
    assert second.get_layer(base.digest) is None  # a closed cache is an empty cache


def test_cache_writes_do_not_fsync_every_put(inventory_cache: InventoryCache) -> None:
    """WAL + synchronous=NORMAL: corruption-safe, and a put costs no fsync (a cache may lose
    its last writes on power loss, never its consistency)."""
    conn = inventory_cache._conn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_concurrent_images_walk_a_shared_layer_once(inventory_cache: InventoryCache) -> None:
    """Two images inspected at once share a base layer: one thread walks it, the other waits
    for that walk and takes the result from the cache (scan runs images in parallel)."""
    base, upper = layers()
    other_upper = Layer().file("srv/app.txt", "second image\n").build()
    base_opening, other_opened = threading.Event(), threading.Event()
    blobs = Blobs(base, upper, other_upper)
    real_open = blobs.open

    @contextmanager
    def opener(descriptor: Descriptor) -> Iterator[BinaryIO]:
        if descriptor.digest == base.digest:
            base_opening.set()
            # Hold the base walk until the second image has claimed its own layer, so it
            # finds the base layer being walked.
            assert other_opened.wait(10)
        with real_open(descriptor) as stream:
            if descriptor.digest == other_upper.digest:
                other_opened.set()
            yield stream

    results: dict[str, object] = {}

    def run(name: str, image: Digest, built: tuple[Built, ...]) -> None:
        results[name] = inventory_image(
            image, descriptors(*built), opener, cache=inventory_cache, workers=1
        )

    first = threading.Thread(target=run, args=("a", IMAGE_A, (base, upper)))
    first.start()
    assert base_opening.wait(10)
    second = threading.Thread(target=run, args=("b", IMAGE_B, (base, other_upper)))
    second.start()
    first.join(20)
    second.join(20)
    assert blobs.opened.count(base.digest) == 1
    assert sorted(blobs.opened) == sorted([base.digest, upper.digest, other_upper.digest])
    a, b = results["a"], results["b"]
    assert isinstance(a, ImageInventory) and isinstance(b, ImageInventory)
    assert {p.name for p in b.packages} >= {"bash", "libssl3"}
    assert b.os == a.os and b.cache_hit == "none"
