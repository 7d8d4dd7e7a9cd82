"""The output formats a client can ask for on our own endpoints, and their frame sizes.

``wav`` is not here: it is the engine's rate and is not framed, so the caller builds its
pipeline with ``frame_ms=None`` at the engine rate and wraps the bytes with ``wav_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.errors import InvalidRequest

Encoding = Literal["mulaw", "alaw", "pcm16"]

_BYTES_PER_SAMPLE = {"mulaw": 1, "alaw": 1, "pcm16": 2}


@dataclass(frozen=True)
class OutputFormat:
    name: str
    encoding: Encoding
    sample_rate: int
    frame_ms: int = 20

    @property
    def bytes_per_sample(self) -> int:
        return _BYTES_PER_SAMPLE[self.encoding]

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    @property
    def frame_bytes(self) -> int:
        return self.samples_per_frame * self.bytes_per_sample


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("mulaw", "mulaw", 8000),
        OutputFormat("alaw", "alaw", 8000),
        OutputFormat("pcm_8000", "pcm16", 8000),
        OutputFormat("pcm_16000", "pcm16", 16000),
        OutputFormat("pcm_22050", "pcm16", 22050),
        OutputFormat("pcm_24000", "pcm16", 24000),
        OutputFormat("pcm_44100", "pcm16", 44100),
    )
}


def get_output_format(name: str) -> OutputFormat:
    """The format called ``name``; an unknown name is a client error listing the valid ones."""
    try:
        return OUTPUT_FORMATS[name]
    except KeyError:
        valid = ", ".join(OUTPUT_FORMATS)
        raise InvalidRequest(f"Unsupported output_format: {name!r}; valid: {valid}") from None
