"""``WS /v1/text-to-speech/{voice_id}/stream-input``: ElevenLabs' stream-input protocol.

A thin adapter over ``StreamSession`` (the same clause segmenter, producer and outbox as
``/ws/synthesize-stream``); ``app.protocol.elevenlabs`` owns the message shapes. The client
messages map onto the session like this:

- the first message (ElevenLabs' ``{"text": " "}``, with optional settings) is the session's
  ``init`` with the voice from the path, ``output_format`` from the query (``ulaw_8000``,
  ``pcm_16000`` default, ``pcm_22050``, ``pcm_24000``, ``pcm_44100``) and ``preset`` from
  the query (our extension); any text it carries is spoken too;
- ``{"text": "..."}`` is session text; ``"flush": true`` speaks everything buffered now
  (the session's ``end`` without the final message); ``try_trigger_generation``,
  ``voice_settings`` and ``generation_config`` are accepted and ignored: the segmenter
  decides when a clause is ready;
- ``{"text": ""}`` speaks the rest, answers ``{"isFinal": true}`` and closes the socket (1000).

A request that cannot work at all (unknown output format, bad or unknown voice, no free
slot) gets an error message and then a normal close (1000), since every later message would
fail the same way. Authentication, admission, message-rate limits, idle timeout, slow
consumers and shutdown are those of our other sockets (``app.api.ws``): the key may come as
``xi-api-key`` header or ``xi_api_key`` query parameter, as ElevenLabs clients send it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket

from app.api.ws import _open, _serve
from app.errors import TTSError
from app.protocol import elevenlabs as el
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.stream_session import StreamSession

router = APIRouter()
WS_NORMAL = 1000


class _Adapter:
    """One connection: client messages to session calls, session messages to the socket."""

    def __init__(self, ws: WebSocket, voice_id: str, preset: str, fmt_name: str) -> None:
        self.ws = ws
        self.voice_id = voice_id
        self.preset = preset
        self.fmt_name = fmt_name
        self.serializer = el.StreamInputSerializer(el.elevenlabs_format(fmt_name))
        self.outbox: Outbox | None = None
        self.session: StreamSession | None = None
        self.started = False
        self.ended = False

    def bind(self, runtime: Runtime, outbox: Outbox) -> StreamSession:
        self.outbox = outbox
        self.session = StreamSession(runtime, outbox)
        return self.session

    async def write(self, text: str) -> None:
        """The outbox's writer: what the session says, in ElevenLabs' shapes."""
        for out in self.serializer.translate(json.loads(text)):
            await self.ws.send_text(json.dumps(out, separators=(",", ":")))
        if self.serializer.finished and self.outbox is not None:
            self.outbox.request_close(WS_NORMAL, "input ended")

    async def error(self, message: str, code: str) -> None:
        assert self.outbox is not None
        # A session-shaped error through the outbox; the serializer gives it ElevenLabs' shape.
        await self.outbox.control({"type": "error", "error": message, "code": code})

    async def on_message(self, data: dict[str, Any]) -> None:
        assert self.session is not None and self.outbox is not None
        text = data.get("text")
        if not isinstance(text, str):
            await self.error('Missing text: send {"text": "..."}', "invalid_message")
            return
        if self.ended:
            await self.error("The input has ended: open a new connection", "invalid_state")
            return
        if not self.started:
            try:
                await self.session.on_init({
                    "type": "init", "voice_id": self.voice_id, "preset": self.preset,
                    "output_format": el.ELEVENLABS_FORMATS[self.fmt_name],
                })
            except TTSError as exc:
                # Bad or unknown voice, busy: every later message would fail the same way.
                self.outbox.request_close(WS_NORMAL, exc.code, el.error(exc.message, exc.code))
                return
            self.started = True
            if text != "" and not text.strip():
                return  # ElevenLabs' opening {"text": " "}
        if text == "":
            self.ended = True
            self.serializer.expect_end(final=True)
            await self.session.on_end({"type": "end"})
            return
        await self.session.on_text({"type": "text", "content": text})
        if data.get("flush") is True:
            self.serializer.expect_end(final=False)
            await self.session.on_end({"type": "end"})


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(
    ws: WebSocket,
    voice_id: str,
    output_format: Annotated[str, Query(max_length=64)] = "pcm_16000",
    preset: Annotated[str, Query(max_length=64)] = "adaptive",
    model_id: Annotated[str | None, Query(max_length=200)] = None,
) -> None:
    """ElevenLabs-style text in, audio with character alignment out (see module docstring)."""
    try:
        adapter = _Adapter(ws, voice_id, preset, output_format)
    except TTSError as exc:
        adapter = None
        failure = el.error(exc.message, exc.code)
    runtime, conn, outbox = await _open(
        ws, "elevenlabs", adapter.write if adapter is not None else None
    )
    if adapter is None:
        outbox.request_close(WS_NORMAL, failure["code"], failure)
        session: Any = StreamSession(runtime, outbox)
        await _serve(ws, runtime, conn, session, lambda data: None)
        return
    session = adapter.bind(runtime, outbox)
    await _serve(ws, runtime, conn, session, lambda data: adapter.on_message)
