"""Stateful sample-rate conversion from the engine's rate to the client's.

One ``StreamResampler`` per utterance wraps python-soxr's ``ResampleStream``, which keeps
its filter state across pushes: the output is identical however the input is chunked
(resampling each chunk from scratch puts a discontinuity at every seam). ``flush()`` drains
what the filter still holds.

Default quality, chosen by measurement (``benchmarks/pipeline.py``, -> 8 kHz). Holdback:
the engine audio that must be pushed, beyond 20 ms, before the first 20 ms frame comes
out, pushing 1 ms at a time; steady: median of audio pushed minus audio released.

    quality  holdback 24k / 22.05k  steady 24k  5 kHz alias  3.4 kHz gain  cost
    LQ           21 / 24 ms            22 ms     -111 dBc     -7.8 dB       0.06 ms/s
    MQ           56 / 63 ms            42 ms     -119 dBc      0.0 dB       0.07 ms/s
    HQ           54 / 61 ms            42 ms     -137 dBc      0.0 dB       0.07 ms/s
    VHQ         135 / 149 ms           83 ms     -165 dBc      0.0 dB       0.08 ms/s

HQ: the only faster setting, LQ, cuts 3.4 kHz (the top of the telephone band) by 8 dB;
MQ holds back as long as HQ for less stopband; VHQ holds back 2.5 times as long for
nothing a G.711 call can carry. soxr's experimental variable-rate mode (``vr=True``) holds
back only 25 ms with a flat band and -114 dBc, but costs ~0.8 ms per audio-second, more
than the whole chain's budget. The holdback does not delay the first frame of a real
utterance: a Piper sentence or 12+ Chatterbox tokens is far more than 75 ms, so the first
push already releases frames, and ``flush()`` releases the rest at once.
"""

from __future__ import annotations

import numpy as np
import soxr

QUALITIES = ("LQ", "MQ", "HQ", "VHQ")
DEFAULT_QUALITY = "HQ"

_EMPTY = np.zeros(0, dtype=np.float32)


class StreamResampler:
    """Mono float32 ``in_rate`` -> ``out_rate``; a pass-through when the rates are equal."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = DEFAULT_QUALITY) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        if quality.upper() not in QUALITIES:
            raise ValueError(f"quality must be one of {', '.join(QUALITIES)}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = quality.upper()
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
        )
        self._flushed = False
        self.samples_in = 0
        self.samples_out = 0

    @property
    def pending_ms(self) -> float:
        """Audio pushed but not yet released, in ms (what the filter is holding back)."""
        return 1000.0 * (self.samples_in / self.in_rate - self.samples_out / self.out_rate)

    def push(self, samples: np.ndarray) -> np.ndarray:
        if self._flushed:
            # soxr's stream cannot restart after ``last=True``; a new utterance needs a new
            # resampler, and reusing one would silently lose the next one's first samples.
            raise RuntimeError("StreamResampler used after flush(); make one per utterance")
        x = np.ascontiguousarray(samples, dtype=np.float32)
        self.samples_in += len(x)
        if self._stream is None:
            y = x
        elif len(x) == 0:
            return _EMPTY
        else:
            y = self._stream.resample_chunk(x)
        self.samples_out += len(y)
        return y

    def flush(self) -> np.ndarray:
        if self._flushed:
            return _EMPTY
        self._flushed = True
        if self._stream is None:
            return _EMPTY
        y = self._stream.resample_chunk(_EMPTY, last=True)
        self.samples_out += len(y)
        return y


def measure_holdback_ms(
    in_rate: int,
    out_rate: int,
    quality: str = DEFAULT_QUALITY,
    *,
    frame_ms: float = 20.0,
    step_ms: float = 1.0,
) -> float:
    """Engine audio (ms) the resampler needs beyond one frame before it releases that frame.

    Pushes silence ``step_ms`` at a time into a fresh resampler until ``frame_ms`` of output
    has come out. 0 for equal rates; the figure includes up to one step of granularity.
    """
    rs = StreamResampler(in_rate, out_rate, quality)
    step = np.zeros(max(1, round(in_rate * step_ms / 1000)), dtype=np.float32)
    need = out_rate * frame_ms / 1000
    while rs.samples_out < need:
        rs.push(step)
        if rs.samples_in > in_rate * 10:  # a safety stop; no setting holds back seconds
            raise RuntimeError("resampler released no frame within 10 s of input")
    return 1000.0 * rs.samples_in / in_rate - frame_ms
