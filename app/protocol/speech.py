"""The request body of ``POST /v1/audio/speech/stream`` (formats: ``app.audio.formats``).

``POST /v1/audio/speech/stream`` (our raw chunked stream, and the seed-003 clients' call:
``{"text", "temperature", "top_p"}``, played as 24 kHz PCM) and its socket twin
``WS /v1/audio/speech/stream/ws`` use our own format names with the codec spelled out
(``pcm_24000`` default, ``pcm_16000``, ``mulaw_8000``); ``POST /v1/audio/speech``
follows OpenAI's speech API (``app.protocol.openai``).
"""

from __future__ import annotations

from pydantic import Field, StrictStr

from app.protocol.requests import Language, Normalize, PresetName, Speed, Text, VoiceId, _Strict


class SpeechStreamRequest(_Strict):
    """``POST /v1/audio/speech/stream``: raw audio as it is generated, chunked."""

    text: Text
    voice_id: VoiceId = "default"
    preset: PresetName = "balanced"
    format: StrictStr = Field(
        "pcm_24000", description="pcm_24000 (default), pcm_16000 (16-bit LE mono) or mulaw_8000."
    )
    speed: Speed = 1.0
    language: Language = None
    temperature: float | None = Field(
        None, gt=0.0, le=2.0, allow_inf_nan=False,
        description="Sampling temperature where the engine samples (Chatterbox); else ignored.",
    )
    top_p: float | None = Field(
        None, gt=0.0, le=1.0, allow_inf_nan=False,
        description="Nucleus sampling where the engine samples (Chatterbox); else ignored.",
    )
    normalize: Normalize = True
