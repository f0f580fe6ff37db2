"""Content-addressed storage of fetched charts and artifact layers, under the cache dir.

Layout: ``<cache_dir>/charts/sha256/<hex>.tgz`` (chart archives) and
``<cache_dir>/blobs/sha256/<hex>`` (OCI artifact layers of Flux Kustomization sources). A file
is stored only after its bytes hashed to its name (written to a private temporary file in the
same directory, then renamed: readers never see a partial file, and two writers of one digest
both write the same bytes).

A cached file is **re-verified on every use**, not trusted by its name: hashing is cheap next to
a download (a chart is kilobytes to a few megabytes; sha256 runs at hundreds of MB/s) and the
cache dir may be shared or tampered with between runs. A file that does not hash to its name is
deleted and fetched again. Called by :class:`kubegate.fetch.Fetcher`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kubegate.errors import RenderError

_logger = logging.getLogger(__name__)

_CHUNK = 1 << 16


def hex_of(digest: str) -> str:
    """The hex part of a ``sha256:<64 hex>`` digest (RenderError for anything else)."""
    algorithm, _, hexpart = digest.partition(":")
    if (
        algorithm != "sha256"
        or len(hexpart) != 64
        or not all(c in "0123456789abcdef" for c in hexpart)
    ):
        raise RenderError(f"unsupported digest {digest[:80]!r} (expected sha256:<64 hex>)")
    return hexpart


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


class BlobCache:
    """Verified files named by their sha256 in one directory (``kind`` = ``charts``/``blobs``)."""

    def __init__(self, root: Path, kind: str, suffix: str = "") -> None:
        self.directory = root / kind / "sha256"
        self._suffix = suffix

    def path(self, digest: str) -> Path:
        """Where the file of ``digest`` lives (whether or not it is there)."""
        return self.directory / f"{hex_of(digest)}{self._suffix}"

    def get(self, digest: str) -> Path | None:
        """The cached file of ``digest`` if present and still hashing to it."""
        path = self.path(digest)
        try:
            if not path.is_file() or path.is_symlink():
                return None
            actual = file_digest(path)
        except OSError:
            return None
        if actual == digest:
            return path
        _logger.warning("cache: %s does not hash to its name (%s); fetching again", path, actual)
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def store(
        self, chunks: Iterable[bytes], *, limit: int, what: str, expected: str | None = None
    ) -> tuple[Path, str, int]:
        """Write ``chunks`` (at most ``limit`` bytes) into the cache; return path, digest, size.

        ``expected``: the digest the bytes must have (RenderError naming both otherwise; nothing
        is stored). Without it the file is stored under whatever digest it has.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        hasher = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.directory, prefix=".partial-")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise RenderError(f"{what} is larger than the {limit}-byte limit")
                    hasher.update(chunk)
                    handle.write(chunk)
            digest = f"sha256:{hasher.hexdigest()}"
            if expected is not None and digest != expected:
                raise RenderError(f"{what} digest mismatch: expected {expected}, got {digest}")
            final = self.path(digest)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return final, digest, size
