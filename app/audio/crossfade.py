"""Blend the overlaps that an engine declares between consecutive chunks.

Chatterbox re-decodes a little audio at each chunk boundary: a chunk's first ``overlap``
samples cover the same time as the last ``overlap`` samples already pushed. Cutting one
copy away clicks; playing both repeats audio. The crossfader holds back the last
``max_overlap`` samples of the stream so that a declared overlap can be blended with a
complementary raised-cosine (cos^2 out, sin^2 in; the weights sum to 1, so two identical
copies give the original back).

Seams with ``overlap == 0`` are passed through untouched, so the output is independent of
where an engine cut undeclared chunks. Output length is always
``sum(len(chunk)) - sum(chunk.overlap)``: nothing lost, nothing repeated.
"""

from __future__ import annotations

import numpy as np

from app.audio.chunk import AudioChunk

_EMPTY = np.zeros(0, dtype=np.float32)


def fade_in_weights(n: int) -> np.ndarray:
    """sin^2 ramp over ``n`` samples, sampled at the midpoints so no weight is 0 or 1.

    The fade-out is ``1 - w`` (= cos^2): the pair sums to 1 exactly in real arithmetic.
    """
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)


class Crossfader:
    def __init__(self, max_overlap: int) -> None:
        if max_overlap < 0:
            raise ValueError("max_overlap must be >= 0")
        self.max_overlap = max_overlap
        # The tail of the stream not emitted yet: the only samples a later overlap can blend.
        self._held = _EMPTY
        self._weights: dict[int, np.ndarray] = {}

    def _fade_in(self, n: int) -> np.ndarray:
        w = self._weights.get(n)
        if w is None:
            w = self._weights[n] = fade_in_weights(n)
        return w

    def push(self, chunk: AudioChunk) -> np.ndarray:
        x = np.asarray(chunk.samples, dtype=np.float32)
        k = chunk.overlap
        if k:
            held = self._held
            m = min(k, len(held))
            # The chunk's sample i covers stream position end - k + i, so its first k - m
            # samples repeat audio that has already left: drop them rather than repeat it.
            if m:
                w = self._fade_in(m)
                blended = held[-m:] * (1.0 - w) + x[k - m : k] * w
                x = np.concatenate((held[:-m], blended, x[k:]))
            else:
                x = np.concatenate((held, x[k:]))
        elif len(self._held):
            x = np.concatenate((self._held, x))
        if self.max_overlap == 0:
            self._held = _EMPTY
            return x
        cut = max(len(x) - self.max_overlap, 0)
        # Copy the tail so the held samples never alias a caller's buffer.
        self._held = x[cut:].copy()
        return x[:cut]

    def flush(self) -> np.ndarray:
        out, self._held = self._held, _EMPTY
        return out
