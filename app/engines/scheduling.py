"""Earliest-deadline-first worker threads for CPU engines shared by many calls.

With a plain FIFO pool, the first clause of a new reply (a caller waiting in silence)
queues behind later clauses of other calls whose callers still have seconds of audio
buffered. Each step here carries a deadline: the moment its stream's listener runs out of
audio (stream start + audio the listener already had + audio produced so far). Workers
always run the most urgent step, so a fresh reply's first piece jumps the queue and a
stream with a deep buffer yields to it. The standard library has no priority executor.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class DeadlineExecutor(Executor):
    def __init__(self, workers: int, name: str = "edf") -> None:
        self._heap: list[tuple[float, int, Callable[[], Any], Future[Any]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit_at(self, deadline: float, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on a worker; among queued steps the earliest ``deadline`` goes first."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("executor is shut down")
            heapq.heappush(self._heap, (deadline, next(self._seq), fn, future))
            self._cond.notify()
        return future

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """``Executor.submit`` shape (for ``run_in_executor``): no deadline, runs last."""
        return self.submit_at(float("inf"), lambda: fn(*args, **kwargs))

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._heap)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                _, _, fn, future = heapq.heappop(self._heap)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting coroutine
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._closed = True
            if cancel_futures:
                for _, _, _, future in self._heap:
                    future.cancel()
                self._heap.clear()
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()
