"""Request bodies and socket messages, validated before the first byte of a response.

Strict types: a number where text belongs is an error, not a string. Fields that several
routes share are defined once here (``Text``, ``VoiceId``, ``PresetName``, ``Speed``,
``Language``), so one field is validated the same way, with the same message, everywhere.
Limits that come from settings or from the engine (text length, languages, formats) are
checked when the utterance opens (``app.sessions.utterance``), since models are built once.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from app.errors import InvalidRequest

Text = Annotated[StrictStr, Field(description="Text to speak.")]
VoiceId = Annotated[
    StrictStr, Field(description="Voice id; `default` is the engine's built-in voice.")
]
PresetName = Annotated[StrictStr, Field(description="One of the presets in /health.")]
Speed = Annotated[
    float,
    Field(ge=0.25, le=4.0, allow_inf_nan=False,
          description="Speaking rate, 0.25-4.0, where the engine supports it (piper)."),
]
Language = Annotated[
    StrictStr | None,
    Field(max_length=16, description="Language code the engine lists in /health "
          "(capabilities.languages); default: the engine's first."),
]
Normalize = Annotated[
    StrictBool,
    Field(description="Read numbers, money, times, dates, phones and codes as a phone agent "
          "says them (TEXT_NORMALIZATION; see POST /normalize); false: as written."),
]
StreamSid = Annotated[
    StrictStr | None,
    Field(description="Twilio streamSid: audio goes out as Twilio media events (sockets)."),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class SynthesizeRequest(_Strict):
    """``POST /synthesize`` and one request on ``/ws/synthesize``."""

    text: Text
    voice_id: VoiceId = "default"
    preset: PresetName = "balanced"
    output_format: StrictStr = Field(
        "mulaw", description="mulaw, alaw, pcm_8000, pcm_16000, pcm_24000 or wav."
    )
    stream_sid: StreamSid = None
    speed: Speed = 1.0
    language: Language = None
    normalize: Normalize = True


class InitMessage(_Strict):
    """``{"type": "init"}`` on ``/ws/synthesize-stream``."""

    type: StrictStr
    voice_id: VoiceId
    preset: PresetName = "adaptive"
    output_format: StrictStr = "mulaw"
    stream_sid: StreamSid = None
    speed: Speed = 1.0
    language: Language = None
    normalize: Normalize = True


class TextMessage(_Strict):
    type: StrictStr
    content: StrictStr


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def parse(model: type[_Strict], data: Any) -> Any:
    """``model`` from decoded JSON, or ``InvalidRequest`` with a readable message."""
    if not isinstance(data, dict):
        raise InvalidRequest("Invalid request: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
