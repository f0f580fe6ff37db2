"""bench/wan.py's proxy, through a real loopback HTTP server (tests/fixtures/httpserve.py).

The bench's figures are only as good as the proxy: it must delay every round trip, cap the
bandwidth, count connections (reused keep-alive connections once) and pass the bytes unchanged.
Only lower bounds on time are asserted (a loaded machine makes things slower, never faster).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time

import httpx
import pytest
from bench.wan import TokenBucket, WanProxy

from tests.fixtures.httpserve import HTTPServe
from tests.fixtures.oci import build_image, layer_blob, push
from tests.fixtures.registry import RegistryServer


def test_latency_applied_bytes_intact(http_serve: HTTPServe) -> None:
    body = os.urandom(300_000)
    http_serve.add("/blob", body)
    with WanProxy(("127.0.0.1", http_serve.port), latency=0.1) as proxy:
        started = time.perf_counter()
        response = httpx.get(f"http://{proxy.address}/blob")
        # Connection set-up, request, response: at least one round trip of 2 x 100 ms.
        assert time.perf_counter() - started >= 0.2
        # The proxy counts a chunk once it is written: the client may hold the last bytes a
        # moment before the count includes them (a generous bound, not a timing).
        deadline = time.monotonic() + 30
        while proxy.counters().downstream_bytes <= len(body) and time.monotonic() < deadline:
            time.sleep(0.02)
        counters = proxy.counters()
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(body).digest()
    assert counters.accepted == 1
    assert counters.downstream_bytes > len(body)
    assert http_serve.requests["/blob"] == 1


def test_keep_alive_connection_counted_once(registry_plain: RegistryServer) -> None:
    """Through the real registry (keep-alive; the bench's upstream): one connection, reused."""
    built = build_image([layer_blob({"data.bin": os.urandom(200_000)})])
    with registry_plain.http() as client:
        push(client, "wan/test", "1", built)
    layer = built.layers[0]
    host, _, port = registry_plain.host.rpartition(":")
    with WanProxy((host, int(port)), latency=0.02) as proxy:
        with httpx.Client(base_url=f"http://{proxy.address}") as client:
            blobs = [client.get(f"/v2/wan/test/blobs/{layer.digest}") for _ in range(3)]
        counters = proxy.counters()
        # The client closed: the proxy closes its side too (a generous bound, not a timing).
        deadline = time.monotonic() + 30
        while proxy.idle_seconds() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.idle_seconds() is not None, "the proxied connection stayed open"
    assert all(blob.status_code == 200 and blob.content == layer.data for blob in blobs)
    assert counters.accepted == 1
    assert counters.tls == 0
    assert counters.peak_open == 1


def test_bandwidth_capped(http_serve: HTTPServe) -> None:
    body = os.urandom(1_000_000)
    http_serve.add("/big", body)
    # 8 Mbit/s: 1 MB needs 1 s on the link (minus one 64 KiB burst of credit).
    with WanProxy(("127.0.0.1", http_serve.port), latency=0.0, rate=1_000_000) as proxy:
        started = time.perf_counter()
        response = httpx.get(f"http://{proxy.address}/big")
        elapsed = time.perf_counter() - started
    assert response.content == body
    assert elapsed >= 0.8


def test_parallel_connections_counted_and_share_the_link(http_serve: HTTPServe) -> None:
    http_serve.add("/a", b"x" * 1000)
    with WanProxy(("127.0.0.1", http_serve.port), latency=0.05) as proxy:
        for _ in range(3):
            assert httpx.get(f"http://{proxy.address}/a").content == b"x" * 1000
        # A client probing HTTPS first (kubegate on a loopback registry): counted as TLS.
        with socket.create_connection(("127.0.0.1", proxy.port)) as probe:
            probe.sendall(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
            probe.shutdown(socket.SHUT_WR)
            probe.settimeout(30)
            probe.recv(100)  # the server's 400 or its close
        counters = proxy.counters()
    assert counters.accepted == 4
    assert counters.tls == 1


def test_token_bucket_spaces_sends_after_the_burst() -> None:
    bucket = TokenBucket(rate=1000, burst=100)
    assert bucket.delay(100, now=0.0) == 0.0  # the burst goes at once
    assert bucket.delay(100, now=0.0) == pytest.approx(0.1)
    assert bucket.delay(500, now=10.0) == pytest.approx(0.4)  # idle link: credit back


def test_non_loopback_upstream_refused() -> None:
    with pytest.raises(ValueError, match="not a loopback"):
        WanProxy(("192.0.2.1", 80))
