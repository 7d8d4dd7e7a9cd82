"""One loudness on the line: gain to a loudness target and a look-ahead true-peak limiter.

A push/flush stage between the crossfader and the resampler, one per utterance. Engines
differ in level (Piper gives what the model gives, Chatterbox has its own, a cloned voice
its reference clip's), mu-law clips hard above full scale, and a reply whose clauses jump
in loudness sounds broken on a phone. This stage brings speech to ``target_lufs`` and keeps
the true peak at or below ``true_peak_dbtp``, without waiting for the whole utterance.

How the loudness is known early (streaming): the first gain of an utterance is decided once
its first ``first_gain_after_ms`` of audio have been measured (at once for engines that
stream tokens, up to 2 s for engines that hand over a whole sentence at once: in both cases
no more than the engine's first chunk, so nothing waits), and each later 200 ms block's
gain is decided from what came before it, never from the block itself. The estimate pools
the clause's own gated loudness (400 ms gating blocks every 200 ms, an absolute gate at -70
LUFS and a relative gate 10 LU under what has been heard, as in ITU-R BS.1770) with the
reply's: a ``LoudnessTracker`` handed from clause to clause, seeded by the engine's
calibrated typical loudness (``EngineCapabilities.loudness_lufs``). Pooling is in LU,
weighted by seconds of speech, so a loud prior cannot outweigh a quiet voice. The gain
moves at most ``max_step_db`` per block, as a linear ramp across the block, so it never
jumps at a chunk seam or a block edge.

The meter is BS.1770's K-weighting restricted to the telephone band (what the caller
hears after the 8 kHz resampler), evaluated from the power spectrum of each block (one
FFT per 200 ms). Hand-written because a time-domain K filter (scipy's ``sosfilt``,
pyloudnorm) costs ~0.45 ms per audio-second at 24 kHz on its own, the whole budget of this
stage; pyloudnorm is the meter in the tests.

The limiter works on a 1 ms grid: each sub-block's peak after the loudness gain (a 4x
oversampled true-peak estimate, a 64-tap polyphase interpolator like BS.1770's, wherever
the sample peak comes within 2 dB of the ceiling: speech's inter-sample peaks stay well
under that; only full-scale content near Nyquist goes further)
gives the gain reduction it needs; the gain curve is the lower envelope of linear ramps
into each need (``lookahead_ms`` before it) and out of it (``release_ms`` after), so it is
continuous, never above any sub-block's need, and computed with exact min/multiply
operations only: the output does not depend on how the engine cut its chunks. It holds back
``lookahead_ms`` plus about 3 ms of audio.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

_EMPTY = np.zeros(0, dtype=np.float32)
_ABS_GATE_LUFS = -70.0
DEFAULT_LOUDNESS_LUFS = -23.0  # the prior for an engine that declares no loudness_lufs
_BLOCK_MS = 200  # the stage's loudness block: one measurement and one gain decision
_GATE_BLOCKS = 2  # blocks per 400 ms gating block
_REL_GATE_LU = -10.0
_TP_CANDIDATE_DB = 2.0  # a true peak this far over the sample peak: near-Nyquist only
_TP_MARGIN_DB = 0.7  # internal ceiling under the setting: interpolator and ramp error
_OVERSAMPLE = 4
_TP_TAPS = 16  # per phase
_TP_BATCH = 8  # sub-blocks interpolated at once (products of 100 kB at 24 kHz)
_TELEPHONE_BAND_HZ = 4000.0


def _lufs(mean_square: float) -> float:
    return -0.691 + 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def _mean_square(lufs: float) -> float:
    return 10.0 ** ((lufs + 0.691) / 10.0)


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
def _block_weights(rate: int, n_fft: int) -> np.ndarray:
    """Weights that turn an ``rfft`` power spectrum into the K-weighted mean square."""
    w = k_weighting_power(rate, n_fft).copy()
    w[1:-1] *= 2.0  # rfft keeps one side of the spectrum
    w /= float(n_fft) ** 2
    w = np.repeat(w, 2)  # applied to interleaved real and imaginary parts
    w.setflags(write=False)
    return w


@functools.lru_cache(maxsize=1)
def _true_peak_filter() -> np.ndarray:
    """Polyphase interpolator (4 phases x 16 taps): Kaiser-windowed sinc, unit DC gain."""
    n = _OVERSAMPLE * _TP_TAPS
    t = (np.arange(n) - (n - 1) / 2.0) / _OVERSAMPLE
    h = np.sinc(t) * np.kaiser(n, 8.0)
    phases = h.reshape(_TP_TAPS, _OVERSAMPLE).T.copy()
    phases /= phases.sum(axis=1, keepdims=True)
    phases.setflags(write=False)
    return phases


@functools.lru_cache(maxsize=1)
def _true_peak_by_tap() -> np.ndarray:
    """The interpolator as [tap, phase, 1], so that its products broadcast over long rows."""
    by_tap = _true_peak_filter().T[:, :, None].copy()
    by_tap.setflags(write=False)
    return by_tap


@functools.lru_cache(maxsize=16)
def _true_peak_index(sub: int) -> np.ndarray:
    """Gather index of a sub-block's true-peak context: [t, i] = t + i (tap t, interval i)."""
    index = np.arange(_TP_TAPS)[:, None] + np.arange(sub + 1)[None, :]
    index.setflags(write=False)
    return index


