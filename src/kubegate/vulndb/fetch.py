"""Reading the OSV bucket (or a mirror of it): HTTP through httpx, or a local directory.

Used only by :mod:`kubegate.vulndb.update`. A :class:`Bucket` answers four questions about a path
relative to the bucket root (``Debian/all.zip``): its size, its bytes (small files), its lines
(``modified_id.csv``, streamed so the reader can stop early) and a download into a file. Every
read has a byte cap. The HTTP bucket speaks through :func:`kubegate.transfer.http.bounded_transport`
(idle timeout, minimum rate, the command's deadline: a first download of gigabytes is bounded by
the first two, not by a short overall deadline) and retries transport errors, 429 and 5xx with
exponential backoff (``Retry-After`` honoured, bounded) within one :class:`RetryBudget` for the
whole update; every failure becomes a :class:`VulnDBError` (exit 2) here, at the boundary. A
passed deadline or a spent budget is :class:`Unreachable` (the remaining ecosystems fail at
once). A missing file is ``None``/:class:`NotInBucket`, not an error, so the caller decides what
absence means.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx

from kubegate import __version__
from kubegate.errors import UsageError, VulnDBError
from kubegate.registry.transport import retry_after
from kubegate.transfer import DEFAULT_IDLE_TIMEOUT, RetryBudget, TransferLimits, limit_of
from kubegate.transfer.http import bounded_transport, environment_proxy

_logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CHUNK = 1 << 16

#: Called with the number of bytes just received.
OnBytes = Callable[[int], None]


def _update_budget() -> RetryBudget:
    # Issue 15's red-team pass: a mirror answering 429 to everything kept an update busy about
    # 72 minutes (retries x requests x backoff); now at most five minutes of waiting in all.
    return RetryBudget(max_retries=64, max_seconds=300.0)


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Network behaviour of the HTTP bucket (tests shorten the waits)."""

    #: Seconds to connect and between two reads of a response (the idle timeout).
    timeout: float = DEFAULT_IDLE_TIMEOUT
    retries: int = 4
    #: First backoff in seconds, doubled at each retry.
    backoff: float = 1.0
    #: Upper bound of any single wait, ``Retry-After`` included.
    max_retry_after: float = 60.0
    #: Minimum rate and deadline of every transfer (``db update --timeout``).
    limits: TransferLimits = field(default_factory=TransferLimits)
    #: Retries of the whole update, shared by all its requests.
    retry_budget: RetryBudget = field(default_factory=_update_budget, compare=False)


class NotInBucket(VulnDBError):
    """The bucket answered 404 for a path (a feed or record it does not have)."""


class Unreachable(VulnDBError):
    """The bucket could not be reached at all (after the retries): later requests would fail too."""


def object_path(ecosystem: str, name: str) -> str:
    """``Red Hat`` + ``all.zip`` -> ``Red%20Hat/all.zip``: the directory is the base ecosystem."""
    directory = ecosystem.split(":", 1)[0]
    return f"{quote(directory, safe='')}/{quote(name, safe='')}"


class Bucket(Protocol):
    """Read access to a tree shaped like the OSV bucket."""

    where: str

    def size(self, path: str) -> int | None:
        """The object's size in bytes when known (``None`` when the server does not say)."""

    def read(self, path: str, max_bytes: int) -> bytes:
        """The whole object, at most ``max_bytes`` (raises :class:`NotInBucket` when absent)."""

    def lines(self, path: str, max_bytes: int) -> contextlib.AbstractContextManager[Iterator[str]]:
        """The object's text lines, streamed; leaving the context stops reading."""

    def download(self, path: str, dest: BinaryIO, max_bytes: int, on_bytes: OnBytes) -> int:
        """Copy the object into ``dest``; returns the byte count."""

    def close(self) -> None:
        """Release connections."""


