"""What sessions say, as typed events: the only vocabulary between sessions and serializers.

A session (or an utterance) emits these; a serializer (``app.protocol.serializers``) chosen
at connect turns each into zero or more wire messages; the outbox queues them and never
looks inside. Adding a protocol means adding a serializer, never a new event loop.

- ``Ready``: a streaming session accepted ``init`` (voice, preset, format, Twilio stream).
- ``Started``: a one-shot request on a socket starts (its format and Twilio stream); it has
  no message of its own in the seed protocol, but tells a serializer the request's mode.
- ``Audio``: encoded audio out of the chain. On sockets one 20 ms frame; on HTTP one engine
  chunk's worth. It says where it sits: ``reply`` and ``clause`` (streaming sessions),
  ``engine_chunk`` (which engine chunk of the clause it came from), ``offset_s`` (where it
  starts in the clause's audio) and ``clause_text``, so a serializer can estimate which
  characters it covers (``app.text.alignment``) or wait for ``ClauseDone`` for exact ends.
- ``ClauseDone``: a clause has been spoken in full (``sentence_complete``); ``text`` is the
  clause as received, ``spoken`` (when normalization changed it) what the engine read, with
  the character map between the two (``app.text.normalize``).
- ``UtteranceDone``: a one-shot utterance ended, with its timings (the seed final message).
- ``ReplyDone``: a reply on a streaming session ended (``complete``), with its own counts.
- ``Cancelled``: a barge-in stopped the audio; what the caller heard (``text_spoken``).
- ``Error``: a typed error for the client (``code`` is machine-readable); ``clause`` when it
  concerns one clause of a reply.

Every event is an immutable value: a serializer may keep it (ElevenLabs gathers a clause).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.audio.formats import OutputFormat
from app.errors import TTSError
from app.text.normalize import Normalized


@dataclass(frozen=True)
class Ready:
    voice_id: str
    preset: str
    builtin_voice: bool
    backend: str
    format: OutputFormat
    stream_sid: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Started:
    voice_id: str
    format: OutputFormat
    stream_sid: str | None = None


@dataclass(frozen=True)
class Audio:
    data: bytes
    format: OutputFormat
    seconds: float
    engine_chunk: int = 0
    offset_s: float = 0.0
    clause: int | None = None
    clause_text: str | None = None
    reply: int | None = None
    spoken: Normalized | None = None  # what the engine read, when normalization changed it


@dataclass(frozen=True)
class ClauseDone:
    clause: int
    text: str
    frames: int
    seconds: float
    reply: int | None = None
    spoken: Normalized | None = None  # the clause as the engine read it (normalized)


@dataclass(frozen=True)
class UtteranceDone:
    frames: int
    first_frame_ms: float
    total_ms: float
    latency: dict[str, float]
    backend: str
    voice_id: str
    builtin_voice: bool
    seconds: float = 0.0  # the audio's duration, without the last frame's padding


@dataclass(frozen=True)
class ReplyDone:
    frames: int
    total_ms: float
    clauses: int
    reply: int | None = None


@dataclass(frozen=True)
class Cancelled:
    frames_sent: int
    text_spoken: str
    estimated: bool


@dataclass(frozen=True)
class Error:
    message: str
    code: str
    clause: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, exc: TTSError, clause: int | None = None) -> Error:
        return cls(exc.message, exc.code, clause)


Event = Ready | Started | Audio | ClauseDone | UtteranceDone | ReplyDone | Cancelled | Error
