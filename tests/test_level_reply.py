"""One loudness over a reply: clauses of different kinds on Piper and on the synthetic engine.

Each clause runs through its own audio chain (as a streaming session does) with the level
stage seeded by the engine's calibrated loudness and one ``LoudnessTracker`` for the reply.
What the caller gets (mu-law at 8 kHz, decoded) is measured with pyloudnorm.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pyloudnorm as pyln
import pytest

from app.audio.codecs import audioop
from app.audio.formats import get_output_format
from app.audio.level import LevelStage, LoudnessTracker, level_settings
from app.audio.pipeline import AudioPipeline
from app.engines.base import Engine, SynthesisParams
from app.engines.piper import PiperEngine, installed
from app.engines.synthetic import SyntheticEngine
from app.presets import get_preset
from app.text.normalize import normalize
from tests.servers import live_server, make_settings

REPLY = [
    "Okay.",
    "That's wonderful news!",
    "Would you like me to book the appointment on Tuesday, Nov. 3rd at 3:30 PM, or would "
    "Thursday morning at 9am work better for you and your family?",
    "Great.",
]
TARGET = -20.0
MULAW_MAX = 32124


async def _reply(engine: Engine, level: bool) -> list[np.ndarray]:
    await engine.load()
    voice = await engine.prepare_voice(None)
    params = SynthesisParams(preset=get_preset("balanced"))
    tracker = LoudnessTracker(engine.capabilities.loudness_lufs or -23.0)
    clauses = []
    for text in REPLY:
        settings = level_settings(engine.capabilities.streaming, TARGET, -1.0)
        stage = LevelStage(engine.sample_rate, settings, tracker) if level else None
        pipe = AudioPipeline.for_format(engine.sample_rate, get_output_format("mulaw"),
                                        level=stage)
        frames: list[bytes] = []
        async for chunk in engine.stream(normalize(text).spoken, voice, params):
            frames += pipe.push(chunk)
        frames += pipe.flush()
        pcm = np.frombuffer(audioop.ulaw2lin(b"".join(frames), 2), dtype=np.int16)
        clauses.append(pcm)
    await engine.aclose()
    return clauses


def _engines() -> list[str]:
    return ["synthetic", "piper"] if installed() else ["synthetic"]


def _make(name: str) -> Engine:
    settings = make_settings(tts_engine=name, synthetic_rtf=0.0)
    return SyntheticEngine(settings) if name == "synthetic" else PiperEngine(settings)


@pytest.mark.parametrize("name", _engines())
def test_reply_is_at_the_target_with_little_spread_and_no_clipping(name: str) -> None:
    clauses = asyncio.run(_reply(_make(name), level=True))
    meter = pyln.Meter(8000)
    loudness = [meter.integrated_loudness(c.astype(np.float64) / 32768) for c in clauses]
    whole = meter.integrated_loudness(np.concatenate(clauses).astype(np.float64) / 32768)
    assert abs(whole - TARGET) <= 2.0, (whole, loudness)
    assert max(loudness) - min(loudness) <= 3.0, loudness
    for c in clauses:
        assert np.sum(np.abs(c.astype(np.int32)) >= MULAW_MAX) == 0


def test_without_the_level_stage_the_synthetic_engine_is_far_off_target() -> None:
    # The property above is the stage's doing: the raw engine is ~8 LU too loud.
    clauses = asyncio.run(_reply(_make("synthetic"), level=False))
    meter = pyln.Meter(8000)
    whole = meter.integrated_loudness(np.concatenate(clauses).astype(np.float64) / 32768)
    assert whole - TARGET > 4.0



def test_engine_loudness_setting_replaces_the_engines_calibration() -> None:
    """ENGINE_LOUDNESS_LUFS seeds every reply's tracker, so an engine with no calibration
    yet (Chatterbox) gets its measured level without a code change."""
    with live_server(make_settings()) as s:
        declared = s.runtime.engine.capabilities.loudness_lufs
        assert s.runtime.loudness_tracker().lufs == pytest.approx(declared)
    with live_server(make_settings(engine_loudness_lufs=-31.5)) as s:
        assert s.runtime.loudness_tracker().lufs == pytest.approx(-31.5)
