"""One utterance: engine chunks through the audio pipeline, out as encoded frames.

This is the only streaming loop in the service; every endpoint consumes it. Frames are
yielded as soon as the engine's chunk has gone through the pipeline. Closing the iterator
(a cancel, a disconnect) closes the engine stream, which stops generation.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

from app.audio import AudioPipeline
from app.engines.base import Engine, SynthesisParams, VoiceHandle
from app.errors import EngineError, TTSError
from app.text.normalize import normalize


@dataclass
class UtteranceStats:
    started: float = field(default_factory=time.perf_counter)
    engine_first_chunk_ms: float | None = None
    first_frame_ms: float | None = None
    total_ms: float = 0.0
    engine_wait_ms: float = 0.0
    engine_chunks: int = 0
    frames: int = 0

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def latency(self, pipeline: AudioPipeline) -> dict[str, float]:
        out = {
            "engine_first_chunk_ms": round(self.engine_first_chunk_ms or 0.0, 2),
            "first_frame_ms": round(self.first_frame_ms or 0.0, 2),
            "engine_ms": round(self.engine_wait_ms, 2),
        }
        out.update({k: round(v, 3) for k, v in pipeline.timings.items()})
        return out


async def synthesize_frames(
    engine: Engine,
    voice: VoiceHandle,
    text: str,
    params: SynthesisParams,
    pipeline: AudioPipeline,
    stats: UtteranceStats,
    normalize_language: str | None = None,
) -> AsyncGenerator[bytes, None]:
    """Encoded frames for ``text``; engine failures surface as ``EngineError``.

    With ``normalize_language`` the engine reads the clause's spoken form
    (``app.text.normalize``: numbers, money, dates... as a phone agent says them); what the
    session reports back to the client stays the text as sent.
    """
    if normalize_language is not None:
        text = normalize(text, normalize_language).spoken
    try:
        async with aclosing(engine.stream(text, voice, params)) as chunks:
            waited_from = time.perf_counter()
            async for chunk in chunks:
                now = time.perf_counter()
                stats.engine_wait_ms += (now - waited_from) * 1000.0
                if stats.engine_first_chunk_ms is None:
                    stats.engine_first_chunk_ms = (now - stats.started) * 1000.0
                stats.engine_chunks += 1
                for frame in pipeline.push(chunk):
                    if stats.first_frame_ms is None:
                        stats.first_frame_ms = stats.elapsed_ms()
                    stats.frames += 1
                    yield frame
                waited_from = time.perf_counter()
    except TTSError:
        raise
    except Exception as exc:
        raise EngineError(f"Synthesis failed: {type(exc).__name__}") from exc
    for frame in pipeline.flush():
        if stats.first_frame_ms is None:
            stats.first_frame_ms = stats.elapsed_ms()
        stats.frames += 1
        yield frame
    stats.total_ms = stats.elapsed_ms()
