"""Synthesis slots per replica (``MAX_CONCURRENT_STREAMS``).

A one-shot request holds a slot while it runs; a streaming-text session holds one from its
first ``init`` until the connection closes. When every slot is taken the request is refused
at once with ``Busy`` instead of queueing behind the others. While the replica drains for
shutdown no new slot is given (``Busy`` with code ``shutting_down``); ``oneshots`` counts
the one-shot slots in use, so the drain knows when they have finished.
"""

from __future__ import annotations

from app.errors import Busy


class Slot:
    def __init__(self, capacity: Capacity, oneshot: bool) -> None:
        self._capacity: Capacity | None = capacity
        self._oneshot = oneshot

    def release(self) -> None:
        if self._capacity is not None:
            self._capacity._in_use -= 1
            if self._oneshot:
                self._capacity.oneshots -= 1
            self._capacity = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Capacity:
    def __init__(self, max_slots: int) -> None:
        self.max_slots = max_slots
        self._in_use = 0
        self.oneshots = 0
        self.draining = False

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def full(self) -> bool:
        return self._in_use >= self.max_slots

    def check(self) -> None:
        """``Busy`` when the replica is full or draining: asked before any voice I/O, so a
        full replica answers at once instead of after fetching and decoding a clip."""
        if self.draining:
            raise Busy("Server shutting down: try another replica", code="shutting_down")
        if self.full:
            raise Busy(f"Server busy: all {self.max_slots} synthesis slots are in use")

    def acquire(self, oneshot: bool = True) -> Slot:
        """A slot, or ``Busy`` when the replica is full or draining (never waits).

        ``oneshot=False`` for a streaming session's slot, held until the connection closes.
        """
        self.check()
        self._in_use += 1
        if oneshot:
            self.oneshots += 1
        return Slot(self, oneshot)

    def to_dict(self) -> dict[str, int]:
        return {"in_use": self._in_use, "max": self.max_slots}
