"""The one writer of a socket: a bounded queue drained by a single sender task.

Producers (utterances) and the receive loop both send through it, so messages never
interleave badly and receiving never waits on a slow send. Audio is tagged with the
utterance ``generation``; ``cancel()`` moves to a new generation, and audio of an older
one still in the queue is dropped, so nothing is sent after a cancel acknowledgement.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

SendText = Callable[[str], Awaitable[None]]


@dataclass
class _Item:
    message: dict[str, Any]
    generation: int | None  # None: control message, always sent
    seconds: float | None = None  # audio messages: the duration they carry


class Outbox:
    def __init__(self, send_text: SendText, max_items: int = 500) -> None:
        self._send_text = send_text
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(max_items)
        self.generation = 0
        self.sent_audio = 0  # audio messages actually written to the socket
        self.sent_seconds = 0.0  # and the audio they carried
        # Called after each message is written, with the audio seconds it carried (0 for
        # control messages): lets a session know what the caller has actually received.
        self.on_sent: Callable[[dict[str, Any], float], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def audio(self, message: dict[str, Any], generation: int, seconds: float) -> None:
        """Queue an audio message (waits while the queue is full: backpressure)."""
        if generation == self.generation and not self.closed:
            await self._queue.put(_Item(message, generation, seconds))

    async def control(self, message: dict[str, Any], generation: int | None = None) -> None:
        """Queue a control message; with ``generation`` it is dropped if that one is cancelled."""
        if not self.closed:
            await self._queue.put(_Item(message, generation))

    def cancel(self) -> int:
        """Start a new generation; queued audio of older ones will not be sent."""
        self.generation += 1
        return self.generation

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if item.generation is not None and item.generation != self.generation:
                continue
            await self._send_text(json.dumps(item.message, separators=(",", ":")))
            if item.seconds is not None:
                self.sent_audio += 1
                self.sent_seconds += item.seconds
            if self.on_sent is not None:
                self.on_sent(item.message, item.seconds or 0.0)

    def abort(self) -> None:
        self.closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task
