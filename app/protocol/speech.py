"""Request bodies of the HTTP audio adapters and the names of the formats they offer.

``POST /v1/audio/speech/stream`` (our raw chunked stream, and the seed-003 clients' call:
``{"text", "temperature", "top_p"}``, played as 24 kHz PCM) and its socket twin
``WS /v1/audio/speech/stream/ws`` use our own format names with the codec spelled out
(``pcm_24000`` default, ``pcm_16000``, ``mulaw_8000``); ``POST /v1/audio/speech``
follows OpenAI's speech API (``app.protocol.openai``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictStr

from app.audio import OutputFormat, get_output_format
from app.errors import InvalidRequest
from app.protocol.requests import _Strict

# Stream format name -> (our output format, Content-Type of the response).
STREAM_FORMATS: dict[str, tuple[str, str]] = {
    "pcm_16000": ("pcm_16000", "application/octet-stream"),
    "pcm_24000": ("pcm_24000", "application/octet-stream"),
    "mulaw_8000": ("mulaw", "audio/basic"),
}


class SpeechStreamRequest(_Strict):
    """``POST /v1/audio/speech/stream``: raw audio as it is generated, chunked."""

    text: StrictStr = Field(description="Text to speak.")
    voice_id: StrictStr = Field("default", description="Voice id; `default` is the built-in voice.")
    preset: StrictStr = Field("balanced", description="One of the presets in /health.")
    format: StrictStr = Field(
        "pcm_24000", description="pcm_24000 (default), pcm_16000 (16-bit LE mono) or mulaw_8000."
    )
    speed: float = Field(1.0, ge=0.25, le=4.0, allow_inf_nan=False,
                         description="Speaking rate where the engine supports it (piper).")
    temperature: float | None = Field(
        None, gt=0.0, le=2.0, allow_inf_nan=False,
        description="Sampling temperature where the engine samples (Chatterbox); else ignored.",
    )
    top_p: float | None = Field(
        None, gt=0.0, le=1.0, allow_inf_nan=False,
        description="Nucleus sampling where the engine samples (Chatterbox); else ignored.",
    )

    def sampling(self) -> dict[str, Any]:
        """``open_speech`` keywords for the sampling fields that were given."""
        out: dict[str, Any] = {"temperature": self.temperature}
        if self.top_p is not None:
            out["extra"] = {"top_p": self.top_p}
        return out


def stream_format(name: str) -> tuple[OutputFormat, str]:
    """(output format, Content-Type) for a stream format name; unknown names list the valid."""
    try:
        ours, media_type = STREAM_FORMATS[name]
    except KeyError:
        raise InvalidRequest(
            f"Unknown format: {name[:32]!r}. Valid formats: {', '.join(STREAM_FORMATS)}"
        ) from None
    return get_output_format(ours), media_type
