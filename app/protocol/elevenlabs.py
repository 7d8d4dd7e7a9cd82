"""ElevenLabs' stream-input wire format, translated from our streaming session's messages.

``WS /v1/text-to-speech/{voice_id}/stream-input`` runs the same ``StreamSession`` as
``/ws/synthesize-stream``; this serializer turns that session's messages into the ones
ElevenLabs clients read:

- audio frames of a clause are gathered and sent when its ``sentence_complete`` arrives, as
  ``{"audio": base64, "isFinal": false, "alignment": {...}, "normalizedAlignment": {...}}``
  with the clause's exact text and estimated character timings (``app.text.alignment``),
  times relative to that message's audio, exact at its start and end;
- ``complete`` after the final ``{"text": ""}`` becomes ``{"isFinal": true}``; after a
  ``flush`` it becomes nothing (the flush only forces the buffered text out);
- errors become ``{"error": text, "message": text, "code": code}``;
- ``ready`` and the rest have no ElevenLabs counterpart and are dropped.
"""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

from app.audio import OutputFormat, get_output_format
from app.errors import InvalidRequest
from app.text.alignment import estimate_char_timings

# ElevenLabs' output_format names -> ours. (Their mp3_*/opus_* formats are not offered.)
ELEVENLABS_FORMATS: dict[str, str] = {
    "ulaw_8000": "mulaw",
    "alaw_8000": "alaw",
    "pcm_8000": "pcm_8000",
    "pcm_16000": "pcm_16000",
    "pcm_22050": "pcm_22050",
    "pcm_24000": "pcm_24000",
    "pcm_44100": "pcm_44100",
}


def elevenlabs_format(name: str) -> OutputFormat:
    try:
        return get_output_format(ELEVENLABS_FORMATS[name])
    except KeyError:
        raise InvalidRequest(
            f"Unsupported output_format: {name[:32]!r}. "
            f"Supported here: {', '.join(ELEVENLABS_FORMATS)}",
            code="unsupported_output_format",
        ) from None


def error(message: str, code: str) -> dict[str, Any]:
    return {"error": message, "message": message, "code": code}


class StreamInputSerializer:
    """Per connection: our stream-session messages in, ElevenLabs messages out."""

    def __init__(self, fmt: OutputFormat) -> None:
        self.fmt = fmt
        self._clause_audio = bytearray()
        self._ends: deque[bool] = deque()  # for each end sent to the session: is it final?
        self.finished = False

    def expect_end(self, *, final: bool) -> None:
        """The adapter ended a reply on the session (``final``: the client's empty text)."""
        self._ends.append(final)

    def translate(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        kind = message.get("type")
        if kind == "audio":
            self._clause_audio += base64.b64decode(message["audio"])
            return []
        if kind == "sentence_complete":
            return self._clause(message.get("text", ""))
        if kind == "complete":
            out = self._clause("") if self._clause_audio else []
            if self._ends.popleft() if self._ends else True:
                self.finished = True
                out.append({"isFinal": True})
            return out
        if kind == "error" or "error" in message:
            return [error(str(message.get("error")), str(message.get("code", "error")))]
        return []

    def _clause(self, text: str) -> list[dict[str, Any]]:
        audio = bytes(self._clause_audio)
        self._clause_audio.clear()
        if not audio:
            return []
        seconds = len(audio) / self.fmt.bytes_per_sample / self.fmt.sample_rate
        alignment = estimate_char_timings(text, seconds * 1000.0).to_dict()
        return [{
            "audio": base64.b64encode(audio).decode("ascii"),
            "isFinal": False,
            "alignment": alignment,
            "normalizedAlignment": alignment,
        }]
