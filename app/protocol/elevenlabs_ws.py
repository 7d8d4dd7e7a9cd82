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
from the start of that message's audio (estimated: ``app.text.alignment``):
``normalizedAlignment`` over what the engine read (the normalized text: "$5" -> "five
dollars"), ``alignment`` over the text as the client sent it; ``apply_text_normalization=off``
makes them the same.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from app.audio.compressed import CompressedEncoder
from app.audio.formats import OutputFormat
from app.protocol import events as ev
from app.protocol.serializers import WireMessage
from app.text.alignment import CharTimings, SpokenChunkAligner, estimate_char_timings


class ElevenLabsSocketSerializer:
    """One per connection: the context session's events in ElevenLabs' socket shapes.

    Each reply (``Audio.reply``) is one context: ``bind`` tells which ``context_id`` it
    has. Per context it keeps the incremental encoder (MP3 or Ogg: one stream per
    context) and per clause the ``SpokenChunkAligner`` that assigns characters to each audio
    message; ``ClauseDone`` sends the characters the estimate left (no audio), and
    ``ReplyDone`` the encoder's tail, then ``isFinal``. On stream-input (``multi=False``)
    that ``isFinal`` ends the protocol (``done``: the outbox closes with 1000).
    """

    def __init__(self, fmt: OutputFormat, *, multi: bool) -> None:
        self.fmt = fmt
        self.multi = multi  # replies carry contextId
        self.done = False
        self._ids: dict[int, str | None] = {}
        self._encoders: dict[int, CompressedEncoder] = {}
        self._aligners: dict[tuple[int, int], SpokenChunkAligner] = {}

    def bind(self, reply: int, context_id: str | None) -> None:
        self._ids[reply] = context_id
        codec = self.fmt.compressed
        if codec is not None:
            self._encoders[reply] = codec.encoder()

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            return self._audio(event)
        if isinstance(event, ev.ClauseDone) and event.reply is not None:
            # Characters the estimate placed past the audio (or a clause with nothing to
            # say, such as trailing whitespace): at the end, with no audio.
            aligner = self._aligners.pop((event.reply, event.clause), None)
            rest, said = aligner.rest if aligner is not None else (event.text, event.text)
            timings = estimate_char_timings(rest, 0.0)
            said_timings = estimate_char_timings(said, 0.0)
            return self._message(b"", timings, self._ids.get(event.reply), said_timings)
        if isinstance(event, ev.ReplyDone) and event.reply is not None:
            return self._final(event.reply)
        if isinstance(event, ev.Error):
            extra = {k: v for k, v in event.extra.items() if k == "contextId"}
            return [self._dump({**self.error(event.message, event.code), **extra})]
        return []

    def _audio(self, event: ev.Audio) -> list[WireMessage]:
        reply = event.reply if event.reply is not None else 0
        key = (reply, event.clause if event.clause is not None else 0)
        aligner = self._aligners.get(key)
        if aligner is None:
            aligner = SpokenChunkAligner(event.clause_text or "", event.spoken)
            self._aligners[key] = aligner
        timings, said = aligner.take(event.seconds)
        encoder = self._encoders.get(reply)
        data = encoder.push(event.data) if encoder is not None else event.data
        return self._message(data, timings, self._ids.get(reply), said)

    def _final(self, reply: int) -> list[WireMessage]:
        out: list[WireMessage] = []
        for key in [k for k in self._aligners if k[0] == reply]:  # clauses cut by a barge-in
            del self._aligners[key]
        encoder = self._encoders.pop(reply, None)
        context_id = self._ids.pop(reply, None)
        if encoder is not None:
            tail = encoder.flush()
            if tail:
                out += self._message(tail, None, context_id)
        out.append(self._dump(self._tag({"isFinal": True}, context_id)))
        if not self.multi:
            self.done = True
        return out

    def _message(
        self, data: bytes, timings: CharTimings | None, context_id: str | None,
        said: CharTimings | None = None,
    ) -> list[WireMessage]:
        """An audio message; ``said``: the timings of what the engine read (default
        ``timings``, when it read the text as sent)."""
        said = timings if said is None else said
        has_chars = any(t is not None and t.chars for t in (timings, said))
        if not data and not has_chars:
            return []
        return [self._dump(self._tag({
            "audio": base64.b64encode(data).decode("ascii"),
            "isFinal": False,
            "alignment": timings.to_dict() if timings is not None and timings.chars else None,
            "normalizedAlignment": said.to_dict() if said is not None and said.chars else None,
        }, context_id))]

    def _tag(self, message: dict[str, Any], context_id: str | None) -> dict[str, Any]:
        if self.multi and context_id is not None:
            message["contextId"] = context_id
        return message

    @staticmethod
    def _dump(message: dict[str, Any]) -> str:
        return json.dumps(message, separators=(",", ":"))

    @staticmethod
    def error(message: str, code: str) -> dict[str, Any]:
        return {"error": message, "message": message, "code": code}
