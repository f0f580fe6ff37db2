"""A loopback TCP proxy that makes a local server look a WAN away: latency, bandwidth, connections.

Used by ``bench/gate.py --wan`` (in-process, :class:`WanProxy` as a context manager) and runnable
by hand in front of any loopback server::

    python bench/wan.py --upstream 127.0.0.1:5000 [--port 0] [--latency-ms 20] [--mbit 100]
                        [--idle-exit 300] [--max-seconds 3600]

Every chunk read from one side is delivered to the other ``latency`` later (one way, so a
request/response round trip costs twice that), in order, pipelined like a real link: latency
delays data but does not cap throughput. Each direction is one link shared by every connection,
capped by a token bucket (``rate`` bytes per second, ``burst`` bytes of credit). The proxy counts
the connections it accepts and the most open at once; :meth:`WanProxy.counters` snapshots them so
a caller can attribute connections to one scan.

Loopback only: it listens on 127.0.0.1 and refuses an upstream that is not a loopback address.
It stops by itself: with the ``with`` block, or (standalone) after ``--idle-exit`` seconds
without a connection or ``--max-seconds`` in all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

DEFAULT_LATENCY = 0.020  # one way: 40 ms round trip
DEFAULT_RATE = 100_000_000 / 8  # 100 Mbit/s in bytes per second
CHUNK = 64 * 1024
#: Chunks in flight per direction and connection before the reader waits (back-pressure):
#: 4 MiB, more than a 100 Mbit/s x 40 ms link holds (500 KB).
QUEUE_CHUNKS = 64
#: A TLS record of type handshake, major version 3: the start of every ClientHello.
TLS_HANDSHAKE = b"\x16\x03"


class TokenBucket:
    """``rate`` bytes per second with ``burst`` bytes of credit, shared by every sender of a link.

    Kept as a virtual clock (the time the link is busy until), the usual equivalent of a token
    bucket: a sender of ``n`` bytes waits until the link has room for them.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst
        self._busy_until = 0.0

    def delay(self, size: int, now: float) -> float:
        """Reserve ``size`` bytes at ``now``; how long the sender must wait before sending."""
        start = max(now, self._busy_until)
        self._busy_until = start + size / self.rate
        return max(0.0, self._busy_until - self.burst / self.rate - now)


@dataclass(frozen=True, slots=True)
class Counters:
    """Connections accepted since start (``tls``: those that opened with a TLS ClientHello), the
    most open at once, bytes each way."""

    accepted: int
    tls: int
    peak_open: int
    upstream_bytes: int
    downstream_bytes: int


class WanProxy:
    """The proxy, served by an asyncio loop in a daemon thread; ``with`` starts and stops it."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        latency: float = DEFAULT_LATENCY,
        rate: float = DEFAULT_RATE,
        burst: int = CHUNK,
        port: int = 0,
    ) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(upstream[0])).is_loopback:
            raise ValueError(f"upstream {upstream[0]} is not a loopback address")
        self.upstream = upstream
        self.latency = latency
        self._buckets = {"up": TokenBucket(rate, burst), "down": TokenBucket(rate, burst)}
        self._port = port
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepted = 0
        self._tls = 0
        self._open = 0
        self._peak = 0
        self._bytes = {"up": 0, "down": 0}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: OSError | None = None
        self.last_activity = time.monotonic()

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> WanProxy:
        self._thread = threading.Thread(target=self._run, name="wan-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise self._startup_error
        if self._server is None:
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(self._shutdown)
            thread.join(10)

    def __enter__(self) -> WanProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def counters(self) -> Counters:
        with self._lock:
            return Counters(
                self._accepted, self._tls, self._peak, self._bytes["up"], self._bytes["down"]
            )

    def idle_seconds(self) -> float | None:
        """Seconds since the last connection closed; None while one is open."""
        with self._lock:
            return None if self._open else time.monotonic() - self.last_activity

    def reset_peak(self) -> None:
        """Start a new peak measurement (the connections open now count)."""
        with self._lock:
            self._peak = self._open

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self._port)
            )
        except OSError as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            # The transports' close callbacks run on the next iterations: let them.
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._loop is not None:
            self._loop.stop()

    # -- relaying -------------------------------------------------------------------------------

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # asyncio drops its own reference to this task when the client's side is lost: keep one,
        # or the task may be garbage-collected while it still relays the other direction.
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with self._lock:
            self._accepted += 1
            self._open += 1
            self._peak = max(self._peak, self._open)
        self.last_activity = time.monotonic()
        try:
            try:
                up_r, up_w = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            try:
                # The connection set-up crossed the link once (SYN) before the upstream saw it.
                await asyncio.sleep(self.latency)
                await asyncio.gather(
                    self._pipe(client_r, up_w, "up"),
                    self._pipe(up_r, client_w, "down"),
                    return_exceptions=True,
                )
            finally:
                up_w.close()
        except asyncio.CancelledError:
            pass  # the proxy is stopping: end quietly (asyncio logs a cancelled handler)
        finally:
            with self._lock:
                self._open -= 1
            client_w.close()
            self.last_activity = time.monotonic()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``latency`` late and within the bandwidth."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)
        bucket = self._buckets[direction]

        async def read() -> None:
            first = True
            try:
                while chunk := await reader.read(CHUNK):
                    if first and direction == "up" and chunk.startswith(TLS_HANDSHAKE):
                        # A client probing HTTPS first (a plain-HTTP upstream will refuse it).
                        with self._lock:
                            self._tls += 1
                    first = False
                    await queue.put((loop.time() + self.latency, chunk))
            except OSError:
                pass  # a reset ends this direction like an EOF
            # The end marker after a reset too: without it the writer waited for ever and the
            # connection stayed open. (Cancelled, there is no writer left to tell.)
            await queue.put((loop.time() + self.latency, b""))

        async def write() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    # The sender closed its side: half-close ours after the data in flight.
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    if writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                # Serialisation on the shared link, then propagation.
                wait = bucket.delay(len(chunk), loop.time())
                await asyncio.sleep(max(wait, due - loop.time()))
                writer.write(chunk)
                await writer.drain()
                with self._lock:
                    self._bytes[direction] += len(chunk)

        reading = asyncio.ensure_future(read())
        try:
            await write()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await reading


def _upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--upstream", type=_upstream, required=True, help="HOST:PORT (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY * 1000)
    parser.add_argument("--mbit", type=float, default=DEFAULT_RATE * 8 / 1e6)
    parser.add_argument("--idle-exit", type=float, default=300, help="seconds without traffic")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop after this long")
    args = parser.parse_args(argv)
    try:
        proxy = WanProxy(
            args.upstream, latency=args.latency_ms / 1000, rate=args.mbit * 1e6 / 8, port=args.port
        )
    except ValueError as exc:
        parser.error(str(exc))
    started = time.monotonic()
    with proxy:
        print(f"wan: 127.0.0.1:{proxy.port} -> {args.upstream[0]}:{args.upstream[1]}", flush=True)
        while time.monotonic() - started < args.max_seconds:
            time.sleep(0.5)
            idle = proxy.idle_seconds()
            if idle is not None and idle > args.idle_exit:
                break
        print(f"wan: stopping; {proxy.counters()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