@functools.lru_cache(maxsize=16)
def _ramp(n: int) -> np.ndarray:
    """0, 1/n, ..., (n-1)/n in float32: a block's position in its gain ramp."""
    ramp = np.arange(n, dtype=np.float32) / np.float32(n)
    ramp.setflags(write=False)
    return ramp


@functools.lru_cache(maxsize=16)
def _limiter_kernel(la: int, rel: int) -> np.ndarray:
    """Weight of a need at distance d (from -lookahead to +release) in the gain envelope."""
    d = np.arange(-la, rel + 1, dtype=np.float64)
    kernel = np.where(d < 0, 1.0 + d / (la + 1), 1.0 - d / (rel + 1))
    kernel.setflags(write=False)
    return kernel


def telephone_loudness(x: np.ndarray, rate: int) -> float:
    """Integrated loudness of a whole signal as this stage measures it (LUFS): K-weighted
    in the telephone band, 400 ms gating blocks every 100 ms, BS.1770's two gates. For
    calibrating an engine's typical level; the stage itself never waits for the whole."""
    block = rate // 10
    weights = _block_weights(rate, block)
    n = len(x) // block
    if n < 4:
        return -math.inf
    frames = np.asarray(x[: n * block], dtype=np.float64).reshape(n, block)
    spec = np.fft.rfft(frames, axis=1)
    power = np.stack((spec.real, spec.imag), axis=-1).reshape(n, -1) ** 2
    ms = power @ weights
    gating = np.convolve(ms, np.ones(4) / 4, mode="valid")
    gating = gating[gating > _mean_square(_ABS_GATE_LUFS)]
    if not len(gating):
        return -math.inf
    rel = _lufs(float(gating.mean())) + _REL_GATE_LU
    return _lufs(float(gating[gating > _mean_square(rel)].mean()))


class _Gated:
    """Loudness of what was heard: BS.1770's absolute gate and a relative gate 10 LU under
    the mean of what passed the absolute one (kept running, so it follows the voice heard,
    not any prior: a voice far quieter than expected is not gated away as silence)."""

    def __init__(self) -> None:
        self._heard_energy = 0.0
        self._heard_seconds = 0.0
        self._energy = 0.0
        self.seconds = 0.0

    @property
    def lufs(self) -> float:
        return _lufs(self._energy / self.seconds) if self.seconds else -math.inf

    def add(self, mean_square: float, seconds: float) -> None:
        level = _lufs(mean_square)
        if level < _ABS_GATE_LUFS:
            return
        self._heard_energy += mean_square * seconds
        self._heard_seconds += seconds
        if level < _lufs(self._heard_energy / self._heard_seconds) + _REL_GATE_LU:
            return
        self._energy += mean_square * seconds
        self.seconds += seconds


def _pooled(prior_lufs: float, prior_seconds: float, gated: _Gated) -> float:
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
        self._gated = _Gated()
        self.gain_db: float | None = None  # the last gain applied (for reports)

    @property
    def lufs(self) -> float:
        return _pooled(self.prior_lufs, self.prior_seconds, self._gated)

    @property
    def measured_seconds(self) -> float:
        return self._gated.seconds

    def add_block(self, mean_square: float, seconds: float) -> None:
        self._gated.add(mean_square, seconds)


