"""A whole utterance at once, for ``POST /synthesize`` (and anything else that batches).

Validation happens before any work: preset, format, text and voice are checked first, so
a bad request never takes a slot or starts the engine.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from app.audio import OutputFormat, get_output_format, wav_bytes
from app.engines.base import VoiceHandle
from app.errors import InvalidRequest
from app.protocol.requests import SynthesizeRequest, check_text
from app.runtime import Runtime
from app.sessions.utterance import UtteranceStats, synthesize_frames
from app.voices.validation import validate_voice_id

BATCH_FORMATS = ("mulaw", "alaw", "wav", "pcm_8000", "pcm_16000", "pcm_24000")


@dataclass
class BatchResult:
    frames: list[bytes]  # 20 ms frames for mulaw/alaw; one blob otherwise
    fmt_name: str
    sample_rate: int
    duration_s: float
    stats: UtteranceStats
    latency: dict[str, float]
    voice: VoiceHandle


def batch_format(name: str) -> tuple[OutputFormat | None, bool]:
    """(format, framed); ``None`` format means WAV at the engine rate."""
    if name == "wav":
        return None, False
    if name not in BATCH_FORMATS:
        raise InvalidRequest(
            f"Unknown output_format: {name:.32}. Valid formats: {', '.join(BATCH_FORMATS)}"
        )
    fmt = get_output_format(name)
    return fmt, fmt.encoding != "pcm16"


async def synthesize_batch(runtime: Runtime, req: SynthesizeRequest) -> BatchResult:
    text = check_text(req.text, runtime.settings.max_text_length)
    params = runtime.params(req.preset, speed=req.speed)
    voice_id = validate_voice_id(req.voice_id)
    engine = runtime.engine
    fmt, framed = batch_format(req.output_format)
    voice = await runtime.voices.get(voice_id)
    pipeline = runtime.pipeline(fmt, framed=framed)
    if fmt is None:
        rate, bytes_per_sample = engine.sample_rate, 2
    else:
        rate, bytes_per_sample = fmt.sample_rate, fmt.bytes_per_sample
    stats = UtteranceStats()
    with runtime.capacity.acquire():
        lang = runtime.normalization_language(params)
        frames = [f async for f in synthesize_frames(engine, voice, text, params, pipeline, stats,
                                                     lang)]
    runtime.observe(params.preset.name, stats.first_frame_ms, stats.total_ms)
    if not framed:
        blob = b"".join(frames)
        duration = len(blob) / bytes_per_sample / rate
        frames = [wav_bytes(blob, rate) if fmt is None else blob]
    else:
        duration = pipeline.samples_out / rate
    return BatchResult(
        frames=frames,
        fmt_name=req.output_format,
        sample_rate=rate,
        duration_s=duration,
        stats=stats,
        latency=stats.latency(pipeline),
        voice=voice,
    )


WARMUP_TEXT = "Hello, one moment please."


async def warmup(runtime: Runtime, voice_id: str, preset: str, *,
                 hold_slot: bool = True) -> float:
    """Prepare ``voice_id`` and run a short generation through the whole chain (ms taken).

    The call webhook calls this while the phone rings, so the first reply of the call
    pays no cold-start cost (voice fetch, conditioning, first-run kernels); its warmups
    run in their own small pool (``app.sessions.warmups``) and take no call slot.
    """
    voice_id = validate_voice_id(voice_id)
    params = runtime.params(preset)
    stats = UtteranceStats()
    voice = await runtime.voices.get(voice_id)
    engine = runtime.engine
    pipeline = runtime.pipeline(get_output_format("mulaw"))
    with runtime.capacity.acquire() if hold_slot else nullcontext():
        async for _ in synthesize_frames(engine, voice, WARMUP_TEXT, params, pipeline, stats):
            pass
    runtime.observe(params.preset.name, stats.first_frame_ms, stats.total_ms)
    return stats.elapsed_ms()
