"""The level stage never holds a token engine's first audio for a loudness measurement.

Chatterbox's low-latency presets give 40-120 ms in their first chunk once the look-ahead
decoder and the crossfader have held back their context: less than one of the stage's
200 ms loudness blocks. A stage that waited for a whole block before its first gain held
the first audio until the engine's second chunk (a chunk-time of token steps and a decode
later); its gain would have been the same, since a clause's own measurement only counts
from its first 400 ms gating block.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.audio.formats import get_output_format
from app.audio.level import LevelSettings, LevelStage, LoudnessTracker, level_settings
from app.audio.pipeline import AudioPipeline
from app.engines.base import SynthesisParams
from app.engines.synthetic import SyntheticEngine
from app.presets import get_preset
from tests.servers import make_settings

RATE = 24_000


def _speechlike(seed: int, seconds: float, level: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    syllables = np.sin(2 * np.pi * 3.1 * t) ** 2  # about 6 syllables a second
    voiced = np.sin(2 * np.pi * 140 * t) + 0.3 * rng.standard_normal(len(t))
    return (level * syllables * voiced).astype(np.float32)


def _run(settings: LevelSettings, x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    stage = LevelStage(RATE, settings, LoudnessTracker(-23.0))
    outs, at = [], 0
    for n in sizes:
        outs.append(stage.push(x[at : at + n]))
        at += n
    outs.append(stage.push(x[at:]))
    outs.append(stage.flush())
    return outs


@pytest.mark.parametrize("first_ms", [40, 120, 180])
@pytest.mark.parametrize("level", [0.02, 0.3, 1.5])  # quiet, typical, over full scale
def test_a_first_chunk_shorter_than_a_block_comes_out_at_once_with_the_same_gain(
    first_ms: int, level: float
) -> None:
    x = _speechlike(first_ms, 3.0, level)
    sizes = [RATE * first_ms // 1000] + [RATE * 480 // 1000] * 4
    now = _run(level_settings("token", -20.0, -1.0), x, sizes)
    waited = _run(LevelSettings(first_gain_after_ms=200), x, sizes)
    # Out of the first push: all of it but the limiter's look-ahead and true-peak context
    # (5 ms + 3 sub-blocks of 1 ms), where a 200 ms wait gave nothing.
    assert len(waited[0]) == 0
    assert len(now[0]) >= len(x[: sizes[0]]) - RATE * 9 // 1000
    # And the same samples in all: the wait bought no measurement.
    assert np.array_equal(np.concatenate(now), np.concatenate(waited))


def test_a_sentence_engine_still_measures_its_clause_before_the_first_gain() -> None:
    settings = level_settings("sentence", -20.0, -1.0)
    assert settings.first_gain_after_ms == 2000
    x = _speechlike(1, 1.0, 0.3)
    outs = _run(settings, x, [RATE // 2])
    assert len(outs[0]) == 0  # half a second of a clause: still measuring


def test_the_first_mulaw_frames_leave_with_the_engines_first_chunk() -> None:
    """Through the whole chain: a token engine giving 100 ms chunks."""
    engine = SyntheticEngine(make_settings(tts_engine="synthetic", synthetic_rtf=0.0,
                                           synthetic_chunk_ms=100))
    assert engine.capabilities.streaming == "token"

    async def first_frames() -> list[bytes]:
        await engine.load()
        voice = await engine.prepare_voice(None)
        stage = LevelStage(engine.sample_rate,
                           level_settings("token", -20.0, -1.0), LoudnessTracker(-23.0))
        pipe = AudioPipeline.for_format(engine.sample_rate, get_output_format("mulaw"),
                                        max_overlap=engine.capabilities.max_overlap_samples,
                                        level=stage)
        params = SynthesisParams(preset=get_preset("balanced"))
        async for chunk in engine.stream("Okay, one moment please.", voice, params):
            return pipe.push(chunk)
        return []

    frames = asyncio.run(first_frames())
    assert len(frames) >= 1  # 20 ms frames out of the first 100 ms chunk
