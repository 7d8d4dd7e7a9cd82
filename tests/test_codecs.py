"""Encoders: G.711 exactness against audioop, PCM16 byte order, float->int16 rounding."""

import audioop

import numpy as np
import pytest

from app.audio.codecs import (
    AlawEncoder,
    MulawEncoder,
    PCM16Encoder,
    float_to_int16,
    make_encoder,
)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


@pytest.mark.parametrize(
    ("encoder", "oracle"),
    [(MulawEncoder(), audioop.lin2ulaw), (AlawEncoder(), audioop.lin2alaw)],
    ids=["mulaw", "alaw"],
)
def test_g711_matches_audioop_for_every_int16_value(encoder, oracle):
    floats = ALL_INT16.astype(np.float32) / 32768.0
    assert encoder.push(floats) == oracle(ALL_INT16.tobytes(), 2)
    assert encoder.flush() == b""


def test_float_to_int16_is_exact_for_every_int16_value():
    assert np.array_equal(float_to_int16(ALL_INT16.astype(np.float32) / 32768.0), ALL_INT16)


def test_float_to_int16_rounds_to_nearest_and_clips():
    lsb = 1.0 / 32768.0
    x = np.array(
        [0.4 * lsb, 0.6 * lsb, -0.6 * lsb, 1.0, 1.5, -1.0, -1.5, 100.4 * lsb, np.nan],
        dtype=np.float32,
    )
    assert float_to_int16(x).tolist() == [0, 1, -1, 32767, 32767, -32768, -32768, 100, 0]


def test_pcm16_is_little_endian():
    out = PCM16Encoder().push(np.array([0.5, -1.0, 1 / 32768], dtype=np.float32))
    assert out == b"\x00\x40" + b"\x00\x80" + b"\x01\x00"


def test_silence_bytes_decode_to_zero():
    assert audioop.ulaw2lin(bytes([MulawEncoder.silence_byte]), 2) == b"\x00\x00"
    # A-law has no zero code; 0xD5 is the smallest positive step (+8).
    alaw_silence = audioop.alaw2lin(bytes([AlawEncoder.silence_byte]), 2)
    assert abs(int(np.frombuffer(alaw_silence, dtype=np.int16)[0])) <= 8
    assert PCM16Encoder.silence_byte == 0
    assert (MulawEncoder.bytes_per_sample, AlawEncoder.bytes_per_sample) == (1, 1)
    assert PCM16Encoder.bytes_per_sample == 2


def test_empty_input_encodes_to_nothing():
    for enc in ("mulaw", "alaw", "pcm16"):
        assert make_encoder(enc).push(np.zeros(0, dtype=np.float32)) == b""
    with pytest.raises(ValueError):
        make_encoder("opus")
