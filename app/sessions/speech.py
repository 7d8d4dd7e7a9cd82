"""One utterance for the HTTP adapters (``/v1/audio/speech``, ``/v1/audio/speech/stream``).

``open_speech`` does everything that can fail on the request before a response exists: text,
preset, voice id, the voice itself (fetch and prepare) and a capacity slot. What it returns
holds that slot; ``SpeechJob.chunks()`` runs the one streaming loop (``synthesize_frames``)
with an unframed pipeline, so each engine chunk comes out as soon as it has passed the audio
chain, and ``collect()`` gathers the whole utterance for formats that need it all.
``release()`` is idempotent: the route calls it when its response is over, whatever happened.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

from app.audio import OutputFormat
from app.engines.base import SynthesisParams, VoiceHandle
from app.protocol.requests import check_text
from app.runtime import Runtime
from app.sessions.capacity import Slot
from app.sessions.utterance import UtteranceStats, synthesize_frames
from app.voices.validation import validate_voice_id


@dataclass
class SpeechJob:
    runtime: Runtime
    voice: VoiceHandle
    text: str
    params: SynthesisParams
    fmt: OutputFormat
    slot: Slot
    stats: UtteranceStats = field(default_factory=UtteranceStats)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """Encoded audio (no framing, no header) as each engine chunk passes the chain."""
        engine = self.runtime.engine
        pipeline = self.runtime.pipeline(self.fmt, framed=False)
        try:
            frames = synthesize_frames(
                engine, self.voice, self.text, self.params, pipeline, self.stats,
                self.runtime.normalization_language(self.params),
            )
            async with aclosing(frames):
                async for data in frames:
                    yield data
        finally:
            self.release()

    async def collect(self) -> bytes:
        """The whole utterance in this job's format (the slot is released at the end)."""
        parts: list[bytes] = []
        async with aclosing(self.chunks()) as chunks:
            async for data in chunks:
                parts.append(data)
        return b"".join(parts)

    def release(self) -> None:
        self.slot.release()


async def open_speech(
    runtime: Runtime,
    *,
    text: str,
    voice_id: str,
    preset: str | None,
    fmt: OutputFormat,
    speed: float = 1.0,
    temperature: float | None = None,
    **params_extra: Any,
) -> SpeechJob:
    """Validate, fetch the voice and take a slot; raises the typed errors before any byte.

    ``temperature`` overrides the preset's (engines that sample use it); ``params_extra``:
    further ``SynthesisParams`` fields a route was given (seed, language, extra).
    """
    text = check_text(text, runtime.settings.max_text_length)
    params = runtime.params(preset, speed=speed, **params_extra)
    if temperature is not None:
        params = replace(params, preset=replace(params.preset, temperature=temperature))
    voice_id = validate_voice_id(voice_id)
    voice = await runtime.voices.get(voice_id)
    slot = runtime.capacity.acquire()
    return SpeechJob(runtime, voice, text, params, fmt, slot)
