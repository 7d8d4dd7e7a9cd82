"""Serializers: one per connection, the only code that knows a wire format.

A serializer turns the typed events of ``app.protocol.events`` into wire messages: ``str``
for a WebSocket text message, ``bytes`` for raw audio (HTTP bodies, binary socket
messages). The outbox and the sessions never look inside a message. The interface::

    class Serializer(Protocol):
        done: bool                      # the protocol has ended: close normally (1000)
        def serialize(self, event: Event) -> list[str | bytes]: ...

A serializer may keep state across events (chunk counters, the Twilio stream, a clause's
gathered audio) because it lives exactly as long as its connection. Here:

- ``RequestSerializer``: ``/ws/synthesize``'s seed JSON (``chunk_index`` counts frames of
  one request; ``is_final`` ends it), WAV chunks for ``wav``;
- ``StreamSerializer``: ``/ws/synthesize-stream``'s seed JSON (``chunk_index`` counts the
  whole session; ``sentence_complete``, ``complete``);
- both in Twilio mode (a ``stream_sid`` on the request or ``init``): audio becomes
  Media Streams ``media`` events, each clause ends with a ``mark`` named ``clause-<n>``,
  and a cancel sends ``clear`` before ``cancelled``, so the bridge's buffered speech stops
  at once (the outbox drops every older frame, so no media follows the ``clear``);
- ``RawAudioSerializer``: audio bytes only, for streamed HTTP bodies;
- ``BatchJsonSerializer``: ``POST /synthesize``'s one JSON body at ``UtteranceDone``
  (base64 frames for G.711, one base64 blob, a WAV file for ``wav``, otherwise);
- ``FileSerializer``: one whole file (wav, mp3, opus, flac) at ``UtteranceDone``; encoding
  is blocking C work, so the caller serializes that event in a worker thread.

ElevenLabs' shapes are in ``app.protocol.elevenlabs_ws`` and ``elevenlabs_api``, OpenAI's
SSE in ``app.protocol.openai_sse``, compressed HTTP bodies in ``app.protocol.encoded``.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

from app.audio.files import encode_file
from app.audio.formats import OutputFormat
from app.audio.wav import wav_bytes
from app.protocol import events as ev

WireMessage = str | bytes


class Serializer(Protocol):
    done: bool

    def serialize(self, event: ev.Event) -> list[WireMessage]: ...


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def error_message(event: ev.Error, request_id: str | None = None) -> dict[str, Any]:
    """Seed clients read ``error``; new clients switch on ``code``."""
    out: dict[str, Any] = {"type": "error", "error": event.message, "code": event.code}
    if event.clause is not None:
        out["clause"] = event.clause
    out.update(event.extra)
    if request_id is not None:
        out["request_id"] = request_id
    return out


class _SeedJson:
    """What both seed sockets share: errors, cancels, Twilio media, marks and clear."""

    done = False

    def __init__(self, request_id: str | None = None) -> None:
        self.request_id = request_id
        self.stream_sid: str | None = None
        self.frames = 0  # chunk_index of the next audio message

    def twilio(self, event: ev.Event) -> dict[str, Any]:
        if isinstance(event, ev.Audio):
            return {"event": "media", "streamSid": self.stream_sid,
                    "media": {"payload": b64(event.data)}}
        if isinstance(event, ev.ClauseDone):
            return {"event": "mark", "streamSid": self.stream_sid,
                    "mark": {"name": f"clause-{event.clause}"}}
        return {"event": "clear", "streamSid": self.stream_sid}

    def common(self, event: ev.Event) -> list[WireMessage] | None:
        if isinstance(event, ev.Error):
            return [dumps(error_message(event, self.request_id))]
        if isinstance(event, ev.Cancelled):
            out: list[WireMessage] = []
            if self.stream_sid is not None:
                out.append(dumps(self.twilio(event)))
            out.append(dumps({
                "type": "cancelled",
                "chunks_sent": event.frames_sent,
                "text_spoken": event.text_spoken,
                "text_spoken_estimated": event.estimated,
            }))
            return out
        return None


class RequestSerializer(_SeedJson):
    """``/ws/synthesize``: one request after another (see the module docstring)."""

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Started):
            self.stream_sid = event.stream_sid
            self.frames = 0
            return []
        if isinstance(event, ev.Audio):
            index = self.frames
            self.frames += 1
            if self.stream_sid is not None:
                return [dumps(self.twilio(event))]
            fmt = event.format
            data = wav_bytes(event.data, fmt.sample_rate) if fmt.container == "wav" else event.data
            return [dumps({"audio": b64(data), "chunk_index": index, "is_final": False,
                           "format": fmt.name, "sample_rate": fmt.sample_rate})]
        if isinstance(event, ev.UtteranceDone):
            return [dumps({
                "audio": None,
                "chunk_index": self.frames,
                "is_final": True,
                "first_chunk_ms": round(event.first_frame_ms, 2),
                "total_ms": round(event.total_ms, 2),
                "total_chunks": self.frames,
                "latency": event.latency,
                "backend": event.backend,
                "voice_id": event.voice_id,
                "builtin_voice": event.builtin_voice,
            })]
        return self.common(event) or []


class StreamSerializer(_SeedJson):
    """``/ws/synthesize-stream``: LLM token streams (see the module docstring)."""

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            index = self.frames
            self.frames += 1
            if self.stream_sid is not None:
                return [dumps(self.twilio(event))]
            return [dumps({"type": "audio", "audio": b64(event.data), "chunk_index": index,
                           "format": event.format.name,
                           "sample_rate": event.format.sample_rate})]
        if isinstance(event, ev.ClauseDone):
            out: list[WireMessage] = [dumps({
                "type": "sentence_complete", "chunks_in_sentence": event.frames,
                "clause": event.clause, "text": event.text,
            })]
            if self.stream_sid is not None:
                out.append(dumps(self.twilio(event)))
            return out
        if isinstance(event, ev.ReplyDone):
            return [dumps({"type": "complete", "total_chunks": event.frames,
                           "total_ms": round(event.total_ms, 2), "clauses": event.clauses})]
        if isinstance(event, ev.Ready):
            self.stream_sid = event.stream_sid
            message: dict[str, Any] = {
                "type": "ready",
                "voice_id": event.voice_id,
                "preset": event.preset,
                "message": f"Session ready: voice {event.voice_id}, preset {event.preset}",
                "builtin_voice": event.builtin_voice,
                "backend": event.backend,
            }
            if event.language is not None:
                message["language"] = event.language
            if self.request_id is not None:
                message["request_id"] = self.request_id
            return [dumps(message)]
        return self.common(event) or []


class RawAudioSerializer:
    """HTTP bodies: the audio bytes of each ``Audio`` event, nothing else."""

    done = False

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            return [event.data]
        return []


class FileSerializer:
    """HTTP bodies of whole files: gathers the PCM16 audio, encodes it once at the end."""

    done = False

    def __init__(self, fmt: OutputFormat) -> None:
        if fmt.encoding != "pcm16" or fmt.container == "raw":
            raise ValueError(f"{fmt.name} is not a file format over PCM16")
        self.fmt = fmt
        self._pcm = bytearray()

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            self._pcm += event.data
            return []
        if isinstance(event, ev.UtteranceDone):
            data = encode_file(bytes(self._pcm), self.fmt.sample_rate, self.fmt.container)
            self._pcm.clear()
            return [data]
        return []


class BatchJsonSerializer:
    """``POST /synthesize``: the whole utterance in one JSON body (see the README)."""

    done = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._format: OutputFormat | None = None

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Audio):
            self._parts.append(event.data)
            self._format = event.format
            return []
        if not isinstance(event, ev.UtteranceDone) or self._format is None:
            return []
        fmt = self._format
        audio: list[str] | str
        if fmt.encoding != "pcm16":
            audio = [b64(frame) for frame in self._parts]  # 20 ms frames
        else:
            blob = b"".join(self._parts)
            audio = b64(wav_bytes(blob, fmt.sample_rate) if fmt.container == "wav" else blob)
        self._parts = []
        return [dumps({
            "audio": audio,
            "duration_seconds": round(event.seconds, 4),
            "sample_rate": fmt.sample_rate,
            "format": fmt.name,
            "total_ms": round(event.total_ms, 2),
            "first_chunk_ms": round(event.first_frame_ms, 2),
            "latency": event.latency,
            "backend": event.backend,
            "voice_id": event.voice_id,
            "builtin_voice": event.builtin_voice,
        })]
