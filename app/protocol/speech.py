"""The request body of ``POST /v1/audio/speech/stream`` (formats: ``app.audio.formats``).

``POST /v1/audio/speech/stream`` (our raw chunked stream) uses our own format names with
the codec spelled out (``pcm_16000``, ``pcm_24000``, ``mulaw_8000``); ``POST /v1/audio/speech``
follows OpenAI's speech API (``app.protocol.openai``).
"""

from __future__ import annotations

from pydantic import Field, StrictStr

from app.protocol.requests import Language, PresetName, Speed, Text, VoiceId, _Strict


class SpeechStreamRequest(_Strict):
    """``POST /v1/audio/speech/stream``: raw audio as it is generated, chunked."""

    text: Text
    voice_id: VoiceId = "default"
    preset: PresetName = "balanced"
    format: StrictStr = Field(
        "pcm_16000", description="pcm_16000 (default), pcm_24000 (16-bit LE mono) or mulaw_8000."
    )
    speed: Speed = 1.0
    language: Language = None
