"""The one httpx transport every kubegate HTTP client is built on (:func:`bounded_transport`).

Every socket operation of its connections (connect, TLS, write, read: response headers and bodies
alike) goes through :class:`_BoundedStream`, which enforces

- the **idle timeout**: no byte for ``timeout`` seconds (httpx's per-operation timeout, the
  clients' ``timeout`` option);
- the **minimum rate**: once a response has started, the bytes it delivers while kubegate waits
  for them, averaged over the last ``rate_window`` seconds of waiting, must reach ``min_rate``
  bytes/s (a registry trickling one byte a second is stopped after one window, whatever its
  headers or bodies);
- the **deadline** of the command (monotonic): no operation starts after it and none waits past it.

A limit that trips raises an httpcore timeout (so httpx maps it to its own) that is also a
:class:`~kubegate.transfer.LimitExceeded`; :func:`~kubegate.transfer.limit_of` finds it behind
httpx's exception, and the clients neither retry it nor hide its reason.

Used by :mod:`kubegate.registry.client` and :mod:`kubegate.vulndb.fetch`; the one-URL downloads
(a Flux artifact in :mod:`kubegate.source.artifact`, a remote base in
:mod:`kubegate.render.remote`) take the whole client from :func:`bounded_client`.
"""

from __future__ import annotations

import collections
import ssl
import time
import typing
import urllib.request

import httpcore
import httpx

from kubegate.transfer import DEADLINE_REASON, LimitExceeded, TransferLimits


class _ReadLimit(LimitExceeded, httpcore.ReadTimeout):
    pass


class _ConnectLimit(LimitExceeded, httpcore.ConnectTimeout):
    pass


class _WriteLimit(LimitExceeded, httpcore.WriteTimeout):
    pass


class _Meter:
    """Bytes received against seconds spent waiting for them, over the last window."""

    __slots__ = ("_bytes", "_samples", "_started", "_waited")

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._waited = 0.0
        self._bytes = 0
        self._started = False

    def reset(self) -> None:
        """A new request was sent: its response is measured from its first byte."""
        self._samples.clear()
        self._waited, self._bytes, self._started = 0.0, 0, False

    def record(self, waited: float, count: int, window: float) -> None:
        if not self._started:
            # The wait for the first byte (server latency) is the idle timeout's business.
            self._started = count > 0
            return
        self._samples.append((waited, count))
        self._waited += waited
        self._bytes += count
        while self._samples and self._waited - self._samples[0][0] >= window:
            old_wait, old_count = self._samples.popleft()
            self._waited -= old_wait
            self._bytes -= old_count

    def too_slow(self, min_rate: int, window: float) -> bool:
        return min_rate > 0 and self._waited >= window and self._bytes < min_rate * self._waited