def check_source(source: str, option: str = "--source", *, kind: str = "directory") -> Path | None:
    """None for a usable http(s) URL, else the existing local ``kind`` (``directory`` or
    ``file``) it names (a path or ``file://``); anything else is a UsageError (exit 3) naming
    ``option``. The one check of every source flag: ``--source``, ``--nvd-source``,
    ``--debian-tracker-source``."""
    parts = urlsplit(source)
    if parts.scheme in {"http", "https"}:
        if not parts.hostname or parts.query or parts.fragment:
            what = "bucket URL" if kind == "directory" else "URL"
            raise UsageError(f"not a usable {what}", where=f"{option} {source}")
        return None
    if parts.scheme == "file":
        local = Path(parts.path)
    elif not parts.scheme or (len(parts.scheme) == 1 and source[1:3] in {":\\", ":/"}):
        local = Path(source)
    else:
        raise UsageError(f"must be an http(s) URL or a local {kind}", where=f"{option} {source}")
    if not (local.is_dir() if kind == "directory" else local.is_file()):
        raise UsageError(f"no such {kind}", where=f"{option} {source}")
    return local


def open_bucket(
    source: str, options: FetchOptions | None = None, *, option: str = "--source"
) -> Bucket:
    """An HTTP(S) URL or a local directory (path or ``file://``); anything else is exit 3.

    ``option`` names the flag in the error (``--nvd-source`` for the NVD feeds).
    """
    directory = check_source(source, option)
    if directory is not None:
        return DirBucket(directory)
    try:
        return HTTPBucket(source, options or FetchOptions())
    except ValueError as exc:
        raise UsageError(f"not a usable bucket URL: {exc}", where=f"{option} {source}") from exc


def _describe(exc: httpx.HTTPError, timeout: float) -> str:
    limit = limit_of(exc)
    if limit is not None:
        return limit.reason
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    return str(exc) or type(exc).__name__


def _read_capped(chunks: Iterator[bytes], max_bytes: int, where: str) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > max_bytes:
            raise VulnDBError(f"larger than {max_bytes} bytes", where=where)
    return bytes(data)


def _split_lines(chunks: Iterator[bytes], max_bytes: int, where: str) -> Iterator[str]:
    pending = b""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise VulnDBError(f"larger than {max_bytes} bytes", where=where)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


