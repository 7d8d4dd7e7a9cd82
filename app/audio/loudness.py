"""The level stage's loudness meter: K-weighting in the telephone band, BS.1770 gating, and
the estimate of a voice's loudness carried through a reply.

BS.1770's K-weighting restricted to the telephone band (what the caller hears after the
8 kHz resampler), evaluated from the power spectrum of each block (one FFT per 200 ms of
audio). Hand-written because a time-domain K filter (scipy's ``sosfilt``, pyloudnorm)
costs ~0.45 ms per audio-second at 24 kHz on its own, the whole budget of the level stage;
pyloudnorm is the meter in the tests.
"""

from __future__ import annotations

import functools
import math

import numpy as np

ABS_GATE_LUFS = -70.0
REL_GATE_LU = -10.0
DEFAULT_LOUDNESS_LUFS = -23.0  # the prior for an engine that declares no loudness_lufs
_TELEPHONE_BAND_HZ = 4000.0


def lufs(mean_square: float) -> float:
    """Loudness (LUFS) of a K-weighted mean square."""
    return -0.691 + 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def mean_square(loudness: float) -> float:
    """The K-weighted mean square of a loudness (LUFS)."""
    return 10.0 ** ((loudness + 0.691) / 10.0)


def _biquad_power(b: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * w)
    num = b[0] + b[1] * z + b[2] * z * z
    den = a[0] + a[1] * z + a[2] * z * z
    return np.asarray(np.abs(num / den) ** 2)


@functools.lru_cache(maxsize=16)
def k_weighting_power(rate: int, n_fft: int) -> np.ndarray:
    """|H(f)|^2 of BS.1770's K-weighting at the ``rfft`` bins, zero above the phone band."""
    w = 2.0 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
    # Stage 1, high shelf (+4 dB above ~1.5 kHz); stage 2, high-pass at 38 Hz (RBJ forms
    # with the parameters of the recommendation, as pyloudnorm derives them for any rate).
    gain_a = 10.0 ** (4.0 / 40.0)
    w0 = 2.0 * np.pi * 1500.0 / rate
    alpha = np.sin(w0) / (2.0 * (1.0 / np.sqrt(2.0)))
    c, s = np.cos(w0), 2.0 * np.sqrt(gain_a) * alpha
    shelf_b = gain_a * np.array(
        [(gain_a + 1) + (gain_a - 1) * c + s, -2 * ((gain_a - 1) + (gain_a + 1) * c),
         (gain_a + 1) + (gain_a - 1) * c - s]
    )
    shelf_a = np.array(
        [(gain_a + 1) - (gain_a - 1) * c + s, 2 * ((gain_a - 1) - (gain_a + 1) * c),
         (gain_a + 1) - (gain_a - 1) * c - s]
    )
    w1 = 2.0 * np.pi * 38.0 / rate
    alpha1 = np.sin(w1) / (2.0 * 0.5)
    c1 = np.cos(w1)
    hp_b = np.array([(1 + c1) / 2, -(1 + c1), (1 + c1) / 2])
    hp_a = np.array([1 + alpha1, -2 * c1, 1 - alpha1])
    power = _biquad_power(shelf_b, shelf_a, w) * _biquad_power(hp_b, hp_a, w)
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    power[freqs > _TELEPHONE_BAND_HZ] = 0.0
    power.setflags(write=False)
    return power


@functools.lru_cache(maxsize=16)
def block_weights(rate: int, n_fft: int) -> np.ndarray:
    """Weights that turn an ``rfft`` power spectrum into the K-weighted mean square."""
    w = k_weighting_power(rate, n_fft).copy()
    w[1:-1] *= 2.0  # rfft keeps one side of the spectrum
    w /= float(n_fft) ** 2
    w = np.repeat(w, 2)  # applied to interleaved real and imaginary parts
    w.setflags(write=False)
    return w


def block_mean_square(block: np.ndarray, weights: np.ndarray) -> float:
    """K-weighted mean square of one block in the telephone band (``weights`` from
    ``block_weights`` for its length)."""
    spec = np.fft.rfft(block).view(np.float64)  # re, im pairs
    np.multiply(spec, spec, out=spec)  # in place: no second 77 kB array per block
    return float(np.dot(spec, weights))


def telephone_loudness(x: np.ndarray, rate: int) -> float:
    """Integrated loudness of a whole signal as the level stage measures it (LUFS):
    K-weighted in the telephone band, 400 ms gating blocks every 100 ms, BS.1770's two
    gates. For calibrating an engine's typical level; the stage itself never waits for the
    whole."""
    block = rate // 10
    weights = block_weights(rate, block)
    n = len(x) // block
    if n < 4:
        return -math.inf
    frames = np.asarray(x[: n * block], dtype=np.float64).reshape(n, block)
    spec = np.fft.rfft(frames, axis=1)
    power = np.stack((spec.real, spec.imag), axis=-1).reshape(n, -1) ** 2
    ms = power @ weights
    gating = np.convolve(ms, np.ones(4) / 4, mode="valid")
    gating = gating[gating > mean_square(ABS_GATE_LUFS)]
    if not len(gating):
        return -math.inf
    rel = lufs(float(gating.mean())) + REL_GATE_LU
    return lufs(float(gating[gating > mean_square(rel)].mean()))


class GatedLoudness:
    """Loudness of what was heard: BS.1770's absolute gate and a relative gate 10 LU under
    the mean of what passed the absolute one (kept running, so it follows the voice heard,
    not any prior: a voice far quieter than expected is not gated away as silence)."""

    def __init__(self) -> None:
        self._heard_energy = 0.0
        self._heard_seconds = 0.0
        self._energy = 0.0
        self.seconds = 0.0
        self.lufs = -math.inf  # of what passed both gates (kept, not derived on each read)

    def add(self, mean_square: float, seconds: float) -> None:
        level = lufs(mean_square)
        if level < ABS_GATE_LUFS:
            return
        self._heard_energy += mean_square * seconds
        self._heard_seconds += seconds
        if level < lufs(self._heard_energy / self._heard_seconds) + REL_GATE_LU:
            return
        self._energy += mean_square * seconds
        self.seconds += seconds
        self.lufs = lufs(self._energy / self.seconds)


def pooled_lufs(prior_lufs: float, prior_seconds: float, gated: GatedLoudness) -> float:
    """A prior and a measurement, weighted by seconds and averaged in LU (an energy average
    would let a loud prior outweigh many seconds of a quiet voice)."""
    if not gated.seconds:
        return prior_lufs
    w = prior_seconds
    return (w * prior_lufs + gated.seconds * gated.lufs) / (w + gated.seconds)


class LoudnessTracker:
    """The loudness of one voice through a reply (or a call): the engine's calibration,
    weighted as ``prior_seconds`` of speech, pooled with every clause measured so far.
    One per reply, handed to the level stage of each clause."""

    def __init__(self, prior_lufs: float, prior_seconds: float = 0.5) -> None:
        self.prior_lufs = prior_lufs
        self.prior_seconds = prior_seconds
        self._gated = GatedLoudness()
        self.gain_db: float | None = None  # the last gain applied (for reports)

    @property
    def lufs(self) -> float:
        return pooled_lufs(self.prior_lufs, self.prior_seconds, self._gated)

    @property
    def measured_seconds(self) -> float:
        return self._gated.seconds

    def add_block(self, mean_square: float, seconds: float) -> None:
        self._gated.add(mean_square, seconds)
