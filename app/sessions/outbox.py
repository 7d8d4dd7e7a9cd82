"""The one writer of a socket: a bounded queue drained by a single sender task.

Producers (utterances) and the receive loop both send through it, so messages never
interleave badly and receiving never waits on a slow send. Audio is tagged with the
utterance ``generation``; ``cancel()`` moves to a new generation, and audio of an older
one still in the queue is dropped, so nothing is sent after a cancel acknowledgement.

The queue holds about ``max_seconds`` of 20 ms frames. When it is full and the client has
not read a single message for ``max_seconds`` more, the client is a slow consumer: the
outbox asks its connection to close (1008, ``slow_consumer``) and the producer stops with
``SlowConsumer``, so a client that stops reading holds neither memory nor a slot.
``request_close`` is also how idle timeouts and a shutdown drain end a connection: the
socket route waits on ``close_requested`` and does the closing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.errors import SlowConsumer

SendText = Callable[[str], Awaitable[None]]
WS_POLICY_VIOLATION = 1008
FRAME_S = 0.02


@dataclass
class _Item:
    message: dict[str, Any]
    generation: int | None  # None: control message, always sent
    seconds: float | None = None  # audio messages: the duration they carry


@dataclass
class CloseRequest:
    code: int
    reason: str
    error: dict[str, Any] | None = None  # sent first, if the socket still takes it


class Outbox:
    def __init__(
        self,
        send_text: SendText,
        max_items: int = 500,
        *,
        max_seconds: float | None = None,
        on_error: Callable[[str], None] | None = None,
        request_id: str | None = None,
    ) -> None:
        self._send_text = send_text
        if max_seconds is not None:
            max_items = max(50, int(max_seconds / FRAME_S))
        self.stall_s = max_seconds if max_seconds is not None else 30.0
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(max_items)
        self.generation = 0
        self.sent_audio = 0  # audio messages actually written to the socket
        self.sent_seconds = 0.0  # and the audio they carried
        # Called after each message is written, with the audio seconds it carried (0 for
        # control messages): lets a session know what the caller has actually received.
        self.on_sent: Callable[[dict[str, Any], float], None] | None = None
        self._on_error = on_error
        self.request_id = request_id  # added to ready and error messages
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_request: CloseRequest | None = None
        self.close_requested = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def audio(self, message: dict[str, Any], generation: int, seconds: float) -> None:
        """Queue an audio message (waits while the queue is full: backpressure)."""
        if generation == self.generation and not self.closed:
            await self._put(_Item(message, generation, seconds))

    async def control(self, message: dict[str, Any], generation: int | None = None) -> None:
        """Queue a control message; with ``generation`` it is dropped if that one is cancelled."""
        if not self.closed:
            await self._put(_Item(message, generation))

    async def _put(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self._queue.put(item), self.stall_s)
        except TimeoutError:
            error = {"type": "error", "error": "Client is not reading: connection closed",
                     "code": SlowConsumer.code}
            self.request_close(WS_POLICY_VIOLATION, "slow_consumer", error)
            raise SlowConsumer("Client is not reading") from None

    def request_close(
        self, code: int, reason: str, error: dict[str, Any] | None = None
    ) -> None:
        """Ask the socket route to close this connection (first request wins)."""
        if self.close_request is None:
            self.close_request = CloseRequest(code, reason, error)
            if error is not None and self._on_error is not None:
                self._on_error(str(error.get("code", "error")))
        self.closed = True
        self.close_requested.set()

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
            message = item.message
            if "error" in message and "code" in message:
                if self._on_error is not None:
                    self._on_error(str(message.get("code", "error")))
                if self.request_id is not None:
                    message = {**message, "request_id": self.request_id}
            elif self.request_id is not None and message.get("type") == "ready":
                message = {**message, "request_id": self.request_id}
            await self._send_text(json.dumps(message, separators=(",", ":")))
            if item.seconds is not None:
                self.sent_audio += 1
                self.sent_seconds += item.seconds
            if self.on_sent is not None:
                self.on_sent(message, item.seconds or 0.0)

    def abort(self) -> None:
        self.closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task
