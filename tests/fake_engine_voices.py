"""A fake engine for the voices layer: counts ``prepare_voice`` calls, does no inference.

It implements the ``Engine`` protocol. ``prepare_voice`` can be slowed down (to widen
races in single-flight tests), reports how many run at once, and returns handles whose
``data`` reports ``nbytes`` so byte-bounded caches can be tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from app.engines.base import (
    DEFAULT_VOICE_ID,
    AudioChunk,
    EngineCapabilities,
    SynthesisParams,
    VoiceClip,
    VoiceHandle,
)


@dataclass(frozen=True)
class FakeConditioning:
    clip_seconds: float | None
    sample_rate: int
    nbytes: int


class FakeVoiceEngine:
    name = "fake-voices"
    device = "cpu"

    def __init__(
        self,
        *,
        sample_rate: int = 24_000,
        cloning: bool = True,
        prepare_delay_s: float = 0.0,
        handle_nbytes: int = 0,
    ) -> None:
        self.sample_rate = sample_rate
        self.capabilities = EngineCapabilities(cloning=cloning, streaming="sentence")
        self.prepare_delay_s = prepare_delay_s
        self.handle_nbytes = handle_nbytes
        self.prepared: list[str | None] = []  # voice id per call, None for the built-in voice
        self.clips: list[VoiceClip] = []
        self.running = 0
        self.max_running = 0

    async def load(self) -> None:
        return None

    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.prepare_delay_s:
                await asyncio.sleep(self.prepare_delay_s)
        finally:
            self.running -= 1
        self.prepared.append(None if clip is None else clip.voice_id)
        if clip is None:
            return VoiceHandle(DEFAULT_VOICE_ID, builtin=True)
        if self.capabilities.cloning:  # like Piper, a non-cloning engine keeps nothing
            self.clips.append(clip)
        data = FakeConditioning(clip.duration_s, clip.sample_rate, self.handle_nbytes)
        return VoiceHandle(clip.voice_id, builtin=not self.capabilities.cloning, data=data)

    async def stream(
        self, text: str, voice: VoiceHandle, params: SynthesisParams
    ) -> AsyncIterator[AudioChunk]:
        yield AudioChunk(np.zeros(self.sample_rate // 10, dtype=np.float32))

    async def aclose(self) -> None:
        return None
