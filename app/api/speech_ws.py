"""``WS /v1/audio/speech/stream/ws``: start JSON, binary PCM chunks, end JSON (seed-003).

``app.protocol.speech_ws`` has the message shapes, ``app.sessions.speech_socket`` the
session. Authentication, admission, limits, slow consumers and shutdown are those of our
other sockets (``app.api.ws``).
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from app.api.deps import runtime_of
from app.api.ws import open_socket, serve_socket
from app.protocol.speech_ws import SpeechSocketSerializer
from app.sessions.speech_socket import SpeechSocketSession

router = APIRouter()


@router.websocket("/v1/audio/speech/stream/ws")
async def speech_stream_ws(ws: WebSocket) -> None:
    """One request after another: ``start``, binary audio as produced, ``end``."""
    serializer = SpeechSocketSerializer(runtime_of(ws).engine.name)
    runtime, conn, outbox = await open_socket(ws, "speech-stream-ws", serializer)
    session = SpeechSocketSession(runtime, outbox)
    await serve_socket(ws, runtime, conn, session, lambda data: session.on_message)
