"""The level stage: loudness to the target, true peak under the ceiling, streaming-safe.

pyloudnorm (BS.1770) is the meter; the true peak is measured by 4x oversampling with
scipy's ``resample_poly``, independently of the stage's own estimate.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm as pyln
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from app.audio.codecs import audioop
from app.audio.level import LevelSettings, LevelStage, LoudnessTracker, telephone_loudness
from app.audio.pipeline import AudioPipeline
from app.engines.base import AudioChunk
from app.engines.synthetic import render

RATE = 24_000
MULAW_MAX = 32124  # the largest magnitude a mu-law byte decodes to: a clipped sample


def _speech(seconds: float, lufs: float, seed: int = 0) -> np.ndarray:
    """Speech-like test signal (the synthetic engine's) at a given loudness."""
    words = ["hello", "there", "your", "order", "ships", "today", "okay", "great", "thanks"]
    rng = np.random.default_rng(seed)
    parts, n = [], 0
    while n < seconds * RATE:
        text = " ".join(rng.choice(words, 6)) + rng.choice([".", "!", "?", ","]) + " "
        parts.append(render(text, RATE, seed))
        n += len(parts[-1])
    x = np.concatenate(parts)[: int(seconds * RATE)].astype(np.float64)
    now = pyln.Meter(RATE).integrated_loudness(x)
    return (x * 10 ** ((lufs - now) / 20)).astype(np.float32)


def _run(stage: LevelStage, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)] if sizes else len(x)
        out.append(stage.push(x[i : i + n]))
        i, k = i + n, k + 1
    out.append(stage.flush())
    return np.concatenate(out)


def _true_peak_db(y: np.ndarray) -> float:
    return float(20 * np.log10(np.abs(resample_poly(y.astype(np.float64), 4, 1)).max()))


def _loud_signals() -> dict[str, np.ndarray]:
    t = np.arange(2 * RATE) / RATE
    return {
        "speech+12dB": _speech(3.0, -8.0),
        "full-scale 9 kHz": np.sin(2 * np.pi * 9000.7 * t).astype(np.float32),
        "square wave": np.sign(np.sin(2 * np.pi * 440 * t)).astype(np.float32),
    }


# Clipped white noise is in the chunk-invariance test only: its inter-sample peaks near
# Nyquist are where interpolators disagree (ours reads ~1 dB under resample_poly's there).
SIGNALS = {
    "quiet speech": _speech(2.0, -35.0, 3),
    "clipped noise": np.clip(np.random.default_rng(1).standard_normal(RATE) * 2, -1, 1).astype(
        np.float32
    ),
    **_loud_signals(),
}


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(SIGNALS)),
    sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=8),
)
def test_output_does_not_depend_on_chunk_boundaries(name, sizes):
    x = SIGNALS[name]
    whole = _run(LevelStage(RATE, prior_lufs=-23), x, [])
    pieces = _run(LevelStage(RATE, prior_lufs=-23), x, sizes)
    assert len(whole) == len(pieces) == len(x)  # nothing lost, nothing added
    assert np.array_equal(whole, pieces)


@pytest.mark.parametrize("sizes", [[480, 100_000], [7, 30_000, 1, 960], [24_000, 13, 24_000]])
def test_pushes_far_larger_than_the_last_do_not_change_the_output(sizes):
    # A sentence engine's whole clause after a token engine's small chunks: the input buffer
    # grows (and is compacted) mid-stream with samples still held for the look-ahead.
    x = SIGNALS["speech+12dB"]
    whole = _run(LevelStage(RATE, prior_lufs=-23), x, [])
    assert np.array_equal(_run(LevelStage(RATE, prior_lufs=-23), x, sizes), whole)


@pytest.mark.parametrize("name", sorted(_loud_signals()))
@pytest.mark.parametrize("ceiling", [-1.0, -3.0])
def test_true_peak_stays_under_the_ceiling(name, ceiling):
    x = SIGNALS[name]
    stage = LevelStage(RATE, LevelSettings(true_peak_dbtp=ceiling), prior_lufs=-23)
    y = _run(stage, x, [480])
    assert _true_peak_db(y) <= ceiling
    assert _true_peak_db(x) > ceiling  # the input did exceed it


@pytest.mark.parametrize("source_lufs", [-34.0, -26.0, -12.0])
def test_speech_is_brought_to_the_target(source_lufs):
    # The prior is wrong on purpose (-23, up to 11 LU off): the running measurement gets there.
    x = _speech(12.0, source_lufs, seed=int(-source_lufs))
    stage = LevelStage(RATE, LevelSettings(target_lufs=-20.0), prior_lufs=-23)
    y = _run(stage, x, [4800])
    assert abs(pyln.Meter(RATE).integrated_loudness(y.astype(np.float64)) - (-20.0)) <= 2.0


