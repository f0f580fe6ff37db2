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


def test_watchdog_ends_a_command_that_overruns_its_deadline() -> None:
    # Work that never looks at the deadline (here: a sleep) is ended by the CLI's watchdog,
    # WATCHDOG_GRACE after --timeout (shortened here so the test takes a second).
    import subprocess
    import sys

    from tests.conftest import cli_env

    code = (
        "import argparse, time\n"
        "from kubegate.cli import common\n"
        "common.WATCHDOG_GRACE = 0.5\n"
        "args = argparse.Namespace(timeout=0.5, idle_timeout=30.0, min_rate=0)\n"
        "common.transfer_limits(args, time.monotonic())\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("kubegate: error: --timeout: not done 0.5s after the start")
    assert time.monotonic() - started < 30
