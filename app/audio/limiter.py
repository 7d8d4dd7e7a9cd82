"""The level stage's look-ahead true-peak limiter.

It works on a grid of sub-blocks (1 ms, at least ``TP_TAPS`` samples): each sub-block's peak
after the loudness gain (a 4x oversampled true-peak estimate, a 64-tap polyphase
interpolator like BS.1770's, wherever the sample peak comes within 2 dB of the ceiling:
speech's inter-sample peaks stay well under that; only full-scale content near Nyquist goes
further) gives the gain reduction it needs; the gain curve is the lower envelope of linear
ramps into each need (``lookahead`` sub-blocks before it) and out of it (``release`` after),
so it is continuous, never above any sub-block's need, and computed with exact
min/multiply operations only: the output does not depend on how the engine cut its chunks.

A cheaper exact skip was measured and left out: a bound from the sample peak and the
interpolator's largest phase L1 norm (1.87, 5.4 dB) never excludes a sub-block that the
2 dB candidate test lets through.
"""

from __future__ import annotations

import bisect
import functools
import math

import numpy as np

TP_TAPS = 16  # interpolator taps per phase: the true-peak context on each side of a block
CANDIDATE_DB = 2.0  # a true peak this far over the sample peak: near-Nyquist only
_MARGIN_DB = 0.7  # internal ceiling under the setting: interpolator and ramp error
_OVERSAMPLE = 4
_BATCH = 8  # sub-blocks interpolated at once (products of 100 kB at 24 kHz)


@functools.lru_cache(maxsize=1)
def true_peak_filter() -> np.ndarray:
    """Polyphase interpolator (4 phases x 16 taps): Kaiser-windowed sinc, unit DC gain."""
    n = _OVERSAMPLE * TP_TAPS
    t = (np.arange(n) - (n - 1) / 2.0) / _OVERSAMPLE
    h = np.sinc(t) * np.kaiser(n, 8.0)
    phases = h.reshape(TP_TAPS, _OVERSAMPLE).T.copy()
    phases /= phases.sum(axis=1, keepdims=True)
    phases.setflags(write=False)
    return phases


@functools.lru_cache(maxsize=1)
def _true_peak_by_tap() -> np.ndarray:
    """The interpolator as [tap, phase, 1], so that its products broadcast over long rows."""
    by_tap = true_peak_filter().T[:, :, None].copy()
    by_tap.setflags(write=False)
    return by_tap


@functools.lru_cache(maxsize=16)
def _true_peak_index(sub: int) -> np.ndarray:
    """Gather index of a sub-block's true-peak context: [t, i] = t + i (tap t, interval i)."""
    index = np.arange(TP_TAPS)[:, None] + np.arange(sub + 1)[None, :]
    index.setflags(write=False)
    return index


@functools.lru_cache(maxsize=16)
def _kernel(la: int, rel: int) -> np.ndarray:
    """Weight of a need at distance d (from -lookahead to +release) in the gain envelope."""
    d = np.arange(-la, rel + 1, dtype=np.float64)
    kernel = np.where(d < 0, 1.0 + d / (la + 1), 1.0 - d / (rel + 1))
    kernel.setflags(write=False)
    return kernel


