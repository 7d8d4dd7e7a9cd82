"""A deterministic stand-in engine for load tests, diagnostics and protocol tests.

It renders text as a speech-like signal (voiced harmonic segments per letter, pauses at
spaces and punctuation) and releases it in chunks on a configurable schedule: a delay
before the first chunk and a real-time factor per chunk, which is how a GPU model behaves
from the outside. It never blocks the event loop, so the server's own overhead can be
measured with it. Never the default engine.
"""

from __future__ import annotations

import asyncio
import functools
import time
import zlib
from collections.abc import AsyncGenerator

import numpy as np

from app.config import Settings
from app.engines.base import (
    DEFAULT_VOICE_ID,
    AudioChunk,
    EngineCapabilities,
    SynthesisParams,
    VoiceClip,
    VoiceHandle,
)

SAMPLE_RATE = 24_000
_LETTER_S = 0.065
_SPACE_S = 0.04
_PAUSE_S = 0.18


@functools.lru_cache(maxsize=64)
def _letter(pitch: int, sample_rate: int) -> np.ndarray:
    """One voiced segment: harmonics of f0 shaped by two formant-like bumps."""
    n = int(_LETTER_S * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    f0 = 110.0 + 4.0 * pitch
    sig = np.zeros(n)
    for h in range(2, 14):
        freq = f0 * h
        weight = np.exp(-(((freq - 900.0) / 700.0) ** 2)) + 0.4 * np.exp(
            -(((freq - 2200.0) / 600.0) ** 2)
        )
        sig += weight * np.sin(2 * np.pi * freq * t)
    env = np.sin(np.pi * np.arange(n) / n) ** 2
    out = (0.25 * sig * env).astype(np.float32)
    out.setflags(write=False)
    return out


def render(text: str, sample_rate: int = SAMPLE_RATE, voice_seed: int = 0) -> np.ndarray:
    """The whole utterance for ``text``: same text and voice, same samples.

    Segments come from a small table (24 pitches), so rendering is a concatenation and
    the engine's own cost stays far below the server's, which is what it is there to show.
    """
    space = np.zeros(int(_SPACE_S * sample_rate), np.float32)
    pause = np.zeros(int(_PAUSE_S * sample_rate), np.float32)
    pieces: list[np.ndarray] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            pieces.append(space)
        elif ch in ".,;:!?":
            pieces.append(pause)
        else:
            pieces.append(_letter((ord(ch) * 7 + voice_seed + i) % 24, sample_rate))
    if not pieces:
        return np.zeros(0, np.float32)
    return np.concatenate(pieces)


class SyntheticEngine:
    name = "synthetic"
    sample_rate = SAMPLE_RATE
    device = "cpu"
    capabilities = EngineCapabilities(
        cloning=False,
        streaming="token",
        preset_fields=(),
        notes="Deterministic test signal, not speech. For load tests and diagnostics.",
        loudness_lufs=-12.0,  # benchmarks/loudness.py
    )

    def __init__(self, settings: Settings) -> None:
        self._rtf = settings.synthetic_rtf
        self._first_delay_s = settings.synthetic_first_chunk_ms / 1000.0
        self._chunk_samples = int(settings.synthetic_chunk_ms * SAMPLE_RATE / 1000)
        self.active_generations = 0

    async def load(self) -> None:
        for pitch in range(24):  # fill the segment table so no request pays for it
            _letter(pitch, SAMPLE_RATE)

    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        if clip is None:
            return VoiceHandle(DEFAULT_VOICE_ID, builtin=True)
        # No cloning: the clip was fetched and validated; the built-in voice speaks.
        return VoiceHandle(clip.voice_id, builtin=True)

    async def stream(
        self, text: str, voice: VoiceHandle, params: SynthesisParams
    ) -> AsyncGenerator[AudioChunk, None]:
        self.active_generations += 1
        try:
            audio = render(text, voice_seed=zlib.crc32(voice.voice_id.encode()) % 7)
            # The first chunk is due after the first-chunk delay (which includes making
            # it); each later one after its own duration times the real-time factor.
            due = time.perf_counter() + self._first_delay_s
            for pos in range(0, len(audio), self._chunk_samples):
                piece = audio[pos : pos + self._chunk_samples]
                if pos:
                    due += self._rtf * len(piece) / SAMPLE_RATE
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield AudioChunk(piece)
        finally:
            self.active_generations -= 1

    async def aclose(self) -> None:
        return None
