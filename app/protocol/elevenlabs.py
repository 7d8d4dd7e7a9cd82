"""ElevenLabs' stream-input wire format, from our streaming session's events.

``WS /v1/text-to-speech/{voice_id}/stream-input`` runs the same ``StreamSession`` as
``/ws/synthesize-stream``; this serializer turns that session's events into the messages
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

from collections import deque
from typing import Any

from app.audio.formats import OutputFormat, resolve_format
from app.protocol import events as ev
from app.protocol.serializers import WireMessage, b64, dumps
from app.text.alignment import estimate_char_timings


def elevenlabs_format(name: str) -> OutputFormat:
    """ElevenLabs' ``output_format`` names (``ulaw_8000``, ``pcm_16000``, ...); mp3/opus not."""
    return resolve_format("elevenlabs", name)


def error(message: str, code: str) -> dict[str, Any]:
    return {"error": message, "message": message, "code": code}


class StreamInputSerializer:
    """Per connection: stream-session events in, ElevenLabs messages out."""

    def __init__(self, fmt: OutputFormat) -> None:
        self.fmt = fmt
        self._clause_audio = bytearray()
        self._ends: deque[bool] = deque()  # for each end sent to the session: is it final?
        self.done = False

    def expect_end(self, *, final: bool) -> None:
        """The adapter ended a reply on the session (``final``: the client's empty text)."""
        self._ends.append(final)

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            self._clause_audio += event.data
            return []
        if isinstance(event, ev.ClauseDone):
            return self._clause(event.text)
        if isinstance(event, ev.ReplyDone):
            out = self._clause("") if self._clause_audio else []
            if self._ends.popleft() if self._ends else True:
                self.done = True
                out.append(dumps({"isFinal": True}))
            return out
        if isinstance(event, ev.Error):
            return [dumps(error(event.message, event.code))]
        return []

    def _clause(self, text: str) -> list[WireMessage]:
        audio = bytes(self._clause_audio)
        self._clause_audio.clear()
        if not audio:
            return []
        alignment = estimate_char_timings(text, self.fmt.seconds(len(audio)) * 1000.0).to_dict()
        return [dumps({
            "audio": b64(audio),
            "isFinal": False,
            "alignment": alignment,
            "normalizedAlignment": alignment,
        })]