class TruePeakLimiter:
    """Needs (gain reductions) per sub-block, found as the audio arrives, and the gain
    curve through them. The level stage owns the audio and the loudness gain; it hands
    over the sub-blocks whose samples come near the ceiling."""

    def __init__(self, sub: int, true_peak_dbtp: float, lookahead: int, release: int) -> None:
        self.sub = sub
        self.ceiling = 10.0 ** ((true_peak_dbtp - _MARGIN_DB) / 20.0)
        # Sample peaks (after the loudness gain) at or under this need no true peak.
        self.candidate = self.ceiling * 10.0 ** (-CANDIDATE_DB / 20.0)
        self._la = lookahead
        self._rel = release
        self._kernel = _kernel(lookahead, release)
        self._tp_index = _true_peak_index(sub)
        self.need_at: list[int] = []  # sub-blocks that need a gain reduction (sorted)
        self.need_db: list[float] = []  # and how much (dB < 0)

    def add_needs(self, x: np.ndarray, first: int, subs: np.ndarray, gain: np.ndarray) -> None:
        """Needs of sub-blocks ``first + subs`` (ascending; later than any seen before):
        ``x`` holds the audio from ``TP_TAPS`` samples before sub-block ``first`` to
        ``TP_TAPS`` after the last of them, ``gain`` the largest loudness gain over each."""
        if len(subs) > _BATCH:  # a long push: batches whose products stay in cache
            for i in range(0, len(subs), _BATCH):
                self.add_needs(x, first, subs[i : i + _BATCH], gain[i : i + _BATCH])
            return
        sample, true = self._peaks(x, subs)
        peaks = sample * gain
        # Only where the sample peak comes near the ceiling does the true peak count.
        tp = np.maximum(peaks, true * gain)
        need = (peaks > self.candidate) & (tp > self.ceiling)
        for i, peak in zip(subs[need].tolist(), tp[need].tolist(), strict=True):
            self.need_at.append(first + i)
            self.need_db.append(20.0 * math.log10(self.ceiling / peak))

    def _peaks(self, x: np.ndarray, subs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample peak and largest 4x-interpolated value of each sub-block ``subs`` of
        ``x`` (which starts ``TP_TAPS`` samples before the first sub-block, so every tap
        has its sample)."""
        h = TP_TAPS // 2
        start = subs * self.sub + (TP_TAPS - h)
        # taps[t, s, i]: the sample under tap t for interval i of sub-block s (the intervals
        # before, inside and after its samples; tap h over interval i is its sample i);
        # times phase p's tap t: prods[t, p, (s, i)].
        taps = x[start[None, :, None] + self._tp_index[:, None, :]].astype(np.float64)
        sample = np.abs(taps[h, :, : self.sub]).max(axis=1)
        prods = taps.reshape(TP_TAPS, 1, -1) * _true_peak_by_tap()
        # Summed tap by tap in a fixed order (a reduction over the outer axis adds whole
        # rows one after another), not by a matrix product, whose rounding may depend on
        # the batch shape: the result must not depend on chunking.
        interp = np.add.reduce(prods, axis=0)
        true = np.abs(interp).reshape(_OVERSAMPLE, len(subs), -1).max(axis=(0, 2))
        return sample, true

    def gain(self, first: int, last: int) -> np.ndarray | None:
        """Limiter gain (linear) at the sub-block boundaries first..last (inclusive); None
        when no need is within reach (the usual case)."""
        la, rel = self._la, self._rel
        i = bisect.bisect_left(self.need_at, first - 1 - rel)
        j = bisect.bisect_right(self.need_at, last + la)
        if i == j:
            return None
        # The sub-block gain (dB): the lower envelope of a ramp into each need (over the
        # look-ahead) and out of it (over the release). Needs are few, so go need by need.
        lo = first - 1 - la
        g = np.zeros(last + 1 + rel - lo)
        kernel = self._kernel
        for k, need in zip(self.need_at[i:j], self.need_db[i:j], strict=True):
            a = k - la - lo
            lo_cut = max(0, -a)
            seg = g[max(a, 0) : a + len(kernel)]
            np.minimum(seg, need * kernel[lo_cut : lo_cut + len(seg)], out=seg)
        g = g[la : la + last - first + 2]  # sub-blocks first-1 .. last
        # A boundary's gain is the smaller of its two sub-blocks: linear interpolation
        # between boundaries then stays under both neighbours' needs.
        return np.asarray(10.0 ** (np.minimum(g[:-1], g[1:]) / 20.0))

    def apply(self, y: np.ndarray, a: int, first: int, lim: np.ndarray) -> None:
        """``y`` (samples from ``a`` on) times the limiter's gain, interpolated between the
        sub-block boundaries from ``first`` on, in place; only over the sub-blocks with a
        boundary under unity (elsewhere the gain is exactly 1 and leaves samples as they are)."""
        low = np.flatnonzero(lim < 1.0)
        if not len(low):
            return
        sub = self.sub
        i, j = max(int(low[0]) - 1, 0), min(int(low[-1]) + 1, len(lim) - 1)
        pa, pb = max(a, (first + i) * sub), min(a + len(y), (first + j) * sub)
        pos = np.arange(pa, pb, dtype=np.float64)
        bounds = np.arange(first + i, first + j + 1, dtype=np.float64) * sub
        gain = np.interp(pos, bounds, lim[i : j + 1])
        y[pa - a : pb - a] = (y[pa - a : pb - a] * gain).astype(np.float32)

    def forget(self, before: int) -> None:
        """Drop the needs of sub-blocks before ``before`` (out of reach of what is left)."""
        old = bisect.bisect_left(self.need_at, before)
        if old:
            del self.need_at[:old], self.need_db[:old]
