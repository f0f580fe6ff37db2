"""Download a Flux source-controller artifact (tar.gz), verify its digest, extract it safely.

The artifact is what a GitRepository's ``.status.artifact`` points to: ``url`` (served without
auth) and ``digest`` (``sha256:`` of the tarball bytes). The download is streamed to a private
file under a size limit and hashed on the way; nothing is opened before the digest matches.

Extraction trusts nothing in the tarball, and any bad entry rejects the whole artifact with an
error naming it: absolute names and ``..`` components (checked on the raw names: tarfile's
``data`` filter would silently strip a leading ``/``), devices and fifos, symlinks whose target
leaves the tree, hardlinks to anything but a regular file already extracted. Decompressed bytes,
declared sizes and entry count are bounded. Files and directories are written first, hardlinks
are materialised as copies, symlinks are created last, each under a directory proven free of
links, and then every link is resolved once more against the root.

Called by :func:`kubegate.source.open_source`, which then copies the tree through the ignore
rules into the checkout root.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import logging
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from kubegate.errors import SourceError, UsageError
from kubegate.source.limits import SourceLimits
from kubegate.source.tree import check_link_target, verify_links
from kubegate.transfer import TransferLimits
from kubegate.transfer.http import bounded_client

_logger = logging.getLogger(__name__)

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_SHA_NAME_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_CHUNK = 1 << 16


def check_digest(digest: str) -> str:
    """Return ``digest`` if it reads ``sha256:<64 lowercase hex>``; else :class:`UsageError`."""
    if not _DIGEST_RE.match(digest):
        raise UsageError(
            f"invalid digest {digest!r} (expected sha256:<64 lowercase hex>)",
            where="--artifact-digest",
        )
    return digest


def check_url(url: str) -> None:
    """Only http(s) URLs with a host are artifact URLs (:class:`UsageError` otherwise)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError("invalid URL", where="--artifact-url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("expected an http:// or https:// URL", where="--artifact-url")


def artifact_revision(url: str, digest: str) -> str:
    """The digest, prefixed by the commit Flux puts in the file name (``<sha>.tar.gz``) if any."""
    name = posixpath.basename(urlsplit(url).path)
    stem = name.removesuffix(".tar.gz").removesuffix(".tgz")
    if _SHA_NAME_RE.match(stem):
        algo = "sha1" if len(stem) == 40 else "sha256"
        return f"{algo}:{stem}@{digest}"
    return digest


def _client(limits: SourceLimits, url: str) -> httpx.Client:
    """Through the bounded transport (idle, minimum rate); the deadline is checked below."""
    transfer = TransferLimits(min_rate=limits.min_rate, rate_window=limits.rate_window)
    return bounded_client(url, transfer, timeout=limits.http_timeout)


def download(url: str, digest: str, out: Path, *, limits: SourceLimits, label: str) -> int:
    """Stream ``url`` into ``out`` (at most ``limits.max_artifact_bytes``), verify ``digest``.

    Returns the number of bytes downloaded.
    """
    hasher = hashlib.sha256()
    size = 0
    try:
        with (
            _client(limits, url) as client,
            client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as resp,
        ):
            if resp.status_code != httpx.codes.OK:
                raise SourceError(
                    f"download failed: HTTP {resp.status_code} {resp.reason_phrase}".rstrip(),
                    where=label,
                )
            encoding = resp.headers.get("content-encoding", "identity").lower()
            if encoding not in ("identity", ""):
                raise SourceError(f"unexpected Content-Encoding {encoding!r}", where=label)
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit():
                if int(declared) > limits.max_artifact_bytes:
                    raise SourceError(
                        f"artifact of {declared} bytes exceeds the limit of "
                        f"{limits.max_artifact_bytes} bytes",
                        where=label,
                    )
            with out.open("wb") as fh:
                deadline = time.monotonic() + limits.download_deadline
                for chunk in resp.iter_raw(_CHUNK):
                    if time.monotonic() > deadline:
                        raise SourceError(
                            f"download took longer than {limits.download_deadline:g}s",
                            where=label,
                        )
                    size += len(chunk)
                    if size > limits.max_artifact_bytes:
                        raise SourceError(
                            f"artifact exceeds the limit of {limits.max_artifact_bytes} bytes",
                            where=label,
                        )
                    hasher.update(chunk)
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise SourceError(f"download failed: {type(exc).__name__}: {exc}", where=label) from exc
    except OSError as exc:
        raise SourceError(f"cannot store download: {exc.strerror}", where=label) from exc
    actual = f"sha256:{hasher.hexdigest()}"
    if not hmac.compare_digest(actual, digest):
        raise SourceError(f"digest mismatch: expected {digest}, got {actual}", where=label)
    _logger.debug("%s: %d bytes, digest verified", label, size)
    return size


class _BoundedReader:
    """A ``read()``-only view of a decompressing stream that stops after ``limit`` bytes."""

    def __init__(self, raw: gzip.GzipFile, limit: int, label: str) -> None:
        self._raw = raw
        self._limit = limit
        self._label = label
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        # Never ask for more than one byte past the limit, so a gzip bomb is not inflated.
        room = self._limit - self.count + 1
        want = room if size is None or size < 0 else min(size, room)
        data = self._raw.read(want)
        self.count += len(data)
        if self.count > self._limit:
            raise SourceError(
                f"artifact expands to more than {self._limit} bytes", where=self._label
            )
        return data


def _entry_name(name: str, label: str) -> str:
    """Normalised POSIX name of a tar entry ("" for the root), or reject the artifact."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        raise SourceError(f"entry {name!r}: absolute path", where=label)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceError(f"entry {name!r}: path contains '..'", where=label)
    return "/".join(parts)


def _write_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, out: Path, label: str, rel: str
) -> None:
    src = tar.extractfile(member)
    if src is None:
        raise SourceError(f"entry {rel!r}: unreadable file entry", where=label)
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_NOFOLLOW: the destination must never be a link, whatever the archive claimed before.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh, src:
        remaining = member.size
        while remaining > 0:
            chunk = src.read(min(_CHUNK, remaining))
            if not chunk:
                raise SourceError(f"entry {rel!r}: truncated", where=label)
            fh.write(chunk)
            remaining -= len(chunk)


def extract(archive: Path, dest: Path, *, limits: SourceLimits, label: str) -> int:
    """Extract the verified tar.gz ``archive`` into the empty ``dest``; return entries read."""
    links: list[tuple[str, str]] = []
    hardlinks: list[tuple[str, str]] = []
    entries = 0
    declared = 0
    try:
        with archive.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            # Room for tar's own bytes (512-byte headers, padding, pax records) beyond the
            # files; this bound also caps what tarfile buffers for a single pax header.
            overhead = 2048 * limits.max_entries + (1 << 20)
            bounded = _BoundedReader(gz, limits.max_extracted_bytes + overhead, label)
            with tarfile.open(fileobj=bounded, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    entries += 1
                    if entries > limits.max_entries:
                        raise SourceError(f"more than {limits.max_entries} entries", where=label)
                    rel = _entry_name(member.name, label)
                    if member.isdir():
                        if rel:
                            (dest / rel).mkdir(parents=True, exist_ok=True, mode=0o700)
                        continue
                    if not rel:
                        raise SourceError(f"entry {member.name!r}: empty name", where=label)
                    if member.isreg():
                        declared += member.size
                        if declared > limits.max_extracted_bytes:
                            raise SourceError(
                                f"entry {rel!r}: files exceed {limits.max_extracted_bytes} "
                                "bytes in all",
                                where=label,
                            )
                        _write_file(tar, member, dest / rel, label, rel)
                    elif member.issym():
                        check_link_target(rel, member.linkname, label)
                        links.append((rel, member.linkname))
                    elif member.islnk():
                        try:
                            target = _entry_name(member.linkname, label)
                        except SourceError as exc:
                            raise SourceError(
                                f"entry {rel!r}: hardlink target {member.linkname!r} leaves "
                                "the tree",
                                where=label,
                            ) from exc
                        hardlinks.append((rel, target))
                    else:
                        raise SourceError(
                            f"entry {rel!r}: device, fifo or other special file not allowed",
                            where=label,
                        )
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise SourceError(f"not a valid tar.gz: {exc}", where=label) from exc
    except OSError as exc:
        raise SourceError(f"cannot extract: {exc.strerror or exc}", where=label) from exc
    try:
        _make_links(dest, hardlinks, links, label)
    except OSError as exc:
        raise SourceError(f"cannot extract: {exc.strerror or exc}", where=label) from exc
    _logger.debug("%s: %d entries extracted", label, entries)
    return entries


def _make_links(
    dest: Path, hardlinks: list[tuple[str, str]], links: list[tuple[str, str]], label: str
) -> None:
    # Hardlinks first, while the tree holds no symlink at all; copies, so nothing is shared.
    for rel, target in hardlinks:
        src = dest / target
        if not target or not src.exists() or not stat.S_ISREG(src.lstat().st_mode):
            raise SourceError(
                f"entry {rel!r}: hardlink to {target!r}, not a regular file of the artifact",
                where=label,
            )
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if out.is_symlink():
            out.unlink()
        shutil.copyfile(src, out)
    real_root = dest.resolve()
    for rel, target in links:
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A link created earlier in this loop may sit on the path; never create through it.
        if Path(os.path.realpath(out.parent)) != real_root / posixpath.dirname(rel):
            raise SourceError(f"entry {rel!r}: parent directory is a symlink", where=label)
        if out.is_symlink() or out.exists():
            raise SourceError(f"entry {rel!r}: symlink over an existing entry", where=label)
        os.symlink(target, out)
    verify_links(dest, [rel for rel, _ in links], label)
