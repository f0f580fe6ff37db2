"""Hostile and broken layers are refused with one clear line (InventoryError, exit 2)."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pytest

from kubegate.errors import EXIT_UNPROVEN, InventoryError, RegistryError
from kubegate.inventory import InventoryCache, InventoryLimits, inventory_image
from kubegate.models import Descriptor, Digest
from tests.conftest import REPO, cli_env
from tests.fixtures.layers import (
    DPKG_STATUS,
    GZIP_MEDIA,
    TAR_MEDIA,
    ZSTD_MEDIA,
    Blobs,
    Built,
    Layer,
    ZeroBomb,
    blob,
    compress,
    descriptors,
    open_stream,
)

MANIFEST = Digest("sha256:" + "cd" * 32)


def refuse(*built: Built, limits: InventoryLimits | None = None) -> InventoryError:
    blobs = Blobs(*built)
    with pytest.raises(InventoryError) as info:
        inventory_image(
            MANIFEST,
            descriptors(*built),
            blobs.open,
            cache=None,
            limits=limits or InventoryLimits(),
        )
    error = info.value
    assert error.exit_code == EXIT_UNPROVEN
    assert "\n" not in error.diagnostics()
    assert error.where is not None
    return error


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "/./etc", "//x", "../../etc/passwd", "var/../../x", "a/../b"]
)
def test_path_traversal_names(name: str) -> None:
    error = refuse(Layer().raw(name).build())
    assert name in error.message


def test_hardlink_to_absolute_path() -> None:
    error = refuse(Layer().hardlink("x", "/etc/shadow").build())
    assert "absolute" in error.message


def test_wrong_magic() -> None:
    tar = Layer().file("a", "b").tar()
    error = refuse(blob(tar, "zstd", media_type=GZIP_MEDIA))
    assert error.message == "layer media type says gzip but its content is zstd"
    error = refuse(blob(tar, "gzip", media_type=TAR_MEDIA))
    assert error.message == "layer media type says none but its content is gzip"
    error = refuse(blob(tar, "none", media_type=ZSTD_MEDIA))
    assert error.message == "layer media type says zstd but its content is none"
    error = refuse(blob(b"garbage" * 100, "none"))
    assert error.message == "uncompressed layer is not a tar archive"
    error = refuse(blob(b"", "none"))
    assert error.message == "layer blob is empty"


def test_unknown_media_type() -> None:
    tar = Layer().file("a", "b").tar()
    error = refuse(blob(tar, "gzip", media_type="application/vnd.example.weird"))
    assert "unsupported layer media type" in error.message


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_truncated_layer(compression: str) -> None:
    layer = Layer().file("var/lib/dpkg/status", DPKG_STATUS * 20).build(compression)
    cut = layer.data[: len(layer.data) // 2]
    error = refuse(blob(cut, "none", media_type=layer.descriptor.media_type))
    assert "truncated" in error.message


def test_corrupt_gzip_data() -> None:
    layer = Layer().file("var/lib/dpkg/status", DPKG_STATUS * 20).build()
    data = bytearray(layer.data)
    data[40:60] = b"\xff" * 20
    error = refuse(blob(bytes(data), "none", media_type=GZIP_MEDIA))
    assert "cannot be decompressed" in error.message or "truncated" in error.message


def test_oversized_wanted_file_is_refused_before_reading() -> None:
    limits = InventoryLimits(max_file_bytes=1000)
    error = refuse(Layer().file("var/lib/dpkg/status", "x" * 1001).build(), limits=limits)
    assert error.message == "var/lib/dpkg/status is 1001 bytes, over the 1000-byte limit"
    # A big file no extractor reads is only streamed past.
    blobs = Blobs(big := Layer().file("usr/share/big", "x" * 5000).build())
    inv = inventory_image(MANIFEST, [big.descriptor], blobs.open, cache=None, limits=limits)
    assert inv.packages == ()


def test_too_many_entries() -> None:
    layer = Layer()
    for i in range(20):
        layer.file(f"f{i}", "x", parents=False)
    error = refuse(layer.build(), limits=InventoryLimits(max_entries=10))
    assert error.message == "layer has more than 10 entries"


def test_huge_pax_header() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a" * 4096)
        info.pax_headers = {"comment": "x" * 200_000}
        tar.addfile(info, io.BytesIO(b""))
    error = refuse(blob(out.getvalue()), limits=InventoryLimits(max_header_bytes=100_000))
    assert "extended header" in error.message


def test_uncompressed_size_limit() -> None:
    bomb = ZeroBomb(256 * 1024 * 1024, block=1024 * 1024)
    descriptor = Descriptor(GZIP_MEDIA, Digest("sha256:" + "00" * 32), 0)
    limits = InventoryLimits(max_layer_bytes=8 * 1024 * 1024, max_ratio=1e9)
    with pytest.raises(InventoryError, match="exceeds 8388608 uncompressed bytes"):
        inventory_image(
            MANIFEST, [descriptor], lambda _d: open_stream(bomb), cache=None, limits=limits
        )


def test_registry_errors_keep_their_class() -> None:
    built = Layer().file("a", "b").build()

    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise RegistryError("digest mismatch", where="blob")

    @contextmanager
    def opener(_d: Descriptor) -> Iterator[BinaryIO]:
        yield io.BufferedReader(Failing())  # type: ignore[misc]

    with pytest.raises(RegistryError, match="digest mismatch"):
        inventory_image(MANIFEST, [built.descriptor], opener, cache=None)


_BOMB_SCRIPT = """
import json, sys, time
from kubegate.errors import InventoryError
from kubegate.inventory import inventory_image
from kubegate.models import Descriptor, Digest
from tests.fixtures.layers import GZIP_MEDIA, ZSTD_MEDIA, ZeroBomb, open_stream

