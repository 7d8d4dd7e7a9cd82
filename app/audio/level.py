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

The meter and the gating are in ``app.audio.loudness``, the limiter (which holds back
``lookahead_ms`` plus about 3 ms of audio) in ``app.audio.limiter``; this module holds the
audio, decides the gain and finds where the limiter has work to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.audio.limiter import TP_TAPS, TruePeakLimiter
from app.audio.loudness import (
    DEFAULT_LOUDNESS_LUFS,
    GatedLoudness,
    LoudnessTracker,
    block_mean_square,
    block_weights,
    pooled_lufs,
    telephone_loudness,
)

__all__ = [
    "DEFAULT_LOUDNESS_LUFS",
    "LevelSettings",
    "LevelStage",
    "LoudnessTracker",
    "level_settings",
    "telephone_loudness",
]

_EMPTY = np.zeros(0, dtype=np.float32)
_BLOCK_MS = 200  # the stage's loudness block: one measurement and one gain decision
# A sub-block whose samples all stay under the limiter's candidate level divided by the
# largest gain over it cannot come near the ceiling; this factor leaves room for the
# rounding of that division (a sub-block on the edge is looked at, never skipped).
_SKIP_MARGIN = 1.0 - 1e-9


def _ramp(n: int) -> np.ndarray:
    """0, 1/n, ..., (n-1)/n in float32: a block's position in its gain ramp."""
    return np.arange(n, dtype=np.float32) / np.float32(n)


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
        prior_lufs: float = DEFAULT_LOUDNESS_LUFS,
    ) -> None:
        self.rate = rate
        self.settings = s = settings or LevelSettings()
        self.tracker = tracker if tracker is not None else LoudnessTracker(prior_lufs)
        self._sub = max(TP_TAPS, rate // 1000)  # limiter grid (holds the true-peak context)
        self._block = _BLOCK_MS * self._sub  # loudness block, a whole number of sub-blocks
        self._block_s = self._block / rate
        self._weights = block_weights(rate, self._block)
        self._ramp = _ramp(self._block)
        self._la = max(1, s.lookahead_ms)
        self._rel = max(1, s.release_ms)
        self._lag = self._la + 3  # sub-blocks held back: the look-ahead and the TP context
        self._limiter = TruePeakLimiter(self._sub, s.true_peak_dbtp, self._la, self._rel)
        self._need_at = self._limiter.need_at  # the same list: empty when nothing is near
        self._candidate = self._limiter.candidate
        self._clause = GatedLoudness()
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
        self._measure_at = self._block  # samples pushed when the next block is complete
        self._previous: float | None = None  # mean square of the last block measured
        # The loudness gain per sample from the start of block self._curve_block to
        # self._curve_end: that block and, once its end knot is known, the next.
        self._curve_block = -1
        self._curve_end = 0
        self._curve = np.empty(2 * self._block, dtype=np.float32)
        self._needs_upto = 0  # limiter needs are known for sub-blocks before this
        self._done = False

    def _clamp(self, gain_db: float) -> float:
        s = self.settings
        return min(s.max_boost_db, max(-s.max_cut_db, gain_db))

    # --- loudness gain ---------------------------------------------------------------

    def _wanted_db(self) -> float:
        """Target minus the estimate: this clause's measurement pooled with the reply's."""
        s = self.settings
        return self._clamp(s.target_lufs - pooled_lufs(self.tracker.lufs, s.reply_weight_s,
                                                       self._clause))

    def _start(self, n_knots: int) -> None:
        """Set the first gain: it holds over the blocks measured before it was decided."""
        g = self._wanted_db()
        self._knots_db = [g] * n_knots
        self._knots = [10.0 ** (g / 20.0)] * n_knots

    def _measure(self) -> None:
        """Measure every complete block; each decides the gain two knots ahead."""
        s, block, seconds = self.settings, self._block, self._block_s
        while self._measure_at <= self._n_in:
            a = self._measure_at - block
            ms = block_mean_square(self._span(a, a + block), self._weights)
            if self._previous is not None:
                # BS.1770's gating block: 400 ms (here a new one every 200 ms).
                window = (self._previous + ms) / 2
                self.tracker.add_block(window, seconds)
                self._clause.add(window, seconds)
            self._previous = ms
            self._measured += 1
            self._measure_at += block
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
        """Input samples [a, b) times the loudness gain, block by block (a push longer
        than the gain curve at hand)."""
        B = self._block
        y = np.empty(b - a, dtype=np.float32)
        pos = a
        while pos < b:
            k = pos // B
            stop = min(b, (k + 1) * B)
            curve = self._gain_curve(k, stop)[pos - k * B : stop - k * B]
            np.multiply(self._span(pos, stop), curve, out=y[pos - a : stop - a])
            pos = stop
        return y

    def _gain_curve(self, k: int, b: int) -> np.ndarray:
        """The loudness gain per sample (float32) from the start of block ``k``, as far
        towards sample ``b`` as the knots allow (block k, or blocks k and k + 1): each block
        a linear ramp from its knot to the next. Computed once per block, not per push
        (pushes of 40 ms slice it five times), and two blocks at once so that a push across
        a block edge is one multiply. Each sample's gain is the same float32 expression
        whatever the slice, so chunking cannot change it."""
        B, curve = self._block, self._curve
        if self._curve_block != k:
            if self._curve_block == k - 1 and self._curve_end == (k + 1) * B:
                curve[:B] = curve[B:]  # block k was the second half
            else:
                self._ramp_into(curve[:B], k)
            self._curve_block, self._curve_end = k, (k + 1) * B
        if b > self._curve_end == (k + 1) * B and k + 2 < len(self._knots):
            self._ramp_into(curve[B:], k + 1)
            self._curve_end = (k + 2) * B
        return curve

    def _ramp_into(self, out: np.ndarray, k: int) -> None:
        """Block ``k``'s gain per sample: from knot k towards knot k + 1, in place."""
        g0, g1 = self._knots[k], self._knots[k + 1]
        np.multiply(self._ramp, np.float32(g1 - g0), out=out)
        np.add(out, np.float32(g0), out=out)

    def _gain_at(self, positions: np.ndarray, a: int, b: int) -> np.ndarray:
        """The loudness gain (linear) at sample ``positions`` within [a, b] (knots and ramps
        as applied; only the knots around them are handed to ``np.interp``)."""
        k = a // self._block
        knots = self._knots[k : b // self._block + 2]
        xp = np.arange(k, k + len(knots), dtype=np.float64) * self._block
        return np.interp(positions, xp, knots)

    # --- limiter ---------------------------------------------------------------------

    def _near_ceiling(self, mag: np.ndarray, a: int, b: int, top: float) -> None:
        """Limiter needs over input [a, b) (sub-block aligned), where some sample, times the
        largest loudness gain ``top`` over it, comes near the ceiling; ``mag`` is the
        magnitude of the input from ``a`` on (to ``b`` or the last sample pushed)."""
        sub = self._sub
        first = a // sub
        # Only sub-blocks with such a sample can come near the ceiling: the limiter looks
        # at those alone, with the largest loudness gain over each (at one of its ends: the
        # gain is linear in between).
        over = np.flatnonzero(mag > self._candidate / top * _SKIP_MARGIN).tolist()
        subs = sorted({i // sub for i in over})
        starts = [(first + i) * sub for i in subs]
        g = self._gain_at(np.array(starts + [p + sub for p in starts], dtype=np.float64), a, b)
        gain = np.maximum(g[: len(subs)], g[len(subs) :])
        x = self._window(a - TP_TAPS, b + TP_TAPS)
        self._limiter.add_needs(x, first, np.array(subs), gain)

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

    def _compact(self, n: int) -> int:
        """Make room for ``n`` more samples: move what is held to the front of the buffer
        (or of a twice larger one); returns where the next sample goes."""
        end = self._n_in + self._off
        held = self._n_in - self._base
        need = held + n
        buf = self._buf if 2 * need <= len(self._buf) else np.empty(2 * need, np.float32)
        buf[:held] = self._buf[end - held : end]  # numpy copies overlapping views safely
        self._buf, self._off = buf, -self._base
        return held

    def _emit(self, upto_sub: int) -> np.ndarray:
        """The samples before sub-block ``upto_sub`` (or the end) not emitted yet, with the
        loudness gain and, where it has needs in reach, the limiter's. It runs on every
        push, so the usual case (one block, nothing near the ceiling) takes few steps."""
        sub, a = self._sub, self._out
        first = a // sub
        if upto_sub <= first:
            return _EMPTY
        B, off, n_in = self._block, self._off, self._n_in
        # Limiter needs up to the look-ahead (input is final up to there plus the true-peak
        # context, or the stream has ended): none unless some sample there, times the
        # largest loudness gain over it, comes near the ceiling.
        na, nb = self._needs_upto * sub, (upto_sub + self._la + 2) * sub
        if nb > na:
            self._needs_upto = nb // sub
            end = min(nb, n_in)  # zeros after the last sample pushed
            if end > na:
                mag = np.abs(self._buf[na + off : end + off])
                top = max(self._knots[na // B : (nb - 1) // B + 2])  # over [na, nb)
                # argmax is SIMD in numpy, max is not (3x)
                if float(mag[mag.argmax()]) * top > self._candidate:
                    self._near_ceiling(mag, na, nb, top)
        b = min(upto_sub * sub, n_in)
        k = a // B
        if k != self._curve_block or b > self._curve_end:
            self._gain_curve(k, b)
        if b <= self._curve_end:  # within the curve at hand: every push but the longest
            ka = k * B
            y = self._buf[a + off : b + off] * self._curve[a - ka : b - ka]
        else:
            y = self._apply_gain(a, b)
        if self._need_at:
            self._limit(y, a, first, upto_sub)
        self._out = b
        # Hold on to the true-peak context and the block being measured, no more.
        keep = min(b - TP_TAPS, self._measured * B)
        if keep > self._base:
            self._base = keep
        return y

    def _limit(self, y: np.ndarray, a: int, first: int, upto_sub: int) -> None:
        limiter = self._limiter
        lim = limiter.gain(first, upto_sub)
        if lim is not None:
            limiter.apply(y, a, first, lim)
        limiter.forget(first - self._rel - 2)

    def push(self, x: np.ndarray) -> np.ndarray:
        if self._done:
            raise RuntimeError("LevelStage.push after flush")
        n = len(x)
        if not n:
            return _EMPTY
        end = self._n_in + self._off
        if end + n > len(self._buf):
            end = self._compact(n)
        self._buf[end : end + n] = x  # as float32
        self._n_in += n
        if self._n_in >= self._measure_at:
            self._measure()
        if not self._knots:
            return _EMPTY  # still measuring the start of the utterance
        # A sub-block is ready once its look-ahead and true-peak context have arrived.
        return self._emit(self._n_in // self._sub - self._lag)

    def flush(self) -> np.ndarray:
        if self._done:
            return _EMPTY
        self._done = True
        if not self._knots:  # shorter than the first measurement: decide on what there is
            self._start(self._n_in // self._block + 2)
        y = self._emit(-(-self._n_in // self._sub))
        self.tracker.gain_db = self._knots_db[-1]
        return y
