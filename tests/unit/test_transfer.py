"""The retry budget and the deadline of :mod:`kubegate.transfer` (the transport's limits are
proven end to end against trickling servers in tests/integration/test_slow_servers.py)."""

from __future__ import annotations

import time

from kubegate.transfer import DEADLINE_REASON, RetryBudget, TransferLimits


def test_budget_counts_retries_across_requests() -> None:
    budget = RetryBudget(max_retries=2, max_seconds=100)
    assert budget.take(1.0) is None
    assert budget.take(1.0) is None
    assert budget.take(0.0) == "retry budget spent (2 retries)"


def test_budget_counts_seconds_of_waiting() -> None:
    budget = RetryBudget(max_retries=100, max_seconds=5)
    assert budget.take(4.0) is None
    assert budget.take(2.0) == "retry budget spent (5s of waiting)"
    # A shorter wait still fits; the refused one was not charged.
    assert budget.take(1.0) is None


def test_no_wait_ends_after_the_deadline() -> None:
    limits = TransferLimits(deadline=time.monotonic() + 2)
    budget = RetryBudget()
    assert budget.take(0.5, limits) is None
    assert budget.take(5.0, limits) == DEADLINE_REASON
    assert TransferLimits().remaining() is None
    assert TransferLimits(deadline=time.monotonic() - 1).remaining() == 0.0
