"""One utterance's audio in a third-party format, chunk by chunk: chain, then codec.

``SpeechJob.chunks()`` yields the chain's output per engine chunk (PCM16 at the codec's rate
for MP3 and Opus); the format's encoder stage (``app.audio.compressed``) turns each into
wire bytes at once, so an MP3 or Ogg stream starts while the engine is still synthesizing.
Each piece carries the seconds of audio it was made from, for alignment and SSE pacing;
the codec's tail comes last with 0 seconds.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from app.audio.compressed import StreamFormat
from app.sessions.speech import SpeechJob


@dataclass(frozen=True)
class EncodedPiece:
    data: bytes  # wire bytes (may be empty: a codec can hold a short chunk back)
    seconds: float  # audio the piece was encoded from
    last: bool = False  # the codec's tail: nothing follows


async def encoded_pieces(
    job: SpeechJob, stream: StreamFormat
) -> AsyncGenerator[EncodedPiece, None]:
    encoder = stream.encoder()
    async with aclosing(job.chunks()) as chunks:
        async for pcm in chunks:
            yield EncodedPiece(encoder.push(pcm), stream.seconds(len(pcm)))
    yield EncodedPiece(encoder.flush(), 0.0, last=True)


async def encoded_bytes(job: SpeechJob, stream: StreamFormat) -> AsyncGenerator[bytes, None]:
    """Just the wire bytes, empty pieces skipped (a streaming HTTP body)."""
    async with aclosing(encoded_pieces(job, stream)) as pieces:
        async for piece in pieces:
            if piece.data:
                yield piece.data
