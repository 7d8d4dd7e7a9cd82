"""``WS /v1/audio/speech/stream/ws`` (seed-003's binary socket): start JSON, binary audio, end.

    → {"text", "voice_id": "default", "preset", "format": "pcm_24000", "speed",
       "temperature", "top_p", "language"}   ("type": "start" may be present)
    ← {"type": "start", "format", "sample_rate", "encoding", "channels": 1, "voice_id",
       "backend"}
    ← <binary>: headerless PCM16 little-endian (or mu-law), one message per engine chunk
    ← {"type": "end", "chunks", "bytes", "duration_s", "first_chunk_ms", "total_ms"}
    → {"type": "cancel"}   ← {"type": "cancelled", "chunks_sent"}
    ← {"type": "error", "error", "code"}      (the socket stays open)
"""

from __future__ import annotations

import json
from typing import Any

from app.protocol import events as ev
from app.protocol.serializers import WireMessage


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class SpeechSocketSerializer:
    done = False

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._bytes = 0

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        if isinstance(event, ev.Started):
            self._bytes = 0
            fmt = event.format
            return [_dump({
                "type": "start", "format": fmt.name, "sample_rate": fmt.sample_rate,
                "encoding": "mulaw" if fmt.encoding == "mulaw" else "pcm_s16le",
                "channels": 1, "voice_id": event.voice_id, "backend": self.backend,
            })]
        if isinstance(event, ev.Audio):
            self._bytes += len(event.data)
            return [event.data]
        if isinstance(event, ev.UtteranceDone):
            return [_dump({
                "type": "end", "chunks": event.frames, "bytes": self._bytes,
                "duration_s": round(event.seconds, 3),
                "first_chunk_ms": round(event.first_frame_ms, 1),
                "total_ms": round(event.total_ms, 1),
            })]
        if isinstance(event, ev.Cancelled):
            return [_dump({"type": "cancelled", "chunks_sent": event.frames_sent})]
        if isinstance(event, ev.Error):
            return [_dump({"type": "error", "error": event.message, "code": event.code})]
        return []
