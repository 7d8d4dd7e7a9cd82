"""Crossfader: nothing lost or repeated, declared overlaps blended, seams smoothed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audio.crossfade import Crossfader
from app.engines.base import AudioChunk


def _signal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, n).astype(np.float32)


def _run(cf: Crossfader, chunks: list[AudioChunk]) -> np.ndarray:
    parts = [cf.push(c) for c in chunks]
    parts.append(cf.flush())
    return np.concatenate(parts)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 400), max_size=12),
    max_overlap=st.sampled_from([0, 1, 64, 240]),
    seed=st.integers(0, 2**16),
)
def test_undeclared_seams_are_plain_concatenation(sizes, max_overlap, seed):
    x = _signal(sum(sizes), seed)
    bounds = np.cumsum([0, *sizes])
    chunks = [AudioChunk(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    out = _run(Crossfader(max_overlap), chunks)
    assert out.dtype == np.float32
    assert np.array_equal(out, x)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    max_overlap=st.sampled_from([0, 3, 64, 240]),
    seed=st.integers(0, 2**16),
)
def test_declared_overlaps_of_identical_audio_reproduce_the_signal(data, max_overlap, seed):
    # Each chunk re-sends up to `overlap` samples of audio already pushed (as Chatterbox
    # does), some chunks shorter than the fade, some overlaps longer than what is held.
    n_chunks = data.draw(st.integers(1, 10))
    x = _signal(3000, seed)
    chunks, pos, declared = [], 0, 0
    for _ in range(n_chunks):
        new = data.draw(st.integers(0, 300))
        k = data.draw(st.integers(0, min(pos, 300)))
        chunks.append(AudioChunk(x[pos - k : pos + new], overlap=k))
        pos += new
        declared += k
    out = _run(Crossfader(max_overlap), chunks)
    assert len(out) == sum(len(c.samples) for c in chunks) - declared == pos
    np.testing.assert_allclose(out, x[:pos], rtol=0, atol=1e-6)


def test_zero_max_overlap_is_a_pass_through_with_no_latency():
    cf = Crossfader(0)
    x = _signal(100, 1)
    assert np.array_equal(cf.push(AudioChunk(x)), x)
    assert len(cf.flush()) == 0


def test_overlap_is_held_back_until_the_next_chunk_or_flush():
    cf = Crossfader(64)
    x = _signal(200, 2)
    assert np.array_equal(cf.push(AudioChunk(x[:100])), x[:36])
    assert np.array_equal(cf.push(AudioChunk(x[100:])), x[36:136])
    assert np.array_equal(cf.flush(), x[136:])


@pytest.mark.parametrize("k", [1, 10, 64])
def test_a_declared_overlap_is_blended_not_cut(k):
    old = np.full(100, 0.8, dtype=np.float32)
    new = np.full(80, -0.4, dtype=np.float32)
    out = _run(Crossfader(64), [AudioChunk(old), AudioChunk(new, overlap=k)])
    assert len(out) == 180 - k
    region = out[100 - k : 100]
    # Every sample in the overlap is a mix: strictly between the two copies, equal to neither.
    assert np.all(region < 0.8) and np.all(region > -0.4)
    assert np.array_equal(out[: 100 - k], old[: 100 - k])
    assert np.array_equal(out[100:], new[k:])
    # The mix moves from the old copy towards the new one.
    assert np.all(np.diff(region) < 0)


def test_a_step_at_a_declared_seam_is_smoothed_below_ten_percent():
    k = 240  # 10 ms at 24 kHz
    ones = np.ones(1000, dtype=np.float32)
    zeros = np.zeros(1000, dtype=np.float32)
    out = _run(Crossfader(k), [AudioChunk(ones), AudioChunk(zeros, overlap=k)])
    assert len(out) == 2000 - k
    assert np.max(np.abs(np.diff(out))) < 0.1


def test_overlap_longer_than_what_is_held_drops_only_the_unheld_part():
    cf = Crossfader(4)
    x = np.arange(20, dtype=np.float32)
    out = _run(cf, [AudioChunk(x[:10]), AudioChunk(x[2:15], overlap=8)])
    np.testing.assert_allclose(out, x[:15], atol=1e-6)


def test_empty_chunks_and_chunks_that_are_all_overlap_add_nothing():
    cf = Crossfader(16)
    x = _signal(64, 3)
    chunks = [
        AudioChunk(x[:40]),
        AudioChunk(x[:0]),
        AudioChunk(x[35:40], overlap=5),
        AudioChunk(x[38:64], overlap=2),
    ]
    np.testing.assert_allclose(_run(cf, chunks), x, atol=1e-6)
