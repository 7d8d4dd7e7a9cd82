"""OpenAI's speech API shapes (``POST /v1/audio/speech``): the request and the error body.

So that OpenAI-compatible TTS clients (the ``openai`` SDK, pipecat's and LiveKit's OpenAI
TTS) work with only a base URL change: ``voice`` names one of our voice ids, and OpenAI's
built-in voice names map to ``default``; ``model`` is accepted and reported back; ``pcm``
is 24 kHz 16-bit little-endian mono, like OpenAI's. Errors use OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}`` with our machine-readable codes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictStr

from app.errors import InvalidRequest
from app.protocol.requests import Language, Normalize, PresetName, Speed, _Strict

OPENAI_VOICES = frozenset(
    "alloy ash ballad coral echo fable onyx nova sage shimmer verse marin cedar".split()
)


class OpenAISpeechRequest(_Strict):
    model: StrictStr = Field("tts-1", description="Accepted and reported (X-Model header).")
    input: StrictStr = Field(description="Text to speak.")
    voice: StrictStr | dict[str, Any] = Field(
        "alloy", description="A voice id, or an OpenAI voice name (= `default`), or {id}."
    )
    response_format: StrictStr = Field("mp3", description="wav, pcm, and mp3/opus/flac here.")
    speed: Speed = 1.0
    instructions: StrictStr | None = Field(None, description="Accepted and ignored.")
    stream_format: StrictStr = Field("audio", description="`audio` (raw bytes) or `sse`.")
    preset: PresetName = "balanced"  # extension: one of our presets
    language: Language = None  # extension: OpenAI infers the language from the text
    normalize: Normalize = True  # extension

    def voice_id(self, aliases: dict[str, str] | None = None) -> str:
        """Our voice id: ``aliases`` (``VOICE_ALIASES``) first, then OpenAI's names = default."""
        voice: Any = self.voice
        if isinstance(voice, dict):
            voice = voice.get("id")
        if not isinstance(voice, str):
            raise InvalidRequest("voice: expected a string or an object with a string id")
        if aliases and voice in aliases:
            return aliases[voice]
        return "default" if voice in OPENAI_VOICES else voice


def openai_error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def openai_error(message: str, code: str, status: int, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": openai_error_type(status),
            "param": param,
            "code": code,
        }
    }
