"""Digest checks for everything kubegate reads from a registry or a local image.

:class:`VerifyingReader` wraps a stream of chunks (an HTTP response, a file, a section of a tar
archive) so that the consumer (the inventory layer walker) reads ordinary bytes while every byte is
hashed; reading past the descriptor's size or reaching EOF with the wrong size or digest raises
:class:`~kubegate.errors.RegistryError` from ``read()``. :func:`read_limited` and
:func:`check_digest` do the same for small documents (manifests, configs) read whole.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from typing import Any

from kubegate.errors import RegistryError
from kubegate.models import Descriptor, Digest

_DIGEST = re.compile(r"(sha256):([a-f0-9]{64})|(sha512):([a-f0-9]{128})")


def split_digest(digest: str, *, where: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of a well-formed digest; anything else is a RegistryError."""
    match = _DIGEST.fullmatch(digest)
    if not match:
        raise RegistryError(f"invalid or unsupported digest {digest[:80]!r}", where=where)
    algorithm = match.group(1) or match.group(3)
    hexpart = match.group(2) or match.group(4)
    return algorithm, hexpart


def new_hasher(digest: str, *, where: str) -> Any:
    """A hashlib object for the algorithm of ``digest``."""
    algorithm, _ = split_digest(digest, where=where)
    return hashlib.new(algorithm)


def sha256_digest(data: bytes) -> Digest:
    """``sha256:<hex>`` of ``data``."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def check_digest(data: bytes, digest: str, *, where: str, what: str) -> None:
    """Raise RegistryError unless ``data`` hashes to ``digest``."""
    hasher = new_hasher(digest, where=where)
    hasher.update(data)
    actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != digest:
        raise RegistryError(f"{what} digest mismatch: expected {digest}, got {actual}", where=where)


def read_limited(chunks: Iterator[bytes], limit: int, *, where: str, what: str) -> bytes:
    """Join ``chunks`` but refuse to hold more than ``limit`` bytes."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > limit:
            raise RegistryError(f"{what} larger than the {limit}-byte limit refused", where=where)
    return bytes(buffer)


class VerifyingReader(io.RawIOBase):
    """A read-only raw stream over ``chunks`` that verifies ``descriptor`` while it is read.

    A verification failure is raised from the read that detects it and again from every later
    read, so a consumer that swallows the first error cannot mistake the rest for clean EOF.
    """

    def __init__(self, chunks: Iterator[bytes], descriptor: Descriptor, *, where: str) -> None:
        super().__init__()
        self._chunks = chunks
        self._descriptor = descriptor
        self._where = where
        self._hasher = new_hasher(descriptor.digest, where=where)
        self._pending = memoryview(b"")
        self._seen = 0
        self._done = False
        self._error: RegistryError | None = None

    def readable(self) -> bool:
        return True

    @property
    def verified(self) -> bool:
        """Whether EOF was reached with the right size and digest."""
        return self._done and self._error is None

    def readinto(self, buffer: Any) -> int:
        if self._error is not None:
            raise self._error
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                self._fail_unless_verified()
                break
            self._accept(chunk)
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def drain(self) -> None:
        """Read (and verify) whatever the consumer left unread."""
        buffer = bytearray(1 << 16)
        self._pending = memoryview(b"")
        while not self._done:
            self.readinto(buffer)
            self._pending = memoryview(b"")
        if self._error is not None:
            raise self._error

    def _accept(self, chunk: bytes) -> None:
        self._seen += len(chunk)
        if self._seen > self._descriptor.size:
            self._done = True
            self._raise(
                f"blob {self._descriptor.digest} is longer than its declared "
                f"{self._descriptor.size} bytes"
            )
        self._hasher.update(chunk)
        self._pending = memoryview(chunk)

    def _fail_unless_verified(self) -> None:
        descriptor = self._descriptor
        if self._seen != descriptor.size:
            self._raise(
                f"blob {descriptor.digest} truncated: {self._seen} of {descriptor.size} bytes"
            )
        actual = f"{descriptor.digest.split(':', 1)[0]}:{self._hasher.hexdigest()}"
        if actual != descriptor.digest:
            self._raise(f"blob digest mismatch: expected {descriptor.digest}, got {actual}")

    def _raise(self, message: str) -> None:
        self._error = RegistryError(message, where=self._where)
        raise self._error


def chunked(
    stream: io.BufferedIOBase | Any, size: int, chunk_size: int = 1 << 16
) -> Iterator[bytes]:
    """Yield at most ``size + 1`` bytes of a file object in chunks (one extra byte to detect
    content longer than declared without reading it all)."""
    remaining = size + 1
    while remaining > 0:
        data = stream.read(min(chunk_size, remaining))
        if not data:
            return
        remaining -= len(data)
        yield data
