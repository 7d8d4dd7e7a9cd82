"""Cut an encoded byte stream into fixed-size frames (20 ms = 160 bytes of 8 kHz mu-law).

Shaped like livekit's ``AudioByteStream``: ``push(data)`` returns the whole frames it can
and carries the remainder to the next push, so chunk boundaries never cause padding.
Only ``flush()`` at the end of an utterance pads, and only the one last partial frame.
"""

from __future__ import annotations


class Framer:
    def __init__(self, frame_bytes: int, pad_byte: int) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        if not 0 <= pad_byte <= 0xFF:
            raise ValueError("pad_byte must be a byte value")
        self.frame_bytes = frame_bytes
        self.pad_byte = pad_byte
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes carried over, waiting for the rest of their frame."""
        return len(self._buf)

    def push(self, data: bytes) -> list[bytes]:
        self._buf += data
        n = len(self._buf) // self.frame_bytes
        if n == 0:
            return []
        fb = self.frame_bytes
        frames = [bytes(self._buf[i * fb : (i + 1) * fb]) for i in range(n)]
        del self._buf[: n * fb]
        return frames

    def flush(self) -> list[bytes]:
        if not self._buf:
            return []
        # Pad with the codec's silence so the tail of the last frame is quiet, not a click.
        last = bytes(self._buf) + bytes([self.pad_byte]) * (self.frame_bytes - len(self._buf))
        self._buf.clear()
        return [last]
