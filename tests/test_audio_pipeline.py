"""The composed chain: chunk invariance, frame count, padding only at the end."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audio import AudioPipeline, StreamResampler, get_output_format, make_encoder
from app.audio.wav import wav_bytes
from app.engines.base import AudioChunk
from app.errors import InvalidRequest

CASES = [
    ("mulaw", 22050),
    ("mulaw", 24000),
    ("alaw", 22050),
    ("alaw", 24000),
    ("pcm_16000", 22050),
    ("pcm_16000", 24000),
]


def _audio(kind: str, n: int, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.uniform(-1, 1, n).astype(np.float32)
    # Speech-like: harmonics of a gliding pitch, amplitude-modulated at a syllable rate,
    # with a pause; loud enough to clip now and then.
    t = np.arange(n) / rate
    f0 = 110 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(h * phase) / h for h in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + seed), 0, None) * (t % 1.0 < 0.8)
    return (0.9 * voiced * envelope).astype(np.float32)


def _run(pipe: AudioPipeline, chunks: list[AudioChunk]) -> list[bytes]:
    frames: list[bytes] = []
    for c in chunks:
        frames += pipe.push(c)
    return frames + pipe.flush()


@pytest.mark.parametrize(("fmt_name", "engine_rate"), CASES)
@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["speech", "noise"]),
    n=st.integers(0, 20000),
    cuts=st.lists(st.floats(0, 1), max_size=12),
    seed=st.integers(0, 2**16),
    max_overlap=st.sampled_from([0, 240]),
)
def test_frames_do_not_depend_on_chunk_boundaries(
    fmt_name, engine_rate, kind, n, cuts, seed, max_overlap
):
    fmt = get_output_format(fmt_name)
    x = _audio(kind, n, engine_rate, seed)
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    chunks = [AudioChunk(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    chunks.insert(len(chunks) // 2, AudioChunk(x[:0]))  # an empty chunk changes nothing

    one_piece = _run(AudioPipeline.for_format(engine_rate, fmt), [AudioChunk(x)])
    pieces = _run(AudioPipeline.for_format(engine_rate, fmt, max_overlap=max_overlap), chunks)
    assert pieces == one_piece

    # Frames = ceil(resampled samples / samples per frame), with the resampler's own count.
    rs = StreamResampler(engine_rate, fmt.sample_rate)
    resampled = np.concatenate([rs.push(x), rs.flush()])
    assert len(pieces) == math.ceil(len(resampled) / fmt.samples_per_frame)

    # Every frame is whole, and the stream is the encoded audio plus silence only at the end.
    assert all(len(f) == fmt.frame_bytes for f in pieces)
    stream = b"".join(pieces)
    real = make_encoder(fmt.encoding).push(resampled)
    assert stream[: len(real)] == real
    pad = stream[len(real) :]
    assert len(pad) < fmt.frame_bytes
    assert pad == bytes([make_encoder(fmt.encoding).silence_byte]) * len(pad)


def test_counters_and_timings_are_kept():
    pipe = AudioPipeline(24000, "mulaw", 8000, max_overlap=240)
    x = _audio("speech", 24000, 24000, 0)
    frames = _run(pipe, [AudioChunk(x[:10000]), AudioChunk(x[9760:], overlap=240)])
    assert pipe.samples_in == 24000
    assert pipe.samples_out == 8000
    assert len(frames) == 50
    assert set(pipe.timings) == {"crossfade_ms", "resample_ms", "encode_ms", "frame_ms"}
    assert all(v >= 0 for v in pipe.timings.values())


def test_unframed_pipeline_gives_one_byte_string_per_push_for_wav():
    pipe = AudioPipeline(22050, "pcm16", 22050, frame_ms=None)
    x = _audio("speech", 2205, 22050, 1)
    out = pipe.push(AudioChunk(x)) + pipe.push(AudioChunk(x[:0])) + pipe.flush()
    assert len(out) == 1 and len(out[0]) == 2 * 2205
    wav = wav_bytes(out[0], 22050)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) == 44 + 2 * 2205


def test_unknown_output_format_is_an_invalid_request_listing_the_valid_ones():
    with pytest.raises(InvalidRequest) as err:
        get_output_format("mp3")
    assert "mulaw" in err.value.message and "pcm_44100" in err.value.message


def test_formats_have_20ms_frames():
    assert get_output_format("mulaw").frame_bytes == 160
    assert get_output_format("alaw").frame_bytes == 160
    assert get_output_format("pcm_16000").frame_bytes == 640
    assert get_output_format("pcm_22050").frame_bytes == 882
