"""HTTP bodies in a streamed format: raw audio, or MP3/Ogg encoded piece by piece.

``EncodedAudioSerializer`` is ``RawAudioSerializer`` for every format the registry streams
(``app.audio.formats``): raw formats pass as they are; ``mp3`` and ``opus`` go through the
format's incremental encoder (``app.audio.compressed``), so each engine chunk's audio
leaves as compressed bytes at once, and ``UtteranceDone`` flushes the encoder's tail. It
lives as long as its response, so it keeps the encoder's state for the whole utterance.
"""

from __future__ import annotations

from app.audio.compressed import CompressedEncoder
from app.audio.formats import OutputFormat
from app.protocol import events as ev
from app.protocol.serializers import WireMessage


class EncodedAudioSerializer:
    done = False

    def __init__(self, fmt: OutputFormat) -> None:
        codec = fmt.compressed
        self._encoder: CompressedEncoder | None = codec.encoder() if codec else None

    def encode(self, event: ev.Event) -> bytes:
        """The wire bytes of ``event`` (``b""`` when there are none yet)."""
        if isinstance(event, ev.Audio):
            return self._encoder.push(event.data) if self._encoder else event.data
        if isinstance(event, ev.UtteranceDone) and self._encoder is not None:
            return self._encoder.flush()
        return b""

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        data = self.encode(event)
        return [data] if data else []