class _BoundedStream(httpcore.NetworkStream):
    """One connection's socket operations under the limits (see the module docstring)."""

    def __init__(self, inner: httpcore.NetworkStream, limits: TransferLimits) -> None:
        self._inner = inner
        self._limits = limits
        self._meter = _Meter()

    def _timeout(self, timeout: float | None, error: type[LimitExceeded]) -> float | None:
        remaining = self._limits.remaining()
        if remaining is None:
            return timeout
        if remaining <= 0:
            raise error(DEADLINE_REASON, deadline=True)
        return remaining if timeout is None else min(timeout, remaining)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        limits = self._limits
        bounded = self._timeout(timeout, _ReadLimit)
        started = time.monotonic()
        try:
            data = self._inner.read(max_bytes, bounded)
        except httpcore.ReadTimeout as exc:
            if limits.deadline is not None and time.monotonic() >= limits.deadline:
                raise _ReadLimit(DEADLINE_REASON, deadline=True) from exc
            raise _ReadLimit(
                f"timed out after {timeout or 0:g}s without data (idle timeout)", retryable=True
            ) from exc
        self._meter.record(time.monotonic() - started, len(data), limits.rate_window)
        if self._meter.too_slow(limits.min_rate, limits.rate_window):
            raise _ReadLimit(
                f"transfer slower than {limits.min_rate} bytes/s over {limits.rate_window:g}s "
                "(minimum rate)"
            )
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._meter.reset()
        self._inner.write(buffer, self._timeout(timeout, _WriteLimit))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, self._timeout(timeout, _ConnectLimit)
        )
        return _BoundedStream(inner, self._limits)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, every stream it opens wrapped in :class:`_BoundedStream`."""

    def __init__(self, limits: TransferLimits) -> None:
        self._inner = httpcore.SyncBackend()
        self._limits = limits

    def _timeout(self, timeout: float | None) -> float | None:
        remaining = self._limits.remaining()
        if remaining is None:
            return timeout
        if remaining <= 0:
            raise _ConnectLimit(DEADLINE_REASON, deadline=True)
        return remaining if timeout is None else min(timeout, remaining)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._timeout(timeout), local_address, socket_options
        )
        return _BoundedStream(stream, self._limits)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover (kubegate speaks TCP only)
        stream = self._inner.connect_unix_socket(path, self._timeout(timeout), socket_options)
        return _BoundedStream(stream, self._limits)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _BoundedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on :class:`_BoundedBackend`.

    httpx takes no network backend argument, so the pool it built is replaced by the same
    pool (same settings as httpx's defaults) on the bounded backend; requests, responses and
    exception mapping stay httpx's own. The tests with a trickling server prove the seam holds
    (a newer httpx that stopped using ``_pool`` would fail them).
    """

    def __init__(
        self,
        verify: ssl.SSLContext | bool,
        limits: TransferLimits,
        *,
        trust_env: bool,
        proxy: str | None,
    ) -> None:
        context = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        )
        super().__init__(verify=context, trust_env=False)
        pool_limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        backend = _BoundedBackend(limits)
        pool: httpcore.ConnectionPool
        if proxy is None:
            pool = httpcore.ConnectionPool(
                ssl_context=context,
                max_connections=pool_limits.max_connections,
                max_keepalive_connections=pool_limits.max_keepalive_connections,
                keepalive_expiry=pool_limits.keepalive_expiry,
                network_backend=backend,
            )
        else:
            url = httpx.URL(proxy)
            pool = httpcore.HTTPProxy(
                proxy_url=httpcore.URL(
                    scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
                ),
                proxy_auth=(url.username, url.password) if url.username else None,
                ssl_context=context,
                max_connections=pool_limits.max_connections,
                max_keepalive_connections=pool_limits.max_keepalive_connections,
                keepalive_expiry=pool_limits.keepalive_expiry,
                network_backend=backend,
            )
        self._pool = pool


def bounded_transport(
    limits: TransferLimits,
    *,
    verify: ssl.SSLContext | bool = True,
    trust_env: bool = False,
    proxy: str | None = None,
) -> httpx.HTTPTransport:
    """The transport to give ``httpx.Client(transport=...)``: idle, rate and deadline bounds.

    ``trust_env`` lets ``SSL_CERT_FILE``/``SSL_CERT_DIR`` add CAs (for ``verify=True``);
    ``proxy`` (an ``http://`` URL) sends every request through that proxy, under the same
    bounds. The client must then be built with ``trust_env=False`` so that httpx mounts no
    unbounded transport of its own for proxies from the environment.
    """
    return _BoundedTransport(verify, limits, trust_env=trust_env, proxy=proxy)


def environment_proxy(url: httpx.URL) -> str | None:
    """The ``http(s)_proxy``/``all_proxy`` for ``url`` unless ``no_proxy`` exempts its host."""
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    return proxy if proxy and proxy.startswith(("http://", "https://")) else None


def bounded_client(
    url: str,
    limits: TransferLimits,
    *,
    timeout: float,
    max_redirects: int = 20,  # httpx's default
) -> httpx.Client:
    """A client for downloading ``url``: the bounded transport, redirects followed.

    The environment's proxy for ``url`` (:func:`environment_proxy`) and its CA settings apply,
    as they did for the plain clients these downloads used before the bounded transport; the
    proxy is chosen once, for ``url``'s host. ``timeout`` is the idle timeout.
    """
    return httpx.Client(
        transport=bounded_transport(
            limits, trust_env=True, proxy=environment_proxy(httpx.URL(url))
        ),
        trust_env=False,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=max_redirects,
    )
