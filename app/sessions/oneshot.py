"""A whole utterance at once, for ``POST /synthesize`` and ``POST /warmup``.

Both are ``open_utterance`` plus gathering: everything that can be wrong with the request
is checked before any work, so a bad request never takes a slot or starts the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.audio import wav_bytes
from app.audio.formats import MULAW, OutputFormat
from app.engines.base import VoiceHandle
from app.protocol import events as ev
from app.runtime import Runtime
from app.sessions.utterance import UtteranceSpec, open_utterance


@dataclass
class BatchResult:
    frames: list[bytes]  # 20 ms frames for mulaw/alaw; one blob otherwise
    format: OutputFormat
    duration_s: float
    done: ev.UtteranceDone
    voice: VoiceHandle


async def synthesize_batch(runtime: Runtime, spec: UtteranceSpec) -> BatchResult:
    """``spec.format`` framed for G.711 (a list of frames), one blob for PCM and WAV."""
    framed = spec.format.encoding != "pcm16"
    utterance = await open_utterance(runtime, UtteranceSpec(**{**vars(spec), "framed": framed}))
    frames: list[bytes] = []
    done: ev.UtteranceDone | None = None
    with utterance:
        async for event in utterance:
            if isinstance(event, ev.Audio):
                frames.append(event.data)
            elif isinstance(event, ev.UtteranceDone):
                done = event
    assert done is not None
    fmt = utterance.format
    if not framed:
        blob = b"".join(frames)
        frames = [wav_bytes(blob, fmt.sample_rate) if fmt.container == "wav" else blob]
    return BatchResult(frames, fmt, utterance.seconds, done, utterance.voice)


WARMUP_TEXT = "Hello, one moment please."


async def warmup(runtime: Runtime, voice_id: str, preset: str) -> float:
    """Prepare ``voice_id`` and run a short generation through the whole chain (ms taken).

    The call webhook calls this while the phone rings, so the first reply of the call
    pays no cold-start cost (voice fetch, conditioning, first-run kernels).
    """
    started = time.perf_counter()
    spec = UtteranceSpec(WARMUP_TEXT, voice_id, preset, MULAW, route="warmup")
    utterance = await open_utterance(runtime, spec)
    with utterance:
        async for _ in utterance:
            pass
    return (time.perf_counter() - started) * 1000.0
