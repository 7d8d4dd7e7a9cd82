"""``POST /v1/audio/speech/stream``: raw audio over chunked HTTP, for clients without sockets.

Everything that can be wrong with the request (text, preset, format, voice id, the voice
itself, a free slot) is checked by ``open_utterance`` before the response starts, so those
are proper 4xx/503 answers with our JSON error body. Once the 200 and the first bytes are
out, an engine failure can only end the stream: the connection is dropped without the final
empty chunk, so an HTTP client sees an incomplete (failed) transfer rather than a short
file that looks complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.api.auth import RequireApiKey
from app.api.deps import RuntimeDep
from app.audio.formats import resolve_format
from app.errors import TTSError
from app.protocol.serializers import RawAudioSerializer, Serializer
from app.protocol.speech import SpeechStreamRequest
from app.sessions.speech_socket import speech_spec
from app.sessions.utterance import Utterance, open_utterance, outcome_of

log = logging.getLogger(__name__)
router = APIRouter()


class UtteranceResponse(StreamingResponse):
    """A chunked response of one utterance's audio, closed however the response ends.

    The body generator closes it too, but a generator that never started (the client left
    before the first chunk) never runs its ``finally``.
    """

    def __init__(
        self, utterance: Utterance, serializer: Serializer | None = None, **kwargs: object
    ) -> None:
        super().__init__(audio_body(utterance, serializer), **kwargs)  # type: ignore[arg-type]
        self.utterance = utterance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.utterance.close()


async def audio_body(
    utterance: Utterance, serializer: Serializer | None = None
) -> AsyncIterator[bytes]:
    """The response body: the utterance's events through ``serializer`` (raw audio bytes
    by default; an incremental MP3/Opus encoder, SSE or NDJSON for other APIs)."""
    serializer = serializer or RawAudioSerializer()
    try:
        async for event in utterance:
            for data in serializer.serialize(event):
                assert isinstance(data, bytes)
                yield data
    except TTSError as exc:
        # After the 200 there is no status to change: log it and let the connection drop.
        log.warning("stream failed after its first byte: %s (%s)", exc.code, exc.message)
        utterance.close(exc.code)
        raise
    except BaseException as exc:
        # HTTP has no cancel message: a cancelled body means the client went away.
        cancelled = isinstance(exc, asyncio.CancelledError | GeneratorExit)
        utterance.close("client_gone" if cancelled else outcome_of(exc))
        raise
    finally:
        utterance.close()


def audio_headers(utterance: Utterance, fmt_name: str) -> dict[str, str]:
    fmt = utterance.format
    return {
        "X-Audio-Format": fmt_name,
        "X-Sample-Rate": str(fmt.sample_rate),
        "X-Audio-Encoding": "mulaw" if fmt.encoding == "mulaw" else "pcm_s16le",
        "X-Channels": "1",
        "X-Voice-Id": utterance.voice.voice_id,
        "X-Builtin-Voice": "true" if utterance.voice.builtin else "false",
        "X-Backend": utterance.runtime.engine.name,
        "Cache-Control": "no-store",
    }


@router.post("/v1/audio/speech/stream", dependencies=[RequireApiKey])
async def speech_stream(req: SpeechStreamRequest, runtime: RuntimeDep) -> StreamingResponse:
    """Raw audio (``format``: pcm_24000 default, pcm_16000 or mulaw_8000) as it is generated.

    Headers say the format, rate and encoding; the body is headerless audio, chunked.
    ``temperature`` and ``top_p`` reach engines that sample (Chatterbox): the seed-003 call.
    """
    fmt = resolve_format("http_stream", req.format, field="format")
    utterance = await open_utterance(runtime, speech_spec(req, fmt, "http_stream"))
    return UtteranceResponse(utterance, media_type=fmt.media_type,
                             headers=audio_headers(utterance, req.format))
