"""The unit of audio that enters the chain: float32 PCM at the engine's rate.

It lives here, at the bottom, so that the audio stages depend on nothing above them:
engines produce ``AudioChunk`` (``app.engines.base`` re-exports it), the crossfader and the
pipeline consume it, and neither side knows the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioChunk:
    """A piece of engine audio.

    ``samples`` is float32 mono in [-1, 1] at the engine's rate. ``overlap`` is the number
    of leading samples that cover the same time as the last ``overlap`` samples of the
    previous chunk (a re-decoded region the crossfader blends); 0 means a plain seam.
    """

    samples: np.ndarray
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise ValueError("AudioChunk.samples must be mono (1-D)")
        if not 0 <= self.overlap <= len(self.samples):
            raise ValueError("AudioChunk.overlap must be within the chunk")
