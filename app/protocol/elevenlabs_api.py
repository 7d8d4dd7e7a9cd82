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
``opus_48000_{32,64,96,128,192}`` (Ogg), the last two only where their encoder loads
(``app.audio.compressed``). Alignment timings are estimates (``app.text.alignment``).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, StrictInt, StrictStr

from app.audio.compressed import (
    StreamFormat,
    available_codecs,
    compressed_stream,
    pcm_stream,
)
from app.audio.formats import get_output_format
from app.errors import InvalidRequest
from app.protocol.requests import _Strict
from app.text.alignment import CharTimings

DEFAULT_HTTP_FORMAT = "mp3_44100_128"
_PCM_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
_MP3 = (("mp3_22050_32", 22050, 32), ("mp3_24000_48", 24000, 48),
        *((f"mp3_44100_{k}", 44100, k) for k in (32, 64, 96, 128, 192)))
_OPUS = tuple((f"opus_48000_{k}", 48000, k) for k in (32, 64, 96, 128, 192))


@functools.cache
def elevenlabs_formats() -> dict[str, StreamFormat]:
    """Every ElevenLabs output format this process can produce, by ElevenLabs' name."""
    out = {f"pcm_{r}": pcm_stream(f"pcm_{r}", r) for r in _PCM_RATES}
    out["ulaw_8000"] = StreamFormat("ulaw_8000", get_output_format("mulaw"), None, "audio/basic")
    out["alaw_8000"] = StreamFormat("alaw_8000", get_output_format("alaw"), None, "audio/x-alaw")
    codecs = available_codecs()
    if "mp3" in codecs:
        out.update({n: compressed_stream(n, "mp3", r, k) for n, r, k in _MP3})
    if "opus" in codecs:
        out.update({n: compressed_stream(n, "opus", r, k) for n, r, k in _OPUS})
    return out


def stream_format(name: str) -> StreamFormat:
    """The format called ``name``; an unknown one is ``unsupported_output_format``."""
    formats = elevenlabs_formats()
    try:
        return formats[name]
    except KeyError:
        raise InvalidRequest(
            f"Unsupported output_format: {name[:32]!r}. Supported here: {', '.join(formats)}",
            code="unsupported_output_format",
        ) from None


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
    apply_text_normalization: StrictStr | None = None

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


def http_error(message: str, code: str, status: int, param: str | None = None) -> dict[str, Any]:
    """ElevenLabs' HTTP error body (what its SDK puts in ``ApiError.body``)."""
    detail: dict[str, Any] = {"status": code, "message": message}
    if param:
        detail["param"] = param
    return {"detail": detail}
