"""``POST /v1/audio/speech``: OpenAI's speech API, so OpenAI TTS clients need only a base URL.

``pcm`` (24 kHz), ``mp3`` (24 kHz, 64 kbit/s, LAME) and ``opus`` (Ogg, 32 kbit/s) stream
chunk by chunk as the engine produces audio (``EncodedAudioSerializer``), so the first bytes
leave before synthesis ends; ``wav`` and ``flac`` are whole files encoded once synthesis
ends (``FileSerializer``; offered where the process can write them, ``app.audio.formats``).
``stream_format: "sse"`` (what LiveKit's ``openai.TTS`` asks for with every model but
tts-1/tts-1-hd) sends the same bytes as ``speech.audio.delta`` events
(``app.protocol.openai_sse``). ``voice`` may be one of OpenAI's names: ``VOICE_ALIASES``
maps them to our voices (``alloy=alice``), and an unmapped one means ``default``.

Every error on this route, validation and authentication included, uses OpenAI's error
envelope with our codes (``app.api.error_routes``; counted in the metrics like every other),
so OpenAI clients surface the message instead of a parse failure.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.auth import RequireApiKey
from app.api.deps import RuntimeDep
from app.api.error_routes import shaped_error_route
from app.api.http_stream import UtteranceResponse, audio_headers
from app.audio.formats import resolve_format
from app.errors import InvalidRequest
from app.protocol.encoded import EncodedAudioSerializer
from app.protocol.openai import OpenAISpeechRequest, openai_error
from app.protocol.openai_sse import MEDIA_TYPE as SSE_MEDIA_TYPE
from app.protocol.openai_sse import OpenAISseSerializer
from app.protocol.serializers import FileSerializer, Serializer
from app.sessions.oneshot import run_whole
from app.sessions.utterance import UtteranceSpec, open_utterance

router = APIRouter(route_class=shaped_error_route(openai_error))


@router.post("/v1/audio/speech", dependencies=[RequireApiKey])
async def openai_speech(req: OpenAISpeechRequest, runtime: RuntimeDep) -> Response:
    """OpenAI-compatible speech: pcm, mp3 and opus stream as they are encoded; wav and flac
    come whole at the end; ``stream_format="sse"`` wraps either in delta events."""
    fmt = resolve_format("openai", req.response_format, field="response_format")
    if req.stream_format not in ("audio", "sse"):
        raise InvalidRequest("Unsupported stream_format: 'audio' or 'sse'")
    voice_id = req.voice_id(runtime.settings.voice_alias_map)
    spec = UtteranceSpec(req.input, voice_id, req.preset, fmt, framed=False,
                         speed=req.speed, language=req.language, normalize=req.normalize,
                         route="openai")
    utterance = await open_utterance(runtime, spec)
    headers = audio_headers(utterance, req.response_format)
    # Echoed for the client's logs; a header carries printable ASCII only.
    headers["X-Model"] = "".join(c for c in req.model[:100] if " " <= c <= "~")
    if fmt.container != "raw":
        del headers["X-Audio-Encoding"]
    streamed = fmt.container == "raw" or fmt.compressed is not None
    if streamed or req.stream_format == "sse":
        audio: Serializer = EncodedAudioSerializer(fmt) if streamed else FileSerializer(fmt)
        if req.stream_format == "sse":
            return UtteranceResponse(utterance, OpenAISseSerializer(audio),
                                     media_type=SSE_MEDIA_TYPE, headers=headers)
        return UtteranceResponse(utterance, audio, media_type=fmt.media_type, headers=headers)
    body = await run_whole(utterance, FileSerializer(fmt), offload_final=True)
    return Response(body[-1], media_type=fmt.media_type, headers=headers)
