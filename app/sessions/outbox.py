"""The one writer of a socket: a bounded queue of events drained by a single sender task.

Producers (utterances) and the receive loop both send through it, so messages never
interleave badly and receiving never waits on a slow send. The outbox queues typed events
(``app.protocol.events``) and hands each to the connection's serializer when it is its turn
to go out: it knows no wire format. Audio is tagged with the utterance ``generation``;
``cancel()`` moves to a new generation, and audio of an older one still in the queue is
dropped, so nothing is sent after a cancel acknowledgement.

The queue holds about ``max_seconds`` of 20 ms frames. When it is full and the client has
not read a single message for ``max_seconds`` more, the client is a slow consumer: the
outbox asks its connection to close (1008, ``slow_consumer``) and the producer stops with
``SlowConsumer``, so a client that stops reading holds neither memory nor a slot.
``request_close`` is also how idle timeouts, a shutdown drain and a serializer whose
protocol has ended (``done``) end a connection: the socket route waits on
``close_requested`` and does the closing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from app.errors import SlowConsumer
from app.protocol import events as ev
from app.protocol.serializers import Serializer, WireMessage

Send = Callable[[WireMessage], Awaitable[None]]
WS_NORMAL = 1000
WS_POLICY_VIOLATION = 1008
FRAME_S = 0.02


@dataclass
class _Item:
    event: ev.Event
    generation: int | None  # None: control event, always sent
    seconds: float | None = None  # audio events: the duration they carry


@dataclass
class CloseRequest:
    code: int
    reason: str
    error: ev.Error | None = None  # sent first, if the socket still takes it


class Outbox:
    def __init__(
        self,
        send: Send,
        serializer: Serializer,
        max_items: int = 500,
        *,
        max_seconds: float | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._send = send
        self.serializer = serializer
        if max_seconds is not None:
            max_items = max(50, int(max_seconds / FRAME_S))
        self.stall_s = max_seconds if max_seconds is not None else 30.0
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(max_items)
        self.generation = 0
        self.sent_audio = 0  # audio events actually written to the socket
        self.sent_seconds = 0.0  # and the audio they carried
        # Called after each event is written, with the audio seconds it carried (0 for
        # control events): lets a session know what the caller has actually received.
        self.on_sent: Callable[[ev.Event, float], None] | None = None
        self._on_error = on_error  # errors sent to the client, by code (metrics)
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_request: CloseRequest | None = None
        self.close_requested = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def audio(self, event: ev.Audio, generation: int) -> None:
        """Queue an audio event (waits while the queue is full: backpressure)."""
        if generation == self.generation and not self.closed:
            await self._put(_Item(event, generation, event.seconds))

    async def control(self, event: ev.Event, generation: int | None = None) -> None:
        """Queue a control event; with ``generation`` it is dropped if that one is cancelled."""
        if not self.closed:
            await self._put(_Item(event, generation))

    async def relay(self, events: AsyncGenerator[ev.Event, None], generation: int) -> None:
        """Queue every event of a one-shot utterance (audio with backpressure, the rest as
        control) in ``generation``; closing ``events`` at the end, however it ends, closes
        the engine stream behind it."""
        async with aclosing(events):
            async for event in events:
                if isinstance(event, ev.Audio):
                    await self.audio(event, generation)
                else:
                    await self.control(event, generation)

    async def _put(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self._queue.put(item), self.stall_s)
        except TimeoutError:
            error = ev.Error("Client is not reading: connection closed", SlowConsumer.code)
            self.request_close(WS_POLICY_VIOLATION, "slow_consumer", error)
            raise SlowConsumer("Client is not reading") from None

    def request_close(self, code: int, reason: str, error: ev.Error | None = None) -> None:
        """Ask the socket route to close this connection (first request wins)."""
        if self.close_request is None:
            self.close_request = CloseRequest(code, reason, error)
            if error is not None and self._on_error is not None:
                self._on_error(error.code)
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
            event = item.event
            if isinstance(event, ev.Error) and self._on_error is not None:
                self._on_error(event.code)
            for message in self.serializer.serialize(event):
                await self._send(message)
            if item.seconds is not None:
                self.sent_audio += 1
                self.sent_seconds += item.seconds
            if self.on_sent is not None:
                self.on_sent(event, item.seconds or 0.0)
            if self.serializer.done:
                self.request_close(WS_NORMAL, "input ended")

    def abort(self) -> None:
        self.closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task