def test_a_calibrated_prior_gets_a_short_clause_right_at_once():
    x = _speech(0.8, -30.0, seed=9)
    stage = LevelStage(RATE, prior_lufs=telephone_loudness(_speech(6.0, -30.0, 5), RATE))
    y = _run(stage, x, [2400])
    assert abs(pyln.Meter(RATE).integrated_loudness(y.astype(np.float64)) + 20.0) <= 1.5


def test_gain_moves_smoothly_across_chunk_seams_and_level_changes():
    # A steady tone that jumps by 20 dB halfway, pushed in odd chunks: the gain (output over
    # input) must never jump from one sample to the next.
    t = np.arange(6 * RATE) / RATE
    amp = np.where(t < 3, 0.01, 0.1)
    x = (amp * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    y = _run(LevelStage(RATE, prior_lufs=-23), x, [1234, 777, 4321])
    big = np.nonzero(np.abs(x) > 0.5 * amp)[0]  # where the ratio is well defined
    gain_db = 20 * np.log10(y[big] / x[big])
    per_sample = np.abs(np.diff(gain_db)) / np.diff(big)
    assert per_sample.max() < 0.05  # dB per sample (a seam click would be >> 1)


def test_tracker_carries_the_estimate_from_clause_to_clause():
    # With no measurement at the start of a clause, its first gain comes from the reply's
    # tracker: after a quiet clause, the next one starts boosted instead of at the prior.
    tracker = LoudnessTracker(prior_lufs=-23)
    causal = LevelSettings(first_gain_after_ms=0)
    _run(LevelStage(RATE, causal, tracker), _speech(4.0, -32.0, 1), [4800])
    assert tracker.lufs < -29  # it learned the quieter voice
    second = LevelStage(RATE, causal, tracker)
    assert second._knots_db[0] == pytest.approx(-20 - tracker.lufs)
    assert second._knots_db[0] > 9


def test_first_gain_waits_for_its_measurement_but_no_longer():
    # The first 400 ms decide the first gain: nothing comes out before them, everything
    # after them comes out as it arrives (less the limiter's few ms of look-ahead).
    stage = LevelStage(RATE, LevelSettings(first_gain_after_ms=400), prior_lufs=-23)
    x = _speech(1.0, -30.0, 4)
    assert len(stage.push(x[: RATE // 5])) == 0
    out = stage.push(x[RATE // 5 : RATE // 2])
    assert RATE // 2 - len(out) <= RATE // 100


def test_a_short_clause_measured_whole_gets_its_own_gain():
    # A sentence engine hands a short clause over at once; measured whole it is brought to
    # the target whatever the reply's estimate says.
    tracker = LoudnessTracker(prior_lufs=-35)
    x = _speech(0.6, -24.0, 6)
    y = _run(LevelStage(RATE, LevelSettings(first_gain_after_ms=2000), tracker), x, [])
    assert abs(pyln.Meter(RATE).integrated_loudness(y.astype(np.float64)) + 20.0) <= 1.0


def test_push_after_flush_is_an_error():
    stage = LevelStage(RATE)
    stage.flush()
    with pytest.raises(RuntimeError):
        stage.push(np.zeros(10, np.float32))


def _mulaw_chain(x: np.ndarray, level: LevelStage | None) -> np.ndarray:
    pipe = AudioPipeline(RATE, "mulaw", 8000, level=level)
    frames = []
    for i in range(0, len(x), 4800):
        frames += pipe.push(AudioChunk(x[i : i + 4800]))
    frames += pipe.flush()
    pcm = audioop.ulaw2lin(b"".join(frames), 2)
    return np.frombuffer(pcm, dtype=np.int16)


def test_no_clipped_mulaw_samples_through_the_whole_chain():
    loud = _speech(4.0, -6.0, 7)  # peaks far above full scale after resampling
    without = _mulaw_chain(loud, None)
    assert np.sum(np.abs(without.astype(np.int32)) >= MULAW_MAX) > 0  # it would clip
    with_level = _mulaw_chain(loud, LevelStage(RATE, prior_lufs=-23))
    assert np.sum(np.abs(with_level.astype(np.int32)) >= MULAW_MAX) == 0
    # Same number of frames: the stage holds audio back, it never adds or drops any.
    assert len(with_level) == len(without)