class HTTPBucket:
    """The public OSV bucket or an HTTP mirror of it."""

    def __init__(self, base: str, options: FetchOptions) -> None:
        self.base = httpx.URL(base.rstrip("/") + "/")
        self.where = str(self.base.copy_with(username=None, password=None))
        self.options = options
        # The environment's proxy and CA settings apply to advisory downloads (not to
        # registries, docs/registry.md), through the bounded transport: trust_env=False keeps
        # httpx from mounting unbounded proxy transports of its own.
        self._http = httpx.Client(
            transport=bounded_transport(
                options.limits, trust_env=True, proxy=environment_proxy(self.base)
            ),
            trust_env=False,
            timeout=httpx.Timeout(options.timeout),
            follow_redirects=True,
            headers={"User-Agent": f"kubegate/{__version__}"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _url(self, path: str) -> httpx.URL:
        return self.base.join(path)

    @contextlib.contextmanager
    def _request(self, method: str, path: str) -> Iterator[httpx.Response]:
        """One request with retries; yields a 200 response (streamed) or raises."""
        url = self._url(path)
        where = f"{self.where}{path}"
        options = self.options
        attempts = max(0, options.retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            wait = min(options.backoff * (2**attempt), options.max_retry_after)
            try:
                response = self._http.send(self._http.build_request(method, url), stream=True)
            except httpx.HTTPError as exc:
                limit = limit_of(exc)
                # A refused connection or unknown host is retried once, not with the full
                # backoff: an air-gapped machine should fail (or fall back) in a second.
                if last or (isinstance(exc, httpx.ConnectError) and attempt >= 1):
                    raise Unreachable(
                        f"cannot download: {_describe(exc, options.timeout)}", where=where
                    ) from exc
                if limit is not None and not limit.retryable:
                    error = Unreachable if limit.deadline else VulnDBError
                    raise error(f"cannot download: {limit.reason}", where=where) from exc
                refused = options.retry_budget.take(wait, options.limits)
                if refused:
                    raise Unreachable(
                        f"cannot download: {_describe(exc, options.timeout)}; not retried: "
                        f"{refused}",
                        where=where,
                    ) from exc
                _logger.debug("%s: %s failed (%s), retrying", where, method, exc)
                time.sleep(wait)
                continue
            status = response.status_code
            if status in _RETRY_STATUS and not last:
                header = response.headers.get("Retry-After")
                wait = retry_after(header, wait, options.max_retry_after)
                response.close()
                refused = options.retry_budget.take(wait, options.limits)
                if refused:
                    raise Unreachable(
                        f"download failed: HTTP {status}; not retried: {refused}", where=where
                    )
                _logger.info("%s answered %s, retrying in %.1fs", where, status, wait)
                time.sleep(wait)
                continue
            try:
                if status == 404:
                    raise NotInBucket("not in the bucket (404)", where=where)
                if status != 200:
                    raise VulnDBError(f"download failed: HTTP {status}", where=where)
                yield response
            finally:
                response.close()
            return

    def _chunks(self, response: httpx.Response, where: str) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(_CHUNK)
        except httpx.HTTPError as exc:
            limit = limit_of(exc)
            raise (Unreachable if limit is not None and limit.deadline else VulnDBError)(
                f"download interrupted: {_describe(exc, self.options.timeout)}", where=where
            ) from exc

    def size(self, path: str) -> int | None:
        """``Content-Length`` of a HEAD request."""
        with self._request("HEAD", path) as response:
            length = response.headers.get("Content-Length", "")
            return int(length) if length.isdigit() else None

    def read(self, path: str, max_bytes: int) -> bytes:
        """GET with a cap."""
        where = f"{self.where}{path}"
        with self._request("GET", path) as response:
            return _read_capped(self._chunks(response, where), max_bytes, where)

    @contextlib.contextmanager
    def lines(self, path: str, max_bytes: int) -> Iterator[Iterator[str]]:
        """GET streamed line by line."""
        where = f"{self.where}{path}"
        with self._request("GET", path) as response:
            yield _split_lines(self._chunks(response, where), max_bytes, where)

    def download(self, path: str, dest: BinaryIO, max_bytes: int, on_bytes: OnBytes) -> int:
        """GET into ``dest``; the size is checked against the cap before and while reading."""
        where = f"{self.where}{path}"
        with self._request("GET", path) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise VulnDBError(
                    f"{length} bytes is more than the {max_bytes} allowed", where=where
                )
            total = 0
            for chunk in self._chunks(response, where):
                total += len(chunk)
                if total > max_bytes:
                    raise VulnDBError(f"larger than the {max_bytes} bytes allowed", where=where)
                dest.write(chunk)
                on_bytes(len(chunk))
            return total


class DirBucket:
    """A local copy of the bucket (air-gapped): ``<root>/<Ecosystem>/all.zip`` etc."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.where = f"{self.root}/"

    def close(self) -> None:
        """Nothing to release."""

    def _file(self, path: str) -> Path:
        candidate = (self.root / unquote(path)).resolve()
        if self.root not in candidate.parents or not candidate.is_file():
            raise NotInBucket("not in the mirror", where=f"{self.where}{unquote(path)}")
        return candidate

    def size(self, path: str) -> int | None:
        """The file's size."""
        return self._file(path).stat().st_size

    def _open(self, path: str) -> BinaryIO:
        file = self._file(path)
        try:
            return file.open("rb")
        except OSError as exc:
            raise VulnDBError(f"cannot read: {exc.strerror}", where=str(file)) from exc

    def _chunks(self, handle: BinaryIO) -> Iterator[bytes]:
        while chunk := handle.read(_CHUNK):
            yield chunk

    def read(self, path: str, max_bytes: int) -> bytes:
        """The file, capped."""
        with self._open(path) as handle:
            return _read_capped(self._chunks(handle), max_bytes, f"{self.where}{path}")

    @contextlib.contextmanager
    def lines(self, path: str, max_bytes: int) -> Iterator[Iterator[str]]:
        """The file's lines."""
        with self._open(path) as handle:
            yield _split_lines(self._chunks(handle), max_bytes, f"{self.where}{path}")

    def download(self, path: str, dest: BinaryIO, max_bytes: int, on_bytes: OnBytes) -> int:
        """Copy the file (capped)."""
        total = 0
        with self._open(path) as handle:
            for chunk in self._chunks(handle):
                total += len(chunk)
                if total > max_bytes:
                    raise VulnDBError(
                        f"larger than the {max_bytes} bytes allowed", where=f"{self.where}{path}"
                    )
                dest.write(chunk)
                on_bytes(len(chunk))
        return total