@dataclass(frozen=True)
class LevelSettings:
    target_lufs: float = -20.0
    true_peak_dbtp: float = -1.0
    max_boost_db: float = 20.0
    max_cut_db: float = 20.0
    max_step_db: float = 4.0  # per 200 ms block (0.02 dB per ms: no audible pumping)
    lookahead_ms: int = 5  # limiter
    release_ms: int = 50  # limiter
    # Audio measured at the start of each utterance before its first gain is set (0: the
    # first gain comes from the tracker alone). It must not exceed what the engine gives in
    # its first chunk, or the stage would wait: see ``level_settings``.
    first_gain_after_ms: int = 400
    # How much the reply's estimate counts (as seconds of speech) against this clause's
    # own measurement: little, so that clauses come out alike.
    reply_weight_s: float = 0.02


def level_settings(streaming: str, target_lufs: float, true_peak_dbtp: float) -> LevelSettings:
    """Settings for an engine by how it streams (``EngineCapabilities.streaming``).

    A "sentence" engine (Piper) hands over a whole clause in one chunk, so measuring up to
    2 s before the first gain costs no time and gives short clauses ("Okay.") their own
    gain. A "token" engine's first chunk can be shorter than one 200 ms block (Chatterbox's
    ``realtime`` and ``adaptive`` presets give 40-120 ms past the crossfader, the look-ahead
    decoder holding the rest back), and waiting for that block would hold the first audio
    until the engine's second chunk. Its first gain is set at once, from the reply's
    estimate and the engine's calibration: the same gain a 200 ms wait would give, since a
    clause's own measurement only counts from its first 400 ms gating block.
    """
    first = 2000 if streaming == "sentence" else 0
    return LevelSettings(target_lufs=target_lufs, true_peak_dbtp=true_peak_dbtp,
                         first_gain_after_ms=first)


