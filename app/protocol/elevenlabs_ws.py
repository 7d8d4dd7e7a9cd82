"""ElevenLabs' text-to-speech sockets: the messages of ``stream-input`` and ``multi-stream-input``.

Protocol notes, from the clients' own source (elevenlabs 2.78 ``convert_realtime``,
pipecat-ai 1.14 ``ElevenLabsTTSService``, livekit-plugins-elevenlabs 1.8.9 ``TTS.stream``):

``WS /v1/text-to-speech/{voice_id}/multi-stream-input`` (pipecat, LiveKit):

- query: ``model_id``, ``output_format`` (pipecat: ``pcm_<sample rate>``; LiveKit: its
  encoding, ``mp3_22050_32`` by default), ``auto_mode`` (pipecat ``true`` unless it
  aggregates tokens), ``inactivity_timeout`` (LiveKit 180), ``sync_alignment=true``
  (LiveKit), ``language_code``, ``enable_ssml_parsing``, ``enable_logging``,
  ``apply_text_normalization``; the key in the ``xi-api-key`` header;
- a context opens with ``{"text": " ", "context_id", "voice_settings"?,
  "generation_config"?}``; then ``{"text": "...", "context_id"}`` (LiveKit: words with their
  trailing space; pipecat: sentences); ``{"context_id", "flush": true}`` (LiveKit also
  ``{"text": "", "context_id", "flush": true}``) speaks what is buffered; ``{"context_id",
  "close_context": true}`` ends the context's input; both clients send it right after the
  last flush and wait for the rest of the audio and ``isFinal``; pipecat also sends it on a
  barge-in and ignores whatever still comes for that context;
- keepalive: ``{"text": ""}`` or ``{"text": "", "context_id"}`` (pipecat): no effect;
- ``{"close_socket": true}``: pipecat, at the end, waits up to 2 s for the server to close;
- replies: ``{"audio": base64, "isFinal": false, "alignment", "normalizedAlignment",
  "contextId"}`` (LiveKit reads ``contextId`` or ``context_id``, prefers
  ``normalizedAlignment``); ``{"isFinal": true, "contextId"}`` once per context; an error
  ``{"error", "message", "code", "contextId"?}`` fails that context in LiveKit.

``WS /v1/text-to-speech/{voice_id}/stream-input`` (the ElevenLabs SDK's
``convert_realtime``): one implicit context; ``{"text": " ", "try_trigger_generation",
"voice_settings", "generation_config"}`` opens it, ``{"text": "...",
"try_trigger_generation": true}`` as text arrives, ``{"text": ""}`` ends the input; replies
have no ``contextId``; the SDK yields every ``audio`` until the socket closes, and treats a
close other than 1000 as an error (so a socket that cannot serve must not close with 1000).

Alignment on both is ``{"chars", "charStartTimesMs", "charDurationsMs"}``, milliseconds
from the start of that message's audio (estimated: ``app.text.alignment``).
"""

from __future__ import annotations

import base64
from typing import Any

from app.text.alignment import CharTimings


class ElevenLabsSocketSerializer:
    """One per connection: what the context session says, in ElevenLabs' socket shapes."""

    def __init__(self, *, multi: bool) -> None:
        self.multi = multi  # replies carry contextId

    def _tag(self, message: dict[str, Any], context_id: str | None) -> dict[str, Any]:
        if self.multi and context_id is not None:
            message["contextId"] = context_id
        return message

    def audio(
        self, data: bytes, timings: CharTimings | None, context_id: str | None
    ) -> dict[str, Any]:
        alignment = timings.to_dict() if timings is not None and timings.chars else None
        return self._tag({
            "audio": base64.b64encode(data).decode("ascii"),
            "isFinal": False,
            "alignment": alignment,
            "normalizedAlignment": alignment,
        }, context_id)

    def final(self, context_id: str | None) -> dict[str, Any]:
        return self._tag({"isFinal": True}, context_id)

    def error(self, message: str, code: str, context_id: str | None = None) -> dict[str, Any]:
        return self._tag({"error": message, "message": message, "code": code}, context_id)

    def translate_error(self, message: dict[str, Any]) -> dict[str, Any]:
        """A connection-level error in our shape (rate limit, bad JSON, ...) in theirs."""
        if message.get("type") == "error" or ("error" in message and "message" not in message):
            extra = {k: v for k, v in message.items() if k == "request_id"}
            return {**self.error(str(message.get("error")), str(message.get("code", "error"))),
                    **extra}
        return message
