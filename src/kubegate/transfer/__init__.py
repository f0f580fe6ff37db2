"""Limits of kubegate's network transfers, and the errors that say one tripped.

A hostile or broken server must not hold kubegate for ever: every HTTP client is built on
:func:`kubegate.transfer.http.bounded_transport`, which enforces an idle timeout, a minimum rate
and the command's deadline (:class:`TransferLimits`) on every socket operation, and retries are
bounded per command by a :class:`RetryBudget`. This module is the part without httpx, so that
the CLI can name the defaults without paying for httpx at start-up. It sits in the lowest layer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

#: Defaults shared by every command (docs/security.md "Time and memory are bounded").
DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_MIN_RATE = 10 * 1024
DEFAULT_RATE_WINDOW = 30.0


@dataclass(frozen=True, slots=True)
class TransferLimits:
    """Rate floor and deadline of every transfer of one command (the idle timeout is httpx's)."""

    #: Bytes per second a response must deliver, averaged over ``rate_window`` seconds spent
    #: waiting for it (0 disables the floor).
    min_rate: int = DEFAULT_MIN_RATE
    rate_window: float = DEFAULT_RATE_WINDOW
    #: ``time.monotonic()`` value after which no transfer may go on (None: no deadline).
    deadline: float | None = None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline; never negative)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


class LimitExceeded(Exception):
    """A transfer limit tripped; ``reason`` is the user-facing text.

    Only an idle timeout is worth another attempt (a dropped packet, a stalled proxy); a server
    below the rate floor is slow by design, and after the deadline nothing may start.
    """

    def __init__(self, reason: str, *, deadline: bool = False, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: True when the command's deadline passed (nothing later can succeed either).
        self.deadline = deadline
        self.retryable = retryable


def limit_of(exc: BaseException) -> LimitExceeded | None:
    """The :class:`LimitExceeded` behind an httpx/httpcore exception, if one tripped."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, LimitExceeded):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


#: Why a transfer stopped when the command's deadline passed.
DEADLINE_REASON = "the command's deadline (--timeout) passed"


class RetryBudget:
    """Retries left to one command, shared by all its requests (thread-safe).

    Each client still caps retries per request; the budget caps their sum, in count and in
    seconds spent waiting between attempts, so that a server answering 429/5xx to every request
    costs at most ``max_seconds`` of waiting, not retries x requests x backoff. A wait that would
    end after the deadline is refused too.
    """

    def __init__(self, max_retries: int = 32, max_seconds: float = 120.0) -> None:
        self.max_retries = max_retries
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._retries = 0
        self._seconds = 0.0

    def take(self, wait: float, limits: TransferLimits | None = None) -> str | None:
        """Reserve one retry after ``wait`` seconds; None if allowed, else why not."""
        remaining = limits.remaining() if limits is not None else None
        with self._lock:
            if self._retries >= self.max_retries:
                return f"retry budget spent ({self.max_retries} retries)"
            if self._seconds + wait > self.max_seconds:
                return f"retry budget spent ({self.max_seconds:g}s of waiting)"
            if remaining is not None and wait >= remaining:
                return DEADLINE_REASON
            self._retries += 1
            self._seconds += wait
        return None

    def __repr__(self) -> str:
        return f"RetryBudget(max_retries={self.max_retries}, max_seconds={self.max_seconds:g})"
