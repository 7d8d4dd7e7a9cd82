"""Server messages on the sockets: the only place that knows their JSON shapes.

Seed-compatible messages (DESIGN.md, "Wire protocol") keep their exact fields; new
information goes into optional fields. In Twilio mode audio frames become Media Streams
``media`` events and each clause ends with a ``mark`` that a bridge forwards unchanged.
"""

from __future__ import annotations

import base64
from typing import Any

from app.audio import OutputFormat


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FrameSerializer:
    """Audio messages for one connection: seed JSON, or Twilio media events."""

    def __init__(self, fmt: OutputFormat, stream_sid: str | None = None) -> None:
        self.fmt = fmt
        self.stream_sid = stream_sid

    @property
    def twilio(self) -> bool:
        return self.stream_sid is not None

    def seed_frame(self, frame: bytes, index: int) -> dict[str, Any]:
        """A ``/ws/synthesize`` frame (or its Twilio form)."""
        if self.twilio:
            return self.media(frame)
        return {
            "audio": b64(frame),
            "chunk_index": index,
            "is_final": False,
            "format": self.fmt.name,
            "sample_rate": self.fmt.sample_rate,
        }

    def stream_frame(self, frame: bytes, index: int) -> dict[str, Any]:
        """A ``/ws/synthesize-stream`` audio message (or its Twilio form)."""
        if self.twilio:
            return self.media(frame)
        return {
            "type": "audio",
            "audio": b64(frame),
            "chunk_index": index,
            "format": self.fmt.name,
            "sample_rate": self.fmt.sample_rate,
        }

    def wav_chunk(self, wav: bytes, index: int, sample_rate: int) -> dict[str, Any]:
        return {
            "audio": b64(wav),
            "chunk_index": index,
            "is_final": False,
            "format": "wav",
            "sample_rate": sample_rate,
        }

    def media(self, frame: bytes) -> dict[str, Any]:
        return {"event": "media", "streamSid": self.stream_sid, "media": {"payload": b64(frame)}}

    def mark(self, name: str) -> dict[str, Any] | None:
        if not self.twilio:
            return None
        return {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}


def seed_final(
    *,
    index: int,
    first_chunk_ms: float,
    total_ms: float,
    total_chunks: int,
    latency: dict[str, float],
    backend: str,
    voice_id: str,
    builtin_voice: bool,
) -> dict[str, Any]:
    return {
        "audio": None,
        "chunk_index": index,
        "is_final": True,
        "first_chunk_ms": round(first_chunk_ms, 2),
        "total_ms": round(total_ms, 2),
        "total_chunks": total_chunks,
        "latency": latency,
        "backend": backend,
        "voice_id": voice_id,
        "builtin_voice": builtin_voice,
    }


def error(message: str, code: str, **extra: Any) -> dict[str, Any]:
    """Seed clients read ``error``; new clients switch on ``code``."""
    return {"type": "error", "error": message, "code": code, **extra}


def ready(voice_id: str, preset: str, *, builtin_voice: bool, backend: str) -> dict[str, Any]:
    return {
        "type": "ready",
        "voice_id": voice_id,
        "preset": preset,
        "message": f"Session ready: voice {voice_id}, preset {preset}",
        "builtin_voice": builtin_voice,
        "backend": backend,
    }


def sentence_complete(clause: int, text: str, chunks: int) -> dict[str, Any]:
    return {"type": "sentence_complete", "chunks_in_sentence": chunks, "clause": clause,
            "text": text}


def complete(total_chunks: int, total_ms: float, clauses: int) -> dict[str, Any]:
    return {"type": "complete", "total_chunks": total_chunks, "total_ms": round(total_ms, 2),
            "clauses": clauses}


def cancelled(chunks_sent: int, text_spoken: str, estimated: bool) -> dict[str, Any]:
    return {
        "type": "cancelled",
        "chunks_sent": chunks_sent,
        "text_spoken": text_spoken,
        "text_spoken_estimated": estimated,
    }
