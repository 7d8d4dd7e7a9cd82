"""The in-memory caches of the voices layer: an LRU and single-flight (disk: ``disk.py``).

- ``LRUCache``: bounded by entry count and, optionally, by the total bytes its values
  report (prepared GPU conditioning); counts hits, misses and evictions. Used only from
  the event loop, so it needs no lock.
- ``SingleFlight``: concurrent callers for one key share one running task, so 50 requests
  for a cold voice make one download and one preparation. A caller that is cancelled
  does not cancel the shared work for the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DISK_SUFFIX = ".audio"
_TMP_SUFFIX = ".tmp"
_STALE_TMP_S = 600.0  # a temporary file this old is left over from a crash


class LRUCache(Generic[K, V]):
    """Least-recently-used map bounded by ``max_items`` and optionally ``max_bytes``.

    With ``max_bytes`` set, ``size_of(value)`` gives each value's size; the oldest entries
    go until the total fits, but the newest entry always stays (one voice larger than the
    budget is still usable, it just evicts everything else).
    """

    def __init__(
        self,
        max_items: int,
        *,
        max_bytes: int | None = None,
        size_of: Callable[[V], int] | None = None,
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.total_bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def keys(self) -> list[K]:
        """Keys from least to most recently used."""
        return list(self._data)

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recent), counting a hit or a miss."""
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return entry[0]

    def peek(self, key: K) -> V | None:
        """The value for ``key`` without touching recency or counters."""
        entry = self._data.get(key)
        return None if entry is None else entry[0]

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Insert or replace ``key``; returns the entries evicted to make room."""
        self.pop(key)
        size = self._size_of(value) if self._size_of is not None else 0
        self._data[key] = (value, size)
        self.total_bytes += size
        evicted: list[tuple[K, V]] = []
        while len(self._data) > 1 and (
            len(self._data) > self.max_items
            or (self.max_bytes is not None and self.total_bytes > self.max_bytes)
        ):
            old_key, (old_value, old_size) = self._data.popitem(last=False)
            self.total_bytes -= old_size
            self.evictions += 1
            evicted.append((old_key, old_value))
        return evicted

    def pop(self, key: K) -> V | None:
        entry = self._data.pop(key, None)
        if entry is None:
            return None
        self.total_bytes -= entry[1]
        return entry[0]

    def clear(self) -> None:
        self._data.clear()
        self.total_bytes = 0

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "size": len(self._data),
            "max_size": self.max_items,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }
        if self._size_of is not None:
            out["bytes"] = self.total_bytes
            out["max_bytes"] = self.max_bytes
        return out


class SingleFlight(Generic[K, V]):
    """At most one running task per key; every concurrent caller awaits the same result.

    Nothing is remembered once the task ends, success or failure: caching results is the
    caller's business, so a failure is never kept as a success.
    """

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._tasks[key] = task
            task.add_done_callback(lambda t, key=key: self._finished(key, t))  # type: ignore[misc]
        # shield: a cancelled caller leaves the shared work running for the others.
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "exception never retrieved" if nobody waited

    def forget(self, key: K) -> None:
        """Let the next caller for ``key`` start new work (the running task goes on)."""
        self._tasks.pop(key, None)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
