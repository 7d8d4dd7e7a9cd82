"""ElevenLabs' HTTP text-to-speech routes, as their SDK, pipecat and LiveKit call them.

- ``POST /v1/text-to-speech/{voice_id}``: the whole file (``Content-Length`` set);
- ``POST /v1/text-to-speech/{voice_id}/stream``: the same bytes, chunked as produced;
- ``POST /v1/text-to-speech/{voice_id}/with-timestamps``: one JSON object with the audio in
  base64 and its character alignment;
- ``POST /v1/text-to-speech/{voice_id}/stream/with-timestamps``: one such object per
  engine chunk, newline-delimited, as each chunk is encoded.

Shapes and the protocol notes are in ``app.protocol.elevenlabs_api``. Everything that can
be wrong (text, format, voice, a free slot) fails before the response starts, in
ElevenLabs' error shape; after the 200 an engine failure drops the connection (as on our
other streaming routes). ``preset`` (query) is our extension; ``model_id`` is reported in
``X-Model``; ``seed`` and ``language_code`` reach the engine; ``voice_settings.speed``
too, where the engine has a rate control (Piper).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.api.auth import RequireApiKey
from app.api.error_routes import shaped_error_route
from app.api.http_stream import JobStreamingResponse, audio_headers, logged
from app.audio.compressed import StreamFormat
from app.protocol.elevenlabs_api import (
    DEFAULT_HTTP_FORMAT,
    ElevenLabsSpeechRequest,
    http_alignment,
    http_error,
    stream_format,
)
from app.runtime import Runtime, RuntimeDep
from app.sessions.encoded import encoded_bytes, encoded_pieces
from app.sessions.speech import SpeechJob, open_speech
from app.text.alignment import ChunkAligner

router = APIRouter(route_class=shaped_error_route(http_error, validation_status=422))

OutputFormatQuery = Annotated[str, Query(max_length=64)]
PresetQuery = Annotated[str, Query(max_length=64)]
NDJSON = "application/x-ndjson"


async def _open(
    runtime: Runtime, voice_id: str, req: ElevenLabsSpeechRequest, fmt_name: str, preset: str
) -> tuple[SpeechJob, StreamFormat, dict[str, str]]:
    fmt = stream_format(fmt_name)
    extra: dict[str, Any] = {}
    if req.seed is not None:
        extra["seed"] = req.seed
    if req.language_code:
        extra["language"] = req.language_code
    job = await open_speech(runtime, text=req.text, voice_id=voice_id, preset=preset,
                            fmt=fmt.chain, speed=req.speed(), **extra)
    headers = audio_headers(job, fmt_name)
    if fmt.compressed is not None:
        del headers["X-Audio-Encoding"]
    if req.model_id:
        headers["X-Model"] = "".join(c for c in req.model_id[:100] if " " <= c <= "~")
    return job, fmt, headers


async def _timed_pieces(
    job: SpeechJob, fmt: StreamFormat
) -> AsyncGenerator[dict[str, Any], None]:
    """One ``{"audio_base64", "alignment", "normalized_alignment"}`` per encoded piece."""
    aligner = ChunkAligner(job.text)
    offset = 0.0
    async with aclosing(encoded_pieces(job, fmt)) as pieces:
        async for piece in pieces:
            timings = aligner.take(piece.seconds, last=piece.last)
            if not piece.data and not timings.chars:
                continue
            out: dict[str, Any] = {"audio_base64": base64.b64encode(piece.data).decode("ascii")}
            if timings.chars:
                alignment = http_alignment(timings, offset)
                out["alignment"] = alignment
                out["normalized_alignment"] = alignment
            offset += piece.seconds
            yield out


async def _ndjson(job: SpeechJob, fmt: StreamFormat) -> AsyncGenerator[bytes, None]:
    async with aclosing(_timed_pieces(job, fmt)) as pieces:
        async for piece in pieces:
            yield json.dumps(piece, separators=(",", ":")).encode() + b"\n"


@router.post("/v1/text-to-speech/{voice_id}", dependencies=[RequireApiKey])
async def convert(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """The whole audio file in ``output_format`` (default mp3_44100_128)."""
    job, fmt, headers = await _open(runtime, voice_id, req, output_format, preset)
    try:
        data = b"".join([piece async for piece in encoded_bytes(job, fmt)])
    finally:
        job.release()
    return Response(data, media_type=fmt.media_type, headers=headers)


@router.post("/v1/text-to-speech/{voice_id}/stream", dependencies=[RequireApiKey])
async def stream(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """The audio, chunked as each engine chunk is encoded (MP3 and Opus included)."""
    job, fmt, headers = await _open(runtime, voice_id, req, output_format, preset)
    return JobStreamingResponse(job, logged(encoded_bytes(job, fmt)),
                                media_type=fmt.media_type, headers=headers)


@router.post("/v1/text-to-speech/{voice_id}/with-timestamps", dependencies=[RequireApiKey])
async def convert_with_timestamps(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """``{"audio_base64", "alignment", "normalized_alignment"}`` for the whole utterance."""
    job, fmt, headers = await _open(runtime, voice_id, req, output_format, preset)
    audio: list[bytes] = []
    chars: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    try:
        async with aclosing(_timed_pieces(job, fmt)) as pieces:
            async for piece in pieces:
                audio.append(base64.b64decode(piece["audio_base64"]))
                if "alignment" in piece:
                    a = piece["alignment"]
                    chars += a["characters"]
                    starts += a["character_start_times_seconds"]
                    ends += a["character_end_times_seconds"]
    finally:
        job.release()
    alignment = {"characters": chars, "character_start_times_seconds": starts,
                 "character_end_times_seconds": ends}
    body = {"audio_base64": base64.b64encode(b"".join(audio)).decode("ascii"),
            "alignment": alignment, "normalized_alignment": alignment}
    headers.pop("X-Audio-Encoding", None)
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json",
                    headers=headers)


@router.post("/v1/text-to-speech/{voice_id}/stream/with-timestamps",
             dependencies=[RequireApiKey])
async def stream_with_timestamps(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """Newline-delimited JSON, one object per engine chunk (alignment in seconds)."""
    job, fmt, headers = await _open(runtime, voice_id, req, output_format, preset)
    headers.pop("X-Audio-Encoding", None)
    return JobStreamingResponse(job, logged(_ndjson(job, fmt)), media_type=NDJSON,
                                headers=headers)