results = {}
for compression, media in (("gzip", GZIP_MEDIA), ("zstd", ZSTD_MEDIA)):
    bomb = ZeroBomb(16 * 1024**3, compression)  # 16 GiB of zeros
    descriptor = Descriptor(media, Digest("sha256:" + "00" * 32), 0)
    start = time.monotonic()
    try:
        inventory_image(Digest("sha256:" + "11" * 32), [descriptor],
                        lambda _d: open_stream(bomb), cache=None)
        message = None
    except InventoryError as exc:
        message = exc.diagnostics()
    results[compression] = {"seconds": time.monotonic() - start, "error": message}
# VmHWM is this program's own peak: ru_maxrss would also carry the parent's (pytest's) peak,
# which Linux keeps across fork and exec.
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
results["maxrss_kib"] = int(hwm.split()[1])
print(json.dumps(results))
"""


def test_decompression_bombs_refused_fast_and_small() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _BOMB_SCRIPT],
        cwd=REPO,
        env=cli_env({"PYTHONPATH": f"{REPO / 'src'}:{REPO}"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = json.loads(done.stdout)
    for compression in ("gzip", "zstd"):
        outcome = results[compression]
        assert outcome["error"] is not None, compression
        assert "compression ratio exceeds 200:1" in outcome["error"]
        assert outcome["seconds"] < 10
    assert results["maxrss_kib"] < 300 * 1024
    assert time.monotonic() - started < 30
    compress(b"", "none")  # keep the helper's "none" path exercised by the fixture module


def _without_end_marker(layer: Layer) -> bytes:
    tar = layer.tar()
    tf = tarfile.open(fileobj=io.BytesIO(tar), mode="r|")
    for _ in tf:
        pass
    return tar[: tf.offset]


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_tar_cut_at_a_member_boundary(compression: str) -> None:
    # Nothing in a zstd or plain stream proves it complete: the missing marker shows the cut.
    tar = _without_end_marker(Layer().file("etc/os-release", "ID=debian\n"))
    error = refuse(blob(tar, compression))
    assert error.message == "layer is truncated (no end-of-archive marker)"


def test_complete_gzip_stream_without_end_marker_is_read() -> None:
    # umoci's `insert` wrote such layers (opencontainers/umoci#436): gzip's trailer proves the
    # stream complete, so the layer is read as Go's archive/tar (Trivy, containerd) reads it.
    tar = _without_end_marker(
        Layer().dir("/").file("var/lib/dpkg/status", DPKG_STATUS).file("etc/os-release", "ID=x\n")
    )
    built = blob(tar, "gzip")
    inv = inventory_image(MANIFEST, descriptors(built), Blobs(built).open, cache=None)
    assert {p.name for p in inv.packages} == {"bash", "liblzma5", "libssl3", "tzdata", "zlib1g"}
    # The same gzip stream cut short (no trailer, or mid-deflate) is still refused.
    for cut in (built.data[:-8], built.data[:-4], built.data[: len(built.data) - 40]):
        error = refuse(blob(cut, "none", media_type=GZIP_MEDIA))
        assert "truncated" in error.message


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_tar_format(fmt: int) -> None:
    # ustar splits long names into prefix + name; GNU uses ././@LongLink; PAX a path record.
    deep = "var/lib/" + "d" * 60 + "/../../dpkg/status" if fmt != tarfile.USTAR_FORMAT else None
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        long_dir = "usr/share/" + "/".join(["component"] * 12)
        for name, data in (
            (f"{long_dir}/file", b"x"),
            ("var/lib/dpkg/status", DPKG_STATUS.encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    blobs = Blobs(built := blob(out.getvalue()))
    inv = inventory_image(MANIFEST, [built.descriptor], blobs.open, cache=None)
    assert len(inv.packages) == 5
    if deep is not None:
        assert refuse(Layer().raw(deep).build()).message.startswith("tar entry with '..'")


def test_corrupt_header_checksum() -> None:
    tar = bytearray(Layer().file("etc/os-release", "ID=debian\n").tar())
    tar[512 + 5] ^= 0x01  # a name byte of the second header (the first is the directory)
    error = refuse(blob(bytes(tar)))
    assert error.message == "invalid tar header checksum"


def test_refusal_stops_the_other_layers_walks() -> None:
    slow_layer = Layer().file("usr/share/blob", random.Random(0).randbytes(1 << 20)).build()
    bad_layer = blob(Layer().file("etc/os-release", "ID=x\n").tar()[:700], "gzip")

    class Slow(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            time.sleep(0.02)  # 1 MiB in 1 KiB reads: about 20 s if the walk were not stopped
            chunk = self._data.read(min(len(buffer), 1024))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    @contextmanager
    def opener(descriptor: Descriptor) -> Iterator[BinaryIO]:
        if descriptor.digest == slow_layer.digest:
            yield io.BufferedReader(Slow(slow_layer.data), 1024)  # type: ignore[misc]
        else:
            yield io.BytesIO(bad_layer.data)

    start = time.monotonic()
    with pytest.raises(InventoryError) as info:
        inventory_image(
            MANIFEST, [slow_layer.descriptor, bad_layer.descriptor], opener, cache=None, workers=2
        )
    assert time.monotonic() - start < 5
    assert info.value.where == bad_layer.digest and "truncated" in info.value.message


def test_kept_bytes_are_charged_per_image_across_layers_and_the_cache(
    inventory_cache: InventoryCache,
) -> None:
    # Each layer alone fits the image's budget; together they do not, whether walked in
    # parallel, one by one, or read back from the per-layer cache.
    status = DPKG_STATUS.encode()
    limit = len(status) + 500
    limits = InventoryLimits(max_captured_bytes=limit)
    lower = Layer().file("var/lib/dpkg/status", status).build()
    upper = Layer().file("var/lib/dpkg/info/bash.list", "/bin/bash\n" * 90).build()
    for workers in (1, 2):
        with pytest.raises(InventoryError, match=f"exceeds {limit} bytes") as info:
            inventory_image(
                MANIFEST,
                descriptors(lower, upper),
                Blobs(lower, upper).open,
                cache=None,
                limits=limits,
                workers=workers,
            )
        assert info.value.exit_code == EXIT_UNPROVEN
    other = Digest("sha256:" + "ef" * 32)
    inventory_image(
        other, descriptors(lower, upper), Blobs(lower, upper).open, cache=inventory_cache
    )
    blobs = Blobs(lower, upper)
    with pytest.raises(InventoryError, match=f"exceeds {limit} bytes"):
        inventory_image(
            MANIFEST, descriptors(lower, upper), blobs.open, cache=inventory_cache, limits=limits
        )
    assert not blobs.opened, "refused from the cached layers, without opening a blob"


def test_layer_list_limits_apply_before_any_blob_is_opened() -> None:
    built = Layer().file("etc/os-release", "ID=debian\n").build()
    blobs = Blobs(built)
    limits = InventoryLimits(max_layers=3, max_layer_repeats=2)
    for count, message in ((3, "is listed 3 times, more than the 2 allowed"), (4, "4 layers")):
        with pytest.raises(InventoryError, match=message) as info:
            inventory_image(
                MANIFEST, [built.descriptor] * count, blobs.open, cache=None, limits=limits
            )
        assert info.value.where == MANIFEST
    assert not blobs.opened


def test_entries_are_counted_per_image_across_layers() -> None:
    lower = Layer().file("srv/a/1", "x").file("srv/a/2", "x").build()  # srv, srv/a, 2 files
    upper = Layer().file("srv/b/1", "x").file("srv/b/2", "x").build()
    limits = InventoryLimits(max_image_entries=6)
    inventory_image(MANIFEST, descriptors(lower), Blobs(lower).open, cache=None, limits=limits)
    error = refuse(lower, upper, limits=limits)
    assert error.message == "the image's layers have more than 6 entries in all"
