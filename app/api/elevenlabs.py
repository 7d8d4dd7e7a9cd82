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
``language_code`` (query) selects the language, as ElevenLabs' multilingual models take it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket

from app.api.ws import open_socket, serve_socket
from app.errors import TTSError
from app.protocol import elevenlabs as el
from app.protocol import events as ev
from app.sessions.outbox import Outbox
from app.sessions.stream_session import StreamSession

router = APIRouter()
WS_NORMAL = 1000


class _Adapter:
    """One connection: client messages to session calls (the serializer shapes the replies)."""

    def __init__(
        self, session: StreamSession, serializer: el.StreamInputSerializer, voice_id: str,
        preset: str, fmt_name: str, language: str | None,
    ) -> None:
        self.session = session
        self.outbox: Outbox = session.outbox
        self.serializer = serializer
        self.voice_id = voice_id
        self.preset = preset
        self.fmt_name = fmt_name
        self.language = language
        self.started = False
        self.ended = False

    async def error(self, message: str, code: str) -> None:
        await self.outbox.control(ev.Error(message, code))

    async def on_message(self, data: dict[str, Any]) -> None:
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
                    "output_format": self.serializer.fmt.name, "language": self.language,
                })
            except TTSError as exc:
                # Bad or unknown voice, busy: every later message would fail the same way.
                self.outbox.request_close(WS_NORMAL, exc.code, ev.Error.of(exc))
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
    language_code: Annotated[str | None, Query(max_length=16)] = None,
) -> None:
    """ElevenLabs-style text in, audio with character alignment out (see module docstring)."""
    failure: TTSError | None = None
    try:
        fmt = el.elevenlabs_format(output_format)
    except TTSError as exc:
        fmt, failure = el.elevenlabs_format("pcm_16000"), exc
    serializer = el.StreamInputSerializer(fmt)
    runtime, conn, outbox = await open_socket(ws, "elevenlabs", serializer)
    session = StreamSession(runtime, outbox, route="elevenlabs")
    if failure is not None:
        outbox.request_close(WS_NORMAL, failure.code, ev.Error.of(failure))
        await serve_socket(ws, runtime, conn, session, lambda data: None)
        return
    adapter = _Adapter(session, serializer, voice_id, preset, output_format, language_code)
    await serve_socket(ws, runtime, conn, session, lambda data: adapter.on_message)
