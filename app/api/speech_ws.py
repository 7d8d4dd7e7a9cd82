"""``WS /v1/audio/speech/stream/ws``: start JSON, binary PCM chunks, end JSON (seed-003).

The session (``app.sessions.speech_socket``) has the message shapes. Authentication,
admission, limits, slow consumers and shutdown are those of our other sockets
(``app.api.ws``).
"""

from __future__ import annotations

import base64
import json

from fastapi import APIRouter, WebSocket

from app.api.ws import _open, _serve
from app.sessions.speech_socket import SpeechSocketSession

router = APIRouter()
_BINARY_PREFIX = '{"binary":'


@router.websocket("/v1/audio/speech/stream/ws")
async def speech_stream_ws(ws: WebSocket) -> None:
    """One request after another: ``start``, binary audio as produced, ``end``."""

    async def write(text: str) -> None:
        if text.startswith(_BINARY_PREFIX):
            await ws.send_bytes(base64.b64decode(json.loads(text)["binary"]))
        else:
            await ws.send_text(text)

    runtime, conn, outbox = await _open(ws, "speech-stream-ws", write)
    session = SpeechSocketSession(runtime, outbox)
    await _serve(ws, runtime, conn, session, lambda data: session.on_message)
