"""ElevenLabs' text-to-speech sockets: ``multi-stream-input`` and ``stream-input``.

Both run ``ContextSession`` (``app.sessions.contexts``): multi-stream-input with contexts
(pipecat's ``ElevenLabsTTSService``, LiveKit's ``elevenlabs.TTS.stream()``), stream-input
with one implicit context that ``{"text": ""}`` ends (the ElevenLabs SDK's
``convert_realtime``). ``app.protocol.elevenlabs_ws`` owns the message shapes and has the
protocol notes. Audio goes out per engine chunk with its characters' alignment.

A socket that cannot work at all is refused with an error message and a close code that is
not 1000, so no client takes it for a finished stream: 1008 (policy) for a bad request (an
unsupported ``output_format`` at once; an invalid or unknown voice at the first message),
1013 (try again later) for a full or draining replica or a voice store that is down (at the
first message, which is when the connection takes its slot).
Authentication, admission, message-rate limits, slow consumers and shutdown are those of
our other sockets (``app.api.ws``); the key may come as ``xi-api-key`` header or
``xi_api_key`` query parameter, as ElevenLabs clients send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, WebSocket

from app.api.ws import open_socket, serve_socket
from app.audio.formats import OutputFormat
from app.errors import TTSError
from app.protocol import events as ev
from app.protocol.elevenlabs_api import elevenlabs_format
from app.protocol.elevenlabs_ws import ElevenLabsSocketSerializer
from app.sessions.contexts import ContextOptions, ContextSession

router = APIRouter()
WS_POLICY_VIOLATION = 1008

Str = Annotated[str, Query(max_length=64)]
OptStr = Annotated[str | None, Query(max_length=200)]
Timeout = Annotated[float, Query(gt=0, le=180)]
Seed = Annotated[int | None, Query(ge=0, le=4_294_967_295)]
# ElevenLabs' values: "off" reads the text as written; "auto" and "on" normalize it (numbers,
# money, dates... as POST /normalize shows), as TEXT_NORMALIZATION allows.
TextNormalization = Annotated[Literal["auto", "on", "off"], Query()]


@dataclass(frozen=True)
class SocketQuery:
    output_format: str
    options: dict[str, object]  # ContextOptions' fields


def socket_query(
    output_format: Str = "pcm_16000",
    preset: Str = "adaptive",
    model_id: OptStr = None,
    auto_mode: bool = False,
    inactivity_timeout: Timeout = 20,
    sync_alignment: bool = False,
    language_code: OptStr = None,
    seed: Seed = None,
    apply_text_normalization: TextNormalization = "auto",
) -> SocketQuery:
    """The query both sockets take, by ElevenLabs' names. ``sync_alignment`` is always on
    (every audio message carries its alignment); ``model_id`` is accepted and ignored (the
    running engine is in ``/health``)."""
    del model_id, sync_alignment
    return SocketQuery(output_format, {
        "preset": preset, "auto_mode": auto_mode, "inactivity_timeout_s": inactivity_timeout,
        "language": language_code, "seed": seed,
        "normalize": apply_text_normalization != "off",
    })


QueryDep = Annotated[SocketQuery, Depends(socket_query)]


async def _run(ws: WebSocket, route_name: str, voice_id: str, query: SocketQuery,
               multi: bool) -> None:
    failure: TTSError | None = None
    fmt: OutputFormat
    try:
        fmt = elevenlabs_format(query.output_format)
    except TTSError as exc:
        failure, fmt = exc, elevenlabs_format("pcm_16000")  # only to say why it closes
    serializer = ElevenLabsSocketSerializer(fmt, multi=multi)
    runtime, conn, outbox = await open_socket(ws, route_name, serializer)
    options = ContextOptions(voice_id=voice_id, format=fmt, multi=multi,
                             **query.options)  # type: ignore[arg-type]
    session = ContextSession(runtime, outbox, serializer, options)
    if failure is not None:  # known from the URL alone: refused at once
        outbox.request_close(WS_POLICY_VIOLATION, failure.code, ev.Error.of(failure))
    await serve_socket(ws, runtime, conn, session, lambda data: session.on_message)


@router.websocket("/v1/text-to-speech/{voice_id}/multi-stream-input")
async def multi_stream_input(ws: WebSocket, voice_id: str, query: QueryDep) -> None:
    """Contexts over one socket; audio per engine chunk with ``contextId`` and alignment."""
    await _run(ws, "elevenlabs-multi", voice_id, query, multi=True)


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(ws: WebSocket, voice_id: str, query: QueryDep) -> None:
    """One stream: text in, audio per engine chunk with alignment out; ``""`` ends it."""
    await _run(ws, "elevenlabs", voice_id, query, multi=False)
