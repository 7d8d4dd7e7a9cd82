"""The level stage's shortcuts do not change what it outputs.

The stage hands the limiter only the sub-blocks whose samples, times the largest loudness
gain around them, come near the ceiling, and applies its gain from a curve computed once
per block (two blocks at a time); both must give, to the bit, what evaluating every
sub-block and every sample would. The pipeline benchmark's baseline mode runs another
revision's stage beside today's.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import app.audio.level
from app.audio.level import LevelSettings, LevelStage
from app.engines.synthetic import render

RATES = [22_050, 24_000, 48_000]
SETTINGS = [LevelSettings(), LevelSettings(true_peak_dbtp=-3.0, first_gain_after_ms=0)]


class Counted(LevelStage):
    """The stage, counting the sub-blocks it hands the limiter and the needs found."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handed_over = self.needs = 0
        limiter = self._limiter
        add_needs = limiter.add_needs

        def counting(x, first, subs, gain):
            limiter.add_needs = add_needs  # a long range comes back here in batches
            before = len(limiter.need_at)
            add_needs(x, first, subs, gain)
            self.handed_over += len(subs)
            self.needs += len(limiter.need_at) - before
            limiter.add_needs = counting

        limiter.add_needs = counting


class EveryBlockToTheLimiter(Counted):
    """The reference: every range goes to the limiter whole, every sub-block with a sample
    in it (a candidate level of zero), however far under the ceiling it stays."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._candidate = 0.0


def _speech(rate: int, seconds: float, peak: float) -> np.ndarray:
    parts, n = [], 0
    while n < seconds * rate:
        parts.append(render("your order ships today, thanks! okay? great. ", rate, 3))
        n += len(parts[-1])
    x = np.concatenate(parts)[: int(seconds * rate)].astype(np.float64)
    return (x * peak / np.abs(x).max()).astype(np.float32)


def _near_the_ceiling(rate: int) -> dict[str, np.ndarray]:
    t = np.arange(int(1.5 * rate)) / rate
    rng = np.random.default_rng(rate)
    return {
        "speech": _speech(rate, 1.5, 0.6),
        "loud speech": _speech(rate, 1.5, 2.0),
        "full-scale near Nyquist": np.sin(2 * np.pi * 0.37 * rate * t).astype(np.float32),
        "clipped noise": np.clip(rng.standard_normal(len(t)) * 2, -1, 1).astype(np.float32),
        "tone at the ceiling": (0.8 * np.sin(2 * np.pi * 2000.3 * t)).astype(np.float32),
    }


def _run(stage: LevelStage, x: np.ndarray, size: int) -> np.ndarray:
    out = [stage.push(x[i : i + size]) for i in range(0, len(x), size)]
    return np.concatenate([*out, stage.flush()])


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("chunk_ms", [40, 960])
def test_only_candidates_go_to_the_limiter_and_the_output_is_the_same(rate, chunk_ms):
    size = rate * chunk_ms // 1000
    for name, x in _near_the_ceiling(rate).items():
        needs = 0
        for settings in SETTINGS:
            reference = EveryBlockToTheLimiter(rate, settings, prior_lufs=-23)
            stage = Counted(rate, settings, prior_lufs=-23)
            assert np.array_equal(_run(stage, x, size), _run(reference, x, size)), name
            assert stage.needs == reference.needs, name
            needs += stage.needs
            if "speech" in name:  # the shortcut is taken: far fewer sub-blocks are looked at
                assert stage.handed_over < reference.handed_over / 4, name
        assert needs > 0, name  # it does come near the ceiling


@pytest.mark.parametrize("sizes", [[960], [4800], [4799, 4801], [23_040], [9599, 1, 9601]])
def test_pushes_across_block_edges_give_the_one_piece_output(sizes):
    # Blocks are 200 ms (4800 samples at 24 kHz): these pushes end on, just before, just
    # after and several blocks past a block edge, where the two-block gain curve is
    # shifted, extended or bypassed.
    rate = 24_000
    x = _near_the_ceiling(rate)["loud speech"]
    whole = _run(LevelStage(rate, prior_lufs=-23), x, len(x))
    out, i, k = [], 0, 0
    stage = LevelStage(rate, prior_lufs=-23)
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(stage.push(x[i : i + n]))
        i, k = i + n, k + 1
    assert np.array_equal(np.concatenate([*out, stage.flush()]), whole)


def test_the_benchmark_runs_another_revision_beside_today(monkeypatch):
    # Loaded here, not at collection: the benchmark pins OMP_NUM_THREADS for its process.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", ""))
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("pipeline_benchmark", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    baseline = bench.baseline_level_stage("HEAD")
    assert baseline is not LevelStage
    assert sys.modules["app.audio.level"] is app.audio.level  # today's modules are back
    x = _speech(24_000, 1.0, 0.5)
    assert len(_run(baseline(24_000, prior_lufs=-20.0), x, 960)) == len(x)
