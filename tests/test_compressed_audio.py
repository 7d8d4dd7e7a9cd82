"""Incremental MP3 and Ogg/Opus encoders (``app.audio.compressed``).

Properties: bytes leave before the input ends (streaming), the bytes do not depend on how
the input was cut into chunks, and a decoder (FFmpeg through PyAV) gets back audio of the
same length and pitch.
"""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from app.audio.compressed import CompressedFormat, Mp3Encoder, available_codecs

FORMATS = [
    CompressedFormat("mp3", 22050, 32),
    CompressedFormat("mp3", 44100, 128),
    CompressedFormat("opus", 48000, 64),
]


def _tone(rate: int, seconds: float = 2.0, hz: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 10000).astype("<i2").tobytes()


def _encode(fmt: CompressedFormat, pcm: bytes, chunk_bytes: int) -> list[bytes]:
    encoder = fmt.encoder()
    parts = [encoder.push(pcm[i : i + chunk_bytes]) for i in range(0, len(pcm), chunk_bytes)]
    parts.append(encoder.flush())
    return parts


def _decode(data: bytes) -> tuple[int, np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return stream.codec_context.sample_rate, np.concatenate(frames)


def test_both_codecs_are_available() -> None:
    assert available_codecs() == ("mp3", "opus")


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.codec}_{f.sample_rate}")
def test_first_bytes_leave_before_the_input_ends(fmt: CompressedFormat) -> None:
    pcm = _tone(fmt.sample_rate)
    chunk = fmt.sample_rate // 10 * 2  # 100 ms
    parts = _encode(fmt, pcm, chunk)
    first = next(i for i, p in enumerate(parts) if p)
    assert first <= 1, "the encoder held the first 200 ms back"
    # and most of the stream has left before the flush
    assert sum(map(len, parts[:-1])) > 0.8 * sum(map(len, parts))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.codec}_{f.sample_rate}")
def test_bytes_do_not_depend_on_chunk_boundaries(fmt: CompressedFormat) -> None:
    pcm = _tone(fmt.sample_rate, 1.0)
    outs = {b"".join(_encode(fmt, pcm, n)) for n in (2, 1918, 9606, len(pcm))}
    assert len(outs) == 1


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.codec}_{f.sample_rate}")
def test_decodes_to_the_same_length_and_pitch(fmt: CompressedFormat) -> None:
    pcm = _tone(fmt.sample_rate, 2.0, hz=440.0)
    rate, audio = _decode(b"".join(_encode(fmt, pcm, 4800)))
    assert rate == fmt.sample_rate
    # Codec delay and the last padded frame add at most ~60 ms.
    assert 2.0 <= len(audio) / rate <= 2.08
    spectrum = np.abs(np.fft.rfft(audio[rate // 2 : rate // 2 + rate]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # 1 s window: 1 Hz bins


def test_mp3_bitrate_is_the_one_asked_for() -> None:
    pcm = _tone(44100, 4.0)
    size = len(b"".join(_encode(CompressedFormat("mp3", 44100, 128), pcm, 8820)))
    assert size == pytest.approx(128_000 / 8 * 4.0, rel=0.05)


def test_mp3_refuses_a_rate_it_cannot_carry_and_half_samples() -> None:
    with pytest.raises(ValueError):
        Mp3Encoder(7000, 32)
    with pytest.raises(ValueError):
        Mp3Encoder(24000, 32).push(b"\x00")


def test_empty_stream_flushes_cleanly() -> None:
    for fmt in FORMATS:
        encoder = fmt.encoder()
        encoder.flush()
        assert encoder.flush() == b""
