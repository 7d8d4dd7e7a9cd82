"""A complete mono 16-bit WAV file from PCM16 bytes (the ``wav`` output format)."""

from __future__ import annotations

import io
import wave


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    """Wrap little-endian 16-bit mono ``pcm16`` in a WAV header, giving a whole file."""
    if len(pcm16) % 2:
        raise ValueError("pcm16 must hold whole 16-bit samples")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm16)
    return buf.getvalue()
