"""``kubegate watch --notify URL``: one JSON POST per verdict, shaped like a Flux event.

The body is a Flux ``event.toolkit.fluxcd.io`` Event (fluxcd/pkg ``apis/event/v1beta1``):
``involvedObject`` (the watched GitRepository), ``severity`` (``info`` or ``error``),
``timestamp``, ``message``, ``reason`` (``RevisionApproved``, ``RevisionBlocked``,
``RevisionUnproven``, ``ApprovedRevisionVulnerable``), ``metadata`` and
``reportingController: kubegate``. Metadata keys carry the involved object's API group prefix
(``source.toolkit.fluxcd.io/revision``, ``.../digest``), as notification-controller drops keys
without it; so a notification-controller Receiver-less ``/`` endpoint or any webhook can take it.

Deliveries run on one background thread: each POST has a timeout and a few retries with
backoff, and a receiver that is down only produces warnings; it never delays or blocks the gate.
Used by :mod:`kubegate.publish.watch`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from kubegate.publish.artifact import rfc3339

_logger = logging.getLogger(__name__)

SOURCE_GROUP = "source.toolkit.fluxcd.io"
_STOP = object()


def flux_event(
    *,
    name: str,
    namespace: str,
    severity: str,
    reason: str,
    message: str,
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    """The Event document for one verdict."""
    return {
        "involvedObject": {
            "apiVersion": f"{SOURCE_GROUP}/v1",
            "kind": "GitRepository",
            "name": name,
            "namespace": namespace,
        },
        "severity": severity,
        "timestamp": rfc3339(dt.datetime.now(dt.UTC)),
        "message": message,
        "reason": reason,
        "metadata": {f"{SOURCE_GROUP}/{k}": v for k, v in metadata.items()},
        "reportingController": "kubegate",
        "reportingInstance": socket.gethostname(),
    }


class Notifier:
    """Posts events to every URL from a background thread (start with :meth:`start`)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.urls = tuple(urls)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="kubegate-notify", daemon=True)
        self.failed = 0

    def start(self) -> None:
        """Start delivering."""
        if self.urls:
            self._thread.start()

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for every URL; returns at once."""
        if self.urls:
            self._queue.put(dict(event))

    def close(self, wait: float = 5.0) -> None:
        """Deliver what is queued for at most ``wait`` seconds, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(wait)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, trust_env=False) as client:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                body = json.dumps(item).encode()
                for url in self.urls:
                    self._post(client, url, body)

    def _post(self, client: httpx.Client, url: str, body: bytes) -> None:
        for attempt in range(self._retries + 1):
            try:
                response = client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < self._retries:
                time.sleep(self._backoff * (2**attempt))
        self.failed += 1
        _logger.warning("notification to %s failed (%s); the gate goes on", _safe(url), problem)


def _safe(url: str) -> str:
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(username=None, password=None, query=None))
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
