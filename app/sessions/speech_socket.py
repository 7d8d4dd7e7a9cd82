"""``WS /v1/audio/speech/stream/ws``: the chunked HTTP stream's socket twin (seed-003 shape).

One request at a time on a connection (``app.protocol.speech_ws`` has the messages): each is
one ``Utterance``, validated (text, format, voice, a slot) before its ``start``; an error
leaves the socket open. The request runs on its own task so the reader stays free for
``cancel``, which drops the request's unsent audio and closes its engine stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from app.audio.formats import OutputFormat, resolve_format
from app.errors import InvalidRequest, TTSError
from app.protocol import events as ev
from app.protocol.requests import parse
from app.protocol.speech import SpeechStreamRequest
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.utterance import Utterance, UtteranceSpec, open_utterance


def speech_spec(req: SpeechStreamRequest, fmt: OutputFormat, route: str) -> UtteranceSpec:
    """The utterance a seed-003-shaped request asks for (the HTTP stream and this socket)."""
    return UtteranceSpec(req.text, req.voice_id, req.preset, fmt, framed=False,
                         speed=req.speed, language=req.language, normalize=req.normalize,
                         route=route, temperature=req.temperature, top_p=req.top_p)


class SpeechSocketSession:
    def __init__(self, runtime: Runtime, outbox: Outbox) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self._task: asyncio.Task[None] | None = None
        self._utterance: Utterance | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def on_message(self, data: dict[str, Any]) -> None:
        kind = data.get("type", "start")
        if kind == "cancel":
            await self._cancel()
            return
        if kind != "start":
            raise InvalidRequest(f"Unknown message type: {str(kind)[:32]}", code="unknown_type")
        if self.busy:
            raise InvalidRequest("A request is running: wait for its end or cancel it",
                                 code="invalid_state")
        req = parse(SpeechStreamRequest, {k: v for k, v in data.items() if k != "type"})
        fmt = resolve_format("http_stream", req.format, field="format")
        utterance = await open_utterance(self.runtime, speech_spec(req, fmt, "speech_ws"))
        self._utterance = utterance
        await self.outbox.control(ev.Started(utterance.voice.voice_id, utterance.format))
        self._task = asyncio.create_task(self._run(utterance), name="speech-socket")

    async def _run(self, utterance: Utterance) -> None:
        generation = self.outbox.generation
        with utterance:
            try:
                await self.outbox.relay(utterance.events(), generation)
            except TTSError as exc:
                utterance.close(exc.code)
                await self.outbox.control(ev.Error.of(exc), generation)

    async def _cancel(self) -> None:
        task, utterance = self._task, self._utterance
        self.outbox.cancel()
        frames = 0
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if utterance is not None:
                utterance.close("cancelled")
                frames = utterance.frames
        await self.outbox.control(ev.Cancelled(frames, "", False))

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._utterance is not None:
            self._utterance.close("client_gone")
