"""OpenAI's ``stream_format: "sse"`` for speech: audio deltas as server-sent events.

As OpenAI documents it and LiveKit's ``openai.TTS`` parses it (it reads only ``data:``
lines and dispatches on ``type``):

    data: {"type": "speech.audio.delta", "audio": "<base64 of the response_format's bytes>"}
    ...
    data: {"type": "speech.audio.done", "usage": {"input_tokens", "output_tokens", "total_tokens"}}

Each event ends with a blank line; the body is ``text/event-stream``. The deltas of an
``mp3`` or ``opus`` response are consecutive pieces of one stream (join them, then decode);
a whole-file format (``wav``, ``flac``) comes as one delta at the end. We count no tokens:
``usage`` is all zeros.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from app.protocol import events as ev
from app.protocol.serializers import Serializer, WireMessage

MEDIA_TYPE = "text/event-stream"


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class OpenAISseSerializer:
    """Wraps the serializer of the response format: its bytes become delta events."""

    done = False

    def __init__(self, audio: Serializer) -> None:
        self._audio = audio

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        out: list[WireMessage] = [
            _event({"type": "speech.audio.delta",
                    "audio": base64.b64encode(data).decode("ascii")})
            for data in self._audio.serialize(event) if isinstance(data, bytes) and data
        ]
        if isinstance(event, ev.UtteranceDone):
            usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
            out.append(_event({"type": "speech.audio.done", "usage": usage}))
        return out
