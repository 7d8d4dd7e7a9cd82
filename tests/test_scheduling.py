"""The earliest-deadline-first executor that CPU engines share between calls."""

from __future__ import annotations

import threading
import time

import pytest

from app.engines.scheduling import DeadlineExecutor


def test_most_urgent_queued_step_runs_first() -> None:
    pool = DeadlineExecutor(1)
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = pool.submit_at(0.0, gate.wait)  # occupies the only worker
        futures = [
            pool.submit_at(deadline, lambda n=name: order.append(n))
            for deadline, name in [(30.0, "late"), (10.0, "urgent"), (20.0, "middle")]
        ]
        gate.set()
        for f in [blocker, *futures]:
            f.result(timeout=5)
    finally:
        pool.shutdown()
    assert order == ["urgent", "middle", "late"]


def test_exceptions_reach_the_caller_and_the_worker_survives() -> None:
    pool = DeadlineExecutor(1)
    try:
        failing = pool.submit_at(1.0, lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=5)
        assert pool.submit(lambda x: x * 2, 21).result(timeout=5) == 42
    finally:
        pool.shutdown()


def test_shutdown_cancels_queued_steps() -> None:
    pool = DeadlineExecutor(1)
    gate = threading.Event()
    started = threading.Event()
    running = pool.submit_at(0.0, lambda: (started.set(), gate.wait(), time.sleep(0.01)))
    assert started.wait(5)
    queued = pool.submit_at(1.0, lambda: None)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert queued.cancelled()
    running.result(timeout=5)
    with pytest.raises(RuntimeError):
        pool.submit_at(0.0, lambda: None)
