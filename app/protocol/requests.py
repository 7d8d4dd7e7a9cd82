"""Request bodies and socket messages, validated before the first byte of a response.

Strict types: a number where text belongs is an error, not a string. Limits that come from
settings (text length) are checked by ``check_text``, since models are built once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from app.errors import InvalidRequest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class SynthesizeRequest(_Strict):
    """``POST /synthesize`` and one request on ``/ws/synthesize``."""

    text: StrictStr = Field(description="Text to speak.")
    voice_id: StrictStr = Field("default", description="Voice id; `default` is the built-in voice.")
    preset: StrictStr = Field("balanced", description="One of the presets in /health.")
    output_format: StrictStr = Field(
        "mulaw", description="mulaw, alaw, pcm_8000, pcm_16000, pcm_24000 or wav."
    )
    stream_sid: StrictStr | None = Field(
        None, description="Twilio streamSid: audio goes out as Twilio media events (sockets)."
    )
    speed: float = Field(1.0, gt=0.25, le=4.0, allow_inf_nan=False)


class InitMessage(_Strict):
    """``{"type": "init"}`` on ``/ws/synthesize-stream``."""

    type: StrictStr
    voice_id: StrictStr
    preset: StrictStr = "adaptive"
    output_format: StrictStr = "mulaw"
    stream_sid: StrictStr | None = None


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


def check_text(text: str, limit: int) -> str:
    if not text.strip():
        raise InvalidRequest("text must not be empty")
    if len(text) > limit:
        raise InvalidRequest(
            f"text is too long: {len(text)} characters (limit {limit})", code="text_too_long"
        )
    return text
