"""``/ws/synthesize``: requests one after another on one connection.

Requests queue up and run in order on one worker task; the receive loop stays free, so a
``cancel`` arrives while audio is being produced. Each request is one ``Utterance``; a
cancel stops the running one (its engine stream is closed), drops queued requests and its
unsent frames, and answers ``Cancelled`` in place of ``UtteranceDone``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from app.audio.formats import resolve_format
from app.errors import Busy, InvalidRequest, TTSError
from app.protocol import events as ev
from app.protocol.requests import SynthesizeRequest, parse
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.utterance import UtteranceSpec, open_utterance
from app.text.estimate import estimate_heard
from app.text.normalize import Normalized

MAX_QUEUED_REQUESTS = 16


class RequestSession:
    def __init__(self, runtime: Runtime, outbox: Outbox) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self._requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED_REQUESTS)
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._current_text = ""
        self._current_spoken: Normalized | None = None  # what the engine read, if changed
        self._sent_before = (0, 0.0)  # outbox counters when the current request started
        self._session_text = 0  # characters received on this connection

    @property
    def busy(self) -> bool:
        """A request is running or queued."""
        running = self._current is not None and not self._current.done()
        return running or not self._requests.empty()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="ws-synthesize-worker")

    async def on_request(self, data: dict[str, Any]) -> None:
        if not data.get("text") or not data.get("voice_id"):
            raise InvalidRequest("Missing text or voice_id")
        if self.runtime.draining:
            raise Busy("Server shutting down: try another replica", code="shutting_down")
        text = data.get("text")
        if isinstance(text, str):
            limit = self.runtime.settings.max_session_text_length
            if self._session_text + len(text) > limit:
                raise InvalidRequest(
                    f"Session text is too long (limit {limit} characters per connection)",
                    code="text_too_long",
                )
            self._session_text += len(text)
        try:
            self._requests.put_nowait(data)
        except asyncio.QueueFull:
            raise Busy("Too many queued requests on this connection") from None

    async def on_cancel(self, data: dict[str, Any] | None = None) -> None:
        while not self._requests.empty():
            self._requests.get_nowait()
        self.outbox.cancel()
        current = self._current
        if current is None or current.done():
            await self.outbox.control(ev.Cancelled(0, "", False))
            return
        current.cancel()
        # Let the engine notice (one step); never hold the acknowledgement for long.
        await asyncio.wait({current}, timeout=0.05)
        frames = self.outbox.sent_audio - self._sent_before[0]
        seconds = self.outbox.sent_seconds - self._sent_before[1]
        spoken, estimated = estimate_heard(self._current_text, seconds, self._current_spoken)
        await self.outbox.control(ev.Cancelled(frames, spoken, estimated))

    async def _run(self) -> None:
        while True:
            data = await self._requests.get()
            self._current = asyncio.create_task(self._one(data), name="ws-synthesize-request")
            try:
                await self._current
            except asyncio.CancelledError:
                # A cancel of the request (barge-in) is normal; a cancel of this worker
                # (the connection closed) must end the loop.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            finally:
                self._current = None

    async def _one(self, data: dict[str, Any]) -> None:
        try:
            await self._synthesize(data)
        except TTSError as exc:
            await self.outbox.control(ev.Error.of(exc))

    async def _synthesize(self, data: dict[str, Any]) -> None:
        req: SynthesizeRequest = parse(SynthesizeRequest, data)
        fmt = resolve_format("synthesize", req.output_format)
        if req.stream_sid is not None and fmt.encoding != "mulaw" and fmt.container != "wav":
            raise InvalidRequest("Twilio mode (stream_sid) sends mu-law only")
        spec = UtteranceSpec(req.text, req.voice_id, req.preset, fmt, speed=req.speed,
                             language=req.language, normalize=req.normalize,
                             route="ws_synthesize")
        utterance = await open_utterance(self.runtime, spec)
        generation = self.outbox.generation
        self._current_text = req.text
        self._current_spoken = utterance.spoken_form(req.text)
        self._sent_before = (self.outbox.sent_audio, self.outbox.sent_seconds)
        with utterance:
            await self.outbox.control(
                ev.Started(utterance.voice.voice_id, utterance.format, req.stream_sid),
                generation,
            )
            await self.outbox.relay(utterance.events(), generation)

    async def aclose(self) -> None:
        for task in (self._current, self._worker):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._current, self._worker):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
