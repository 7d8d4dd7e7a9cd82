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
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.auth import RequireApiKey
from app.api.deps import RuntimeDep
from app.api.error_routes import shaped_error_route
from app.api.http_stream import UtteranceResponse, audio_headers
from app.protocol.elevenlabs_api import (
    DEFAULT_HTTP_FORMAT,
    ElevenLabsSpeechRequest,
    TimestampsSerializer,
    elevenlabs_format,
    http_error,
)
from app.protocol.encoded import EncodedAudioSerializer
from app.protocol.serializers import Serializer
from app.runtime import Runtime
from app.sessions.oneshot import run_whole
from app.sessions.utterance import Utterance, UtteranceSpec, open_utterance

router = APIRouter(route_class=shaped_error_route(http_error, validation_status=422))

OutputFormatQuery = Annotated[str, Query(max_length=64)]
PresetQuery = Annotated[str, Query(max_length=64)]
NDJSON = "application/x-ndjson"


async def _open(
    runtime: Runtime, voice_id: str, req: ElevenLabsSpeechRequest, fmt_name: str, preset: str
) -> tuple[Utterance, dict[str, str]]:
    fmt = elevenlabs_format(fmt_name)
    spec = UtteranceSpec(req.text, voice_id, preset, fmt, framed=False, speed=req.speed(),
                         language=req.language_code, route="elevenlabs_http", seed=req.seed,
                         normalize=req.normalize)
    utterance = await open_utterance(runtime, spec)
    headers = audio_headers(utterance, fmt_name)
    if fmt.container != "raw":
        del headers["X-Audio-Encoding"]
    if req.model_id:
        headers["X-Model"] = "".join(c for c in req.model_id[:100] if " " <= c <= "~")
    return utterance, headers


async def _collect(utterance: Utterance, serializer: Serializer) -> list[bytes]:
    return [m for m in await run_whole(utterance, serializer) if isinstance(m, bytes)]


@router.post("/v1/text-to-speech/{voice_id}", dependencies=[RequireApiKey])
async def convert(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """The whole audio file in ``output_format`` (default mp3_44100_128)."""
    utterance, headers = await _open(runtime, voice_id, req, output_format, preset)
    data = b"".join(await _collect(utterance, EncodedAudioSerializer(utterance.format)))
    return Response(data, media_type=utterance.format.media_type, headers=headers)


@router.post("/v1/text-to-speech/{voice_id}/stream", dependencies=[RequireApiKey])
async def stream(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """The audio, chunked as each engine chunk is encoded (MP3 and Opus included)."""
    utterance, headers = await _open(runtime, voice_id, req, output_format, preset)
    return UtteranceResponse(utterance, EncodedAudioSerializer(utterance.format),
                             media_type=utterance.format.media_type, headers=headers)


@router.post("/v1/text-to-speech/{voice_id}/with-timestamps", dependencies=[RequireApiKey])
async def convert_with_timestamps(
    voice_id: str, req: ElevenLabsSpeechRequest, runtime: RuntimeDep,
    output_format: OutputFormatQuery = DEFAULT_HTTP_FORMAT, preset: PresetQuery = "balanced",
) -> Response:
    """``{"audio_base64", "alignment", "normalized_alignment"}`` for the whole utterance."""
    utterance, headers = await _open(runtime, voice_id, req, output_format, preset)
    lines = await _collect(utterance, TimestampsSerializer(utterance.format, req.text))
    audio = b""
    keys = ("characters", "character_start_times_seconds", "character_end_times_seconds")
    alignments: dict[str, dict[str, list[object]]] = {
        name: {key: [] for key in keys} for name in ("alignment", "normalized_alignment")
    }
    for line in lines:
        piece = json.loads(line)
        audio += base64.b64decode(piece["audio_base64"])
        for name, alignment in alignments.items():
            for key, values in piece.get(name, {}).items():
                alignment[key] += values
    body = {"audio_base64": base64.b64encode(audio).decode("ascii"), **alignments}
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
    utterance, headers = await _open(runtime, voice_id, req, output_format, preset)
    headers.pop("X-Audio-Encoding", None)
    return UtteranceResponse(utterance, TimestampsSerializer(utterance.format, req.text),
                             media_type=NDJSON, headers=headers)
