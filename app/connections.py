"""Per-connection and per-replica limits for sockets.

``RateLimiter`` is a token bucket for messages per second on one connection. The
``ConnectionRegistry`` admits sockets against ``MAX_CONNECTIONS`` and
``MAX_SESSIONS_PER_KEY`` and keeps the live ones, so that a drain can find them. Refusals
at connect are ``ConnectionRefused`` with the WebSocket close code to use (1013).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WS_TRY_AGAIN_LATER = 1013
WS_GOING_AWAY = 1001


class ConnectionRefused(Exception):
    def __init__(self, reason: str, code: int = WS_TRY_AGAIN_LATER) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class RateLimiter:
    """Token bucket: ``rate`` per second, bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2.0 * rate)
        self._tokens = self.burst
        self._clock = clock
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(eq=False)
class Connection:
    """One live socket, as the registry and a drain see it."""

    route: str
    key_id: str | None
    session: Any = None  # has ``busy`` (bool)
    outbox: Any = None  # has ``request_close(code, reason, error=None)`` and ``depth``
    opened: float = field(default_factory=time.monotonic)

    @property
    def busy(self) -> bool:
        return bool(self.session is not None and self.session.busy)


class ConnectionRegistry:
    def __init__(self, max_connections: int, max_per_key: int) -> None:
        self.max_connections = max_connections
        self.max_per_key = max_per_key
        self.live: set[Connection] = set()
        self._per_key: dict[str, int] = {}

    def admit(self, route: str, key_id: str | None, draining: bool) -> Connection:
        if draining:
            raise ConnectionRefused("Server shutting down", WS_GOING_AWAY)
        if len(self.live) >= self.max_connections:
            raise ConnectionRefused(f"Server full: {self.max_connections} connections")
        if key_id is not None and self.max_per_key:
            if self._per_key.get(key_id, 0) >= self.max_per_key:
                raise ConnectionRefused(
                    f"Too many sessions for this API key (limit {self.max_per_key})"
                )
        conn = Connection(route, key_id)
        self.live.add(conn)
        if key_id is not None:
            self._per_key[key_id] = self._per_key.get(key_id, 0) + 1
        return conn

    def release(self, conn: Connection) -> None:
        if conn not in self.live:
            return
        self.live.discard(conn)
        if conn.key_id is not None:
            left = self._per_key.get(conn.key_id, 1) - 1
            if left > 0:
                self._per_key[conn.key_id] = left
            else:
                self._per_key.pop(conn.key_id, None)

    def count(self, route: str | None = None) -> int:
        return sum(1 for c in self.live if route is None or c.route == route)

    def queue_depth(self) -> int:
        return sum(c.outbox.depth for c in self.live if c.outbox is not None)

    def any_busy(self) -> bool:
        return any(c.busy for c in self.live)
