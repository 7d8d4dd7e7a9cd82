"""``POST /v1/audio/speech/stream``: raw audio over chunked HTTP, for clients without sockets.

Everything that can be wrong with the request (text, preset, format, voice id, the voice
itself, a free slot) is checked before the response starts, so those are proper 4xx/503
answers with our JSON error body. Once the 200 and the first bytes are out, an engine failure
can only end the stream: the connection is dropped without the final empty chunk, so an HTTP
client sees an incomplete (failed) transfer rather than a short file that looks complete.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.api.auth import RequireApiKey
from app.errors import TTSError
from app.protocol.speech import SpeechStreamRequest, stream_format
from app.runtime import RuntimeDep
from app.sessions.speech import SpeechJob, open_speech

log = logging.getLogger(__name__)
router = APIRouter()


class JobStreamingResponse(StreamingResponse):
    """A streaming response that gives the job's slot back however the response ends.

    The body generator releases it too, but a generator that never started (the client left
    before the first chunk) never runs its ``finally``.
    """

    def __init__(self, job: SpeechJob, content: AsyncIterator[bytes], **kwargs: object) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self.job = job

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.release()


async def logged(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A response body whose failure after the 200 is logged, then drops the connection."""
    try:
        async for data in body:
            yield data
    except TTSError as exc:
        # After the 200 there is no status to change: log it and let the connection drop.
        log.warning("stream failed after its first byte: %s (%s)", exc.code, exc.message)
        raise


def stream_body(job: SpeechJob) -> AsyncIterator[bytes]:
    return logged(job.chunks())


def audio_headers(job: SpeechJob, fmt_name: str) -> dict[str, str]:
    return {
        "X-Audio-Format": fmt_name,
        "X-Sample-Rate": str(job.fmt.sample_rate),
        "X-Audio-Encoding": "mulaw" if job.fmt.encoding == "mulaw" else "pcm_s16le",
        "X-Channels": "1",
        "X-Voice-Id": job.voice.voice_id,
        "X-Builtin-Voice": "true" if job.voice.builtin else "false",
        "X-Backend": job.runtime.engine.name,
        "Cache-Control": "no-store",
    }


@router.post("/v1/audio/speech/stream", dependencies=[RequireApiKey])
async def speech_stream(req: SpeechStreamRequest, runtime: RuntimeDep) -> StreamingResponse:
    """Raw audio (``format``: pcm_24000 default, pcm_16000 or mulaw_8000) as it is generated.

    Headers say the format, rate and encoding; the body is headerless audio, chunked.
    ``temperature`` and ``top_p`` reach engines that sample (Chatterbox).
    """
    fmt, media_type = stream_format(req.format)
    job = await open_speech(
        runtime, text=req.text, voice_id=req.voice_id, preset=req.preset, fmt=fmt,
        speed=req.speed, **req.sampling(),
    )
    return JobStreamingResponse(
        job, stream_body(job), media_type=media_type, headers=audio_headers(job, req.format)
    )
