"""``POST /v1/audio/speech``: OpenAI's speech API, so OpenAI TTS clients need only a base URL.

``pcm`` (24 kHz), ``mp3`` (24 kHz, 64 kbit/s, LAME) and ``opus`` (Ogg, 32 kbit/s) stream
chunk by chunk as the engine produces audio (``app.audio.compressed``), so the first bytes
leave before synthesis ends; ``wav`` and ``flac`` are whole files encoded once synthesis
ends (``app.audio.files``). ``stream_format: "sse"`` (what LiveKit's ``openai.TTS`` asks for
with every model but tts-1/tts-1-hd) sends the same bytes as ``speech.audio.delta`` events
(``app.protocol.openai_sse``). ``voice`` may be one of OpenAI's names: ``VOICE_ALIASES``
maps them to our voices (``alloy=alice``), and an unmapped one means ``default``.

Every error on this route, validation and authentication included, uses OpenAI's error
envelope with our codes (``app.api.error_routes``), so OpenAI clients surface the message
instead of a parse failure.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio
from fastapi import APIRouter, Response

from app.api.auth import RequireApiKey
from app.api.error_routes import shaped_error_route
from app.api.http_stream import JobStreamingResponse, audio_headers, logged
from app.audio import get_output_format
from app.audio.compressed import (
    OPUS_RATE,
    StreamFormat,
    available_codecs,
    compressed_stream,
    pcm_stream,
)
from app.audio.files import MEDIA_TYPES, available_file_formats, encode_file
from app.errors import InvalidRequest
from app.protocol.openai import OPENAI_RATE, OpenAISpeechRequest, openai_error
from app.protocol.openai_sse import MEDIA_TYPE as SSE_MEDIA_TYPE
from app.protocol.openai_sse import audio_delta, audio_done
from app.runtime import RuntimeDep
from app.sessions.encoded import encoded_bytes
from app.sessions.speech import SpeechJob, open_speech

log = logging.getLogger(__name__)


router = APIRouter(route_class=shaped_error_route(openai_error))


# Formats streamed as they are encoded (24 kHz like OpenAI's; Opus codes 48 kHz internally).
_STREAMED: dict[str, StreamFormat] = {
    "pcm": pcm_stream("pcm", OPENAI_RATE),
    "mp3": compressed_stream("mp3", "mp3", OPENAI_RATE, 64),
    "opus": compressed_stream("opus", "opus", OPUS_RATE, 32),
}


def _streamed_formats() -> dict[str, StreamFormat]:
    codecs = available_codecs()
    return {name: f for name, f in _STREAMED.items()
            if f.compressed is None or f.compressed.codec in codecs}


def response_format(name: str) -> str:
    valid = dict.fromkeys((*_streamed_formats(), *available_file_formats()))
    if name not in valid:
        raise InvalidRequest(
            f"Unsupported response_format: {name[:32]!r}. Supported here: {', '.join(valid)}",
            code="unsupported_response_format",
        )
    return name


async def _sse(body: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(body):
        async for data in body:
            yield audio_delta(data)
    yield audio_done()


async def _whole_file(job: SpeechJob, fmt_name: str) -> bytes:
    try:
        pcm = await job.collect()
    finally:
        job.release()
    return await anyio.to_thread.run_sync(encode_file, pcm, OPENAI_RATE, fmt_name)


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


@router.post("/v1/audio/speech", dependencies=[RequireApiKey])
async def openai_speech(req: OpenAISpeechRequest, runtime: RuntimeDep) -> Response:
    """OpenAI-compatible speech: ``pcm``, ``mp3`` and ``opus`` stream as they are encoded;
    ``wav`` and ``flac`` come whole at the end; ``stream_format="sse"`` wraps either in
    ``speech.audio.delta`` events."""
    fmt_name = response_format(req.response_format)
    if req.stream_format not in ("audio", "sse"):
        raise InvalidRequest("Unsupported stream_format: 'audio' or 'sse'",
                             code="invalid_request")
    streamed = _streamed_formats().get(fmt_name)
    job = await open_speech(
        runtime, text=req.input, voice_id=req.voice_id(runtime.settings.voice_alias_map),
        preset=req.preset, fmt=streamed.chain if streamed else get_output_format("pcm_24000"),
        speed=req.speed,
    )
    headers = audio_headers(job, fmt_name)
    # Echoed for the client's logs; a header carries printable ASCII only.
    headers["X-Model"] = "".join(c for c in req.model[:100] if " " <= c <= "~")
    if streamed is None or streamed.compressed is not None:
        del headers["X-Audio-Encoding"]
    if streamed is not None:
        body = encoded_bytes(job, streamed)
        media_type = streamed.media_type
    else:
        # A whole file: synthesized and encoded before the response starts.
        body = _once(await _whole_file(job, fmt_name))
        media_type = MEDIA_TYPES[fmt_name]
    if req.stream_format == "sse":
        return JobStreamingResponse(job, _sse(body), media_type=SSE_MEDIA_TYPE,
                                    headers=headers)
    return JobStreamingResponse(job, logged(body), media_type=media_type, headers=headers)