class LevelStage:
    """Gain to the loudness target, then the look-ahead limiter (push/flush, per utterance).

    It runs on every chunk of every call, so a push does little in numpy: one copy into the
    input buffer, one peak over the newly final samples (the limiter's work only where it
    comes near the ceiling) and one multiply by the block's gain curve; each 200 ms block
    adds its FFT. See the pipeline benchmark for what that costs."""

    def __init__(
        self,
        rate: int,
        settings: LevelSettings | None = None,
        tracker: LoudnessTracker | None = None,
        prior_lufs: float = -23.0,
    ) -> None:
        self.rate = rate
        self.settings = s = settings or LevelSettings()
        self.tracker = tracker if tracker is not None else LoudnessTracker(prior_lufs)
        self._sub = max(_TP_TAPS, rate // 1000)  # limiter grid (holds the true-peak context)
        self._block = _BLOCK_MS * self._sub  # loudness block, a whole number of sub-blocks
        self._weights = _block_weights(rate, self._block)
        self._ramp = _ramp(self._block)
        self._la = max(1, s.lookahead_ms)
        self._rel = max(1, s.release_ms)
        self._ceiling = 10.0 ** ((s.true_peak_dbtp - _TP_MARGIN_DB) / 20.0)
        self._tp_index = _true_peak_index(self._sub)
        self._candidate = self._ceiling * 10.0 ** (-_TP_CANDIDATE_DB / 20.0)
        self._kernel = _limiter_kernel(self._la, self._rel)
        self._clause = _Gated()
        self._hold_blocks = -(-max(0, s.first_gain_after_ms) // _BLOCK_MS)
        # Loudness gain at the start of each block, in dB and linear; block k ramps from
        # knot k to knot k + 1. Knot k + 2 is decided once block k is measured, so no block
        # waits for its own measurement once the first gain is set.
        self._knots_db: list[float] = []
        self._knots: list[float] = []
        if not self._hold_blocks:
            self._start(2)
        # Input samples from self._base on (context included) are held in self._buf, sample
        # i at i + self._off; the buffer grows by doubling and is compacted in place, so a
        # push is one copy.
        self._buf = np.zeros(4 * self._block, dtype=np.float32)
        self._off = 0
        self._base = 0
        self._n_in = 0  # samples pushed
        self._out = 0  # samples emitted
        self._measured = 0  # blocks measured
        self._curve_block = -1  # the block whose gain curve (per sample) is in self._curve
        self._curve = _EMPTY
        self._recent: deque[float] = deque()  # mean squares of the last blocks measured
        self._needs_upto = 0  # limiter needs are known for sub-blocks before this
        self._need_at: list[int] = []  # sub-blocks that need a gain reduction (sorted)
        self._need_db: list[float] = []  # and how much (dB < 0)
        self._done = False

    def _clamp(self, gain_db: float) -> float:
        s = self.settings
        return min(s.max_boost_db, max(-s.max_cut_db, gain_db))

    # --- loudness gain ---------------------------------------------------------------

    def _wanted_db(self) -> float:
        """Target minus the estimate: this clause's measurement pooled with the reply's."""
        s = self.settings
        return self._clamp(s.target_lufs - _pooled(self.tracker.lufs, s.reply_weight_s,
                                                   self._clause))

    def _start(self, n_knots: int) -> None:
        """Set the first gain: it holds over the blocks measured before it was decided."""
        g = self._wanted_db()
        self._knots_db = [g] * n_knots
        self._knots = [10.0 ** (g / 20.0)] * n_knots

    def _measure(self) -> None:
        """Measure every complete block; each decides the gain two knots ahead."""
        s = self.settings
        seconds = self._block / self.rate
        while (self._measured + 1) * self._block <= self._n_in:
            a = self._measured * self._block
            spec = np.fft.rfft(self._span(a, a + self._block)).view(np.float64)  # re, im pairs
            np.multiply(spec, spec, out=spec)  # in place: no second 77 kB array per block
            self._recent.append(float(np.dot(spec, self._weights)))
            if len(self._recent) == _GATE_BLOCKS:
                # BS.1770's gating block: 400 ms (here a new one every 200 ms).
                window = sum(self._recent) / _GATE_BLOCKS
                self.tracker.add_block(window, seconds)
                self._clause.add(window, seconds)
                self._recent.popleft()
            self._measured += 1
            if not self._knots:
                if self._measured >= self._hold_blocks:
                    self._start(self._measured + 2)
                continue
            want = self._wanted_db()
            last = self._knots_db[-1]
            step = min(s.max_step_db, max(-s.max_step_db, want - last))
            self._knots_db.append(last + step)
            self._knots.append(10.0 ** ((last + step) / 20.0))

    def _apply_gain(self, a: int, b: int) -> np.ndarray:
        """Input samples [a, b) times the loudness gain, block by block."""
        B = self._block
        k = a // B
        if b <= (k + 1) * B:  # within one block: most pushes
            curve = self._curve if k == self._curve_block else self._block_curve(k)
            return self._buf[a + self._off : b + self._off] * curve[a - k * B : b - k * B]
        y = np.empty(b - a, dtype=np.float32)
        pos = a
        while pos < b:
            k = pos // B
            stop = min(b, (k + 1) * B)
            curve = self._block_curve(k)[pos - k * B : stop - k * B]
            np.multiply(self._span(pos, stop), curve, out=y[pos - a : stop - a])
            pos = stop
        return y

    def _block_curve(self, k: int) -> np.ndarray:
        """Block ``k``'s gain per sample (float32), a linear ramp from knot k to knot k + 1:
        computed once per block, not per push (pushes of 40 ms slice it five times). Each
        sample's gain is the same float32 expression whatever the slice, so chunking cannot
        change it."""
        if self._curve_block != k:
            g0, g1 = self._knots[k], self._knots[k + 1]
            self._curve = np.float32(g0) + np.float32(g1 - g0) * self._ramp
            self._curve_block = k
        return self._curve

    def _gain_at(self, positions: np.ndarray, a: int, b: int) -> np.ndarray:
        """The loudness gain (linear) at sample ``positions`` within [a, b] (knots and ramps
        as applied; only the knots around them are handed to ``np.interp``)."""
        k = a // self._block
        knots = self._knots[k : b // self._block + 2]
        xp = np.arange(k, k + len(knots), dtype=np.float64) * self._block
        return np.interp(positions, xp, knots)

    # --- limiter ---------------------------------------------------------------------

    def _find_needs(self, upto_sub: int) -> None:
        """Limiter needs of the sub-blocks before ``upto_sub`` (input is final up to there
        plus the true-peak context, or the stream has ended)."""
        sub, first = self._sub, self._needs_upto
        if upto_sub <= first:
            return
        self._needs_upto = upto_sub
        a, b = first * sub, upto_sub * sub
        end = min(b, self._n_in)  # zeros after the last sample pushed
        loudest = 0.0
        if end > a:
            mag = np.abs(self._buf[a + self._off : end + self._off])
            loudest = float(mag[mag.argmax()])  # argmax is SIMD in numpy, max is not (3x)
        top = max(self._knots[a // self._block : (b - 1) // self._block + 2])  # over [a, b)
        if loudest * top <= self._candidate:
            return  # the usual case: nothing comes near the ceiling
        x = self._window(a - _TP_TAPS, b + _TP_TAPS)
        core = x[_TP_TAPS:-_TP_TAPS]
        # Per sub-block: its sample peak times the largest loudness gain over it.
        bounds = np.arange(first, upto_sub + 1, dtype=np.float64) * sub
        g = self._gain_at(bounds, a, b)
        gain = np.maximum(g[:-1], g[1:])
        peaks = np.abs(core).reshape(-1, sub).max(axis=1) * gain
        near = np.nonzero(peaks > self._candidate)[0]
        if not len(near):
            return
        tp = np.maximum(peaks[near], self._true_peaks(x, near) * gain[near])
        for i, peak in zip(near.tolist(), tp.tolist(), strict=True):
            if peak > self._ceiling:
                self._need_at.append(first + i)
                self._need_db.append(20.0 * math.log10(self._ceiling / peak))

    def _true_peaks(self, x: np.ndarray, subs: np.ndarray) -> np.ndarray:
        """Largest 4x-interpolated value in each sub-block ``subs`` of ``x`` (which starts
        ``_TP_TAPS`` samples before the first sub-block, so every tap has its sample)."""
        if len(subs) > _TP_BATCH:  # a long push: batches whose products stay in cache
            parts = [self._true_peaks(x, subs[i : i + _TP_BATCH])
                     for i in range(0, len(subs), _TP_BATCH)]
            return np.concatenate(parts)
        sub, h = self._sub, _TP_TAPS // 2
        start = subs * sub + _TP_TAPS - h
        # taps[t, s, i]: the sample under tap t for interval i of sub-block s (the intervals
        # before, inside and after its samples); times phase p's tap t: prods[t, p, (s, i)].
        taps = x[start[None, :, None] + self._tp_index[:, None, :]].astype(np.float64)
        prods = taps.reshape(_TP_TAPS, 1, -1) * _true_peak_by_tap()
        # Summed tap by tap (elementwise, fixed order) rather than by a matrix product or a
        # reduction, whose rounding may depend on the batch shape: the result must not
        # depend on chunking.
        interp = np.zeros(prods.shape[1:])
        for p in prods:
            interp += p
        return np.asarray(np.abs(interp).reshape(_OVERSAMPLE, len(subs), -1).max(axis=(0, 2)))

    def _limiter(self, first: int, last: int) -> np.ndarray | None:
        """Limiter gain (linear) at the sub-block boundaries first..last (inclusive); None
        when no need is within reach (the usual case)."""
        la, rel = self._la, self._rel
        i = bisect.bisect_left(self._need_at, first - 1 - rel)
        j = bisect.bisect_right(self._need_at, last + la)
        if i == j:
            return None
        # The sub-block gain (dB): the lower envelope of a ramp into each need (over the
        # look-ahead) and out of it (over the release). Needs are few, so go need by need.
        lo = first - 1 - la
        g = np.zeros(last + 1 + rel - lo)
        kernel = self._kernel
        for k, need in zip(self._need_at[i:j], self._need_db[i:j], strict=True):
            a = k - la - lo
            lo_cut = max(0, -a)
            seg = g[max(a, 0) : a + len(kernel)]
            np.minimum(seg, need * kernel[lo_cut : lo_cut + len(seg)], out=seg)
        g = g[la : la + last - first + 2]  # sub-blocks first-1 .. last
        # A boundary's gain is the smaller of its two sub-blocks: linear interpolation
        # between boundaries then stays under both neighbours' needs.
        return np.asarray(10.0 ** (np.minimum(g[:-1], g[1:]) / 20.0))

    def _apply_limiter(self, y: np.ndarray, a: int, first: int, lim: np.ndarray) -> None:
        """``y`` (samples from ``a`` on) times the limiter's gain, interpolated between the
        sub-block boundaries from ``first`` on, in place; only over the sub-blocks with a
        boundary under unity (elsewhere the gain is exactly 1 and leaves samples as they are)."""
        low = np.flatnonzero(lim < 1.0)
        if not len(low):
            return
        sub = self._sub
        i, j = max(int(low[0]) - 1, 0), min(int(low[-1]) + 1, len(lim) - 1)
        pa, pb = max(a, (first + i) * sub), min(a + len(y), (first + j) * sub)
        pos = np.arange(pa, pb, dtype=np.float64)
        bounds = np.arange(first + i, first + j + 1, dtype=np.float64) * sub
        gain = np.interp(pos, bounds, lim[i : j + 1])
        y[pa - a : pb - a] = (y[pa - a : pb - a] * gain).astype(np.float32)

    # --- the stream ------------------------------------------------------------------

    def _span(self, a: int, b: int) -> np.ndarray:
        """Input samples [a, b), all held (a view of the buffer)."""
        return self._buf[a + self._off : b + self._off]

    def _window(self, a: int, b: int) -> np.ndarray:
        """Input samples [a, b), zeros before the stream and after the last pushed."""
        lo, hi = max(a, self._base), min(b, self._n_in)
        if lo == a and hi == b:
            return self._span(a, b)
        out = np.zeros(b - a, dtype=np.float32)
        if hi > lo:
            out[lo - a : hi - a] = self._span(lo, hi)
        return out

    def _append(self, x: np.ndarray) -> None:
        end = self._n_in + self._off
        if end + len(x) > len(self._buf):
            held = self._n_in - self._base
            need = held + len(x)
            buf = self._buf if 2 * need <= len(self._buf) else np.empty(2 * need, np.float32)
            buf[:held] = self._buf[end - held : end]  # numpy copies overlapping views safely
            self._buf, self._off, end = buf, -self._base, held
        self._buf[end : end + len(x)] = x
        self._n_in += len(x)

    def _emit(self, upto_sub: int) -> np.ndarray:
        sub = self._sub
        first = self._out // sub
        if upto_sub <= first:
            return _EMPTY
        self._find_needs(upto_sub + self._la + 2)
        a, b = self._out, min(upto_sub * sub, self._n_in)
        y = self._apply_gain(a, b)
        lim = self._limiter(first, upto_sub) if self._need_at else None
        if lim is not None:
            self._apply_limiter(y, a, first, lim)
        self._out = b
        # Hold on to the true-peak context and the block being measured, no more.
        self._base = max(self._base, min(b - _TP_TAPS, self._measured * self._block))
        old = bisect.bisect_left(self._need_at, first - self._rel - 2) if self._need_at else 0
        if old:
            del self._need_at[:old], self._need_db[:old]
        return y

    def push(self, x: np.ndarray) -> np.ndarray:
        if self._done:
            raise RuntimeError("LevelStage.push after flush")
        if len(x) == 0:
            return _EMPTY
        self._append(np.asarray(x, dtype=np.float32))
        if self._n_in >= (self._measured + 1) * self._block:
            self._measure()
        if not self._knots:
            return _EMPTY  # still measuring the start of the utterance
        # A sub-block is ready once its look-ahead and true-peak context have arrived.
        return self._emit(self._n_in // self._sub - self._la - 3)

    def flush(self) -> np.ndarray:
        if self._done:
            return _EMPTY
        self._done = True
        if not self._knots:  # shorter than the first measurement: decide on what there is
            self._start(self._n_in // self._block + 2)
        y = self._emit(-(-self._n_in // self._sub))
        self.tracker.gain_db = self._knots_db[-1]
        return y
