"""Encoders from float32 engine audio to the bytes a client receives.

Each encoder is a push/flush stage: ``push(float32 samples) -> bytes``. None of them keeps
state (G.711 and PCM16 code every sample on its own), so ``flush()`` returns ``b""``; it
exists so that the pipeline can treat every stage alike.

G.711 comes from ``audioop``: the stdlib module on Python 3.11/3.12, the ``audioop-lts``
package (same import name) on 3.13+. It implements the ITU tables exactly, which is why we
use it rather than a formula of our own.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import numpy as np

with warnings.catch_warnings():
    # 3.11 and 3.12 warn on import; only that warning is silenced, everything else stays
    # an error under the test suite's warnings-as-errors.
    warnings.filterwarnings(
        "ignore", message="'audioop' is deprecated", category=DeprecationWarning
    )
    import audioop

ENCODINGS = ("mulaw", "alaw", "pcm16")

_LITTLE_ENDIAN = sys.byteorder == "little"


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to int16 by round-half-even and clip (x * 32768 in [-32768, 32767]).

    Scaling by 32768 (not 32767) makes the conversion exact for every int16 value coming
    back from ``v / 32768``, so nothing drifts through a decode/encode round trip. NaN from
    a misbehaving engine becomes silence instead of an undefined cast.
    """
    scaled = np.multiply(samples, np.float32(32768.0), dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    np.copyto(scaled, 0.0, where=np.isnan(scaled))
    return scaled.astype(np.int16)


def _native_pcm16(samples: np.ndarray) -> bytes:
    # audioop reads samples in the machine's byte order.
    return float_to_int16(samples).tobytes()


class _G711Encoder:
    """G.711: one byte per sample, each sample coded on its own by ``audioop``."""

    encoding: str
    bytes_per_sample = 1
    silence_byte: int
    _code: Callable[[bytes, int], bytes]

    def push(self, samples: np.ndarray) -> bytes:
        if len(samples) == 0:
            return b""
        return type(self)._code(_native_pcm16(samples), 2)

    def flush(self) -> bytes:
        return b""


class MulawEncoder(_G711Encoder):
    """G.711 mu-law (what Twilio media streams carry)."""

    encoding = "mulaw"
    silence_byte = 0xFF
    _code = staticmethod(audioop.lin2ulaw)


class AlawEncoder(_G711Encoder):
    """G.711 A-law."""

    encoding = "alaw"
    silence_byte = 0xD5
    _code = staticmethod(audioop.lin2alaw)


class PCM16Encoder:
    """Signed 16-bit little-endian PCM (the wire order, whatever the machine's)."""

    encoding = "pcm16"
    bytes_per_sample = 2
    silence_byte = 0x00

    def push(self, samples: np.ndarray) -> bytes:
        pcm = float_to_int16(samples)
        if not _LITTLE_ENDIAN:
            pcm = pcm.byteswap()
        return pcm.tobytes()

    def flush(self) -> bytes:
        return b""


Encoder = MulawEncoder | AlawEncoder | PCM16Encoder


def make_encoder(encoding: str) -> Encoder:
    """A fresh encoder for ``encoding`` ("mulaw", "alaw" or "pcm16")."""
    if encoding == "mulaw":
        return MulawEncoder()
    if encoding == "alaw":
        return AlawEncoder()
    if encoding == "pcm16":
        return PCM16Encoder()
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
