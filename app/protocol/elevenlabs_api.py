"""ElevenLabs' text-to-speech API shapes: output formats, the HTTP request, alignment, errors.

Protocol notes, from the clients' own source (elevenlabs 2.78, pipecat-ai 1.14,
livekit-plugins-elevenlabs 1.8.9), which is what these shapes follow:

HTTP (``POST /v1/text-to-speech/{voice_id}`` + ``/stream``, ``/with-timestamps``,
``/stream/with-timestamps``):

- key in the ``xi-api-key`` header; query ``output_format`` (default ``mp3_44100_128``),
  ``enable_logging`` and ``optimize_streaming_latency`` (both accepted and ignored);
- body ``{"text", "model_id", "language_code", "voice_settings", "seed", "previous_text",
  "next_text", "apply_text_normalization", ...}``; the SDK leaves out what the caller did
  not set, LiveKit sends ``voice_settings: null`` and ``apply_text_normalization: "auto"``,
  so unknown and null fields are accepted;
- ``convert`` and ``stream`` read the body as bytes (LiveKit's ``synthesize()`` posts to
  ``/stream`` with ``output_format=mp3_22050_32`` and requires an ``audio/*`` content type);
- ``/with-timestamps`` answers one JSON object ``{"audio_base64", "alignment",
  "normalized_alignment"}``; ``/stream/with-timestamps`` answers one such object per line
  (pipecat's ``ElevenLabsHttpTTSService`` splits on newlines; the SDK uses ``iter_lines``).
  Alignment here is ``{"characters", "character_start_times_seconds",
  "character_end_times_seconds"}`` in seconds from the start of the whole utterance
  (pipecat takes the largest end time as the utterance's duration);
- errors: ``{"detail": {"status": code, "message": text}}``; the SDK raises ``ApiError``
  with the status, ``UnprocessableEntityError`` for 422 (request validation).

WebSockets (``multi-stream-input`` and ``stream-input``: ``app.protocol.elevenlabs_ws``)
carry alignment as ``{"chars", "charStartTimesMs", "charDurationsMs"}`` in milliseconds
from the start of each message's own audio (pipecat advances its word clock by each
message's last start + duration).

Output formats by ElevenLabs' names: ``pcm_{8000,16000,22050,24000,32000,44100,48000}``
(16-bit little-endian mono, no header), ``ulaw_8000`` and ``alaw_8000`` (G.711, no header),
``mp3_22050_32``, ``mp3_24000_48``, ``mp3_44100_{32,64,96,128,192}`` and
``opus_48000_{32,64,96,128,192}`` (Ogg), the last two only where their encoder loads;
all in the one registry, ``app.audio.formats``. Alignment timings are estimates
(``app.text.alignment``).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import Field, StrictInt, StrictStr

from app.audio.formats import OutputFormat, resolve_format
from app.protocol import events as ev
from app.protocol.encoded import EncodedAudioSerializer
from app.protocol.requests import _Strict
from app.protocol.serializers import WireMessage
from app.text.alignment import CharTimings, SpokenChunkAligner

DEFAULT_HTTP_FORMAT = "mp3_44100_128"


def elevenlabs_format(name: str) -> OutputFormat:
    """ElevenLabs' ``output_format`` names; another is ``unsupported_output_format``."""
    return resolve_format("elevenlabs", name)


class ElevenLabsSpeechRequest(_Strict):
    """The body of the HTTP text-to-speech routes (unknown fields are ignored)."""

    text: StrictStr = Field(description="Text to speak.")
    model_id: StrictStr | None = Field(None, description="Accepted and reported (X-Model).")
    language_code: StrictStr | None = Field(None, description="ISO 639-1, for multilingual.")
    voice_settings: dict[str, Any] | None = Field(
        None, description="Accepted; `speed` (0.7-1.2) is honoured where the engine can."
    )
    seed: StrictInt | None = Field(None, ge=0, le=4_294_967_295)
    previous_text: StrictStr | None = None
    next_text: StrictStr | None = None
    apply_text_normalization: Literal["auto", "on", "off"] | None = Field(
        None, description="`off` reads the text as written; `auto`/`on` normalize it."
    )

    @property
    def normalize(self) -> bool:
        return self.apply_text_normalization != "off"

    def speed(self) -> float:
        value = (self.voice_settings or {}).get("speed")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(1.2, max(0.7, float(value)))
        return 1.0


def http_alignment(timings: CharTimings, offset_s: float) -> dict[str, list[Any]]:
    """HTTP alignment: characters with start/end in seconds from the utterance's start."""
    starts = [round(offset_s + ms / 1000.0, 3) for ms in timings.start_ms]
    ends = [round(offset_s + (s + d) / 1000.0, 3)
            for s, d in zip(timings.start_ms, timings.duration_ms, strict=True)]
    return {
        "characters": timings.chars,
        "character_start_times_seconds": starts,
        "character_end_times_seconds": ends,
    }


class TimestampsSerializer:
    """``/stream/with-timestamps``: one JSON line per engine chunk, with the characters it
    covers (``SpokenChunkAligner``) timed in seconds from the start of the utterance; the last
    line carries the encoder's tail and whatever characters are left."""

    done = False

    def __init__(self, fmt: OutputFormat, text: str) -> None:
        self._audio = EncodedAudioSerializer(fmt)
        self._text = text
        self._aligner: SpokenChunkAligner | None = None
        self._offset = 0.0

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            line = self._line(self._audio.encode(event), event.seconds, event)
            self._offset += event.seconds
            return line
        if isinstance(event, ev.UtteranceDone):
            return self._line(self._audio.encode(event), 0.0, None, last=True)
        return []

    def _take(
        self, seconds: float, event: ev.Audio | None, last: bool
    ) -> tuple[CharTimings, CharTimings]:
        """(the text as sent, what the engine read) for the next ``seconds`` of audio; the
        engine's reading (``Audio.spoken``) is known from the first audio event."""
        if self._aligner is None:
            spoken = event.spoken if event is not None else None
            self._aligner = SpokenChunkAligner(self._text, spoken)
        return self._aligner.take(seconds, last=last)

    def _line(
        self, data: bytes, seconds: float, event: ev.Audio | None, *, last: bool = False
    ) -> list[WireMessage]:
        timings, said = self._take(seconds, event, last)
        if not data and not timings.chars and not said.chars:
            return []
        out: dict[str, Any] = {"audio_base64": base64.b64encode(data).decode("ascii")}
        if timings.chars:
            out["alignment"] = http_alignment(timings, self._offset)
        if said.chars:
            out["normalized_alignment"] = http_alignment(said, self._offset)
        return [json.dumps(out, separators=(",", ":")).encode() + b"\n"]


def http_error(message: str, code: str, status: int, param: str | None = None) -> dict[str, Any]:
    """ElevenLabs' HTTP error body (what its SDK puts in ``ApiError.body``)."""
    detail: dict[str, Any] = {"status": code, "message": message}
    if param:
        detail["param"] = param
    return {"detail": detail}
