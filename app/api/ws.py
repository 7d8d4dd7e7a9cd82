"""WebSocket routes: accept, read messages, dispatch one handler per message type.

Bad messages get an error message and the connection stays open (DESIGN.md, "Errors on
a socket"); the sessions do the work, the outbox does all the writing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket

from app.errors import TTSError
from app.protocol import serializers as ser
from app.runtime import runtime_of
from app.sessions.outbox import Outbox
from app.sessions.request_session import RequestSession
from app.sessions.stream_session import StreamSession

log = logging.getLogger(__name__)
router = APIRouter()

Handler = Callable[[dict[str, Any]], Awaitable[None]]


async def _receive_loop(
    ws: WebSocket, outbox: Outbox, route: Callable[[dict[str, Any]], Handler | None]
) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            await outbox.control(
                ser.error("Binary frames are not supported: send JSON text", "invalid_message")
            )
            continue
        try:
            data = json.loads(text)
        except ValueError:
            await outbox.control(ser.error("Malformed JSON", "invalid_json"))
            continue
        if not isinstance(data, dict):
            await outbox.control(ser.error("Expected a JSON object", "invalid_message"))
            continue
        handler = route(data)
        if handler is None:
            kind = str(data.get("type"))[:32]
            await outbox.control(ser.error(f"Unknown message type: {kind}", "unknown_type"))
            continue
        try:
            await handler(data)
        except TTSError as exc:
            await outbox.control(ser.error(exc.message, exc.code))


async def _serve(ws: WebSocket, session: Any, route: Callable[[dict[str, Any]], Any]) -> None:
    try:
        await _receive_loop(ws, session.outbox, route)
    except Exception:  # a broken socket mid-send; the client is gone
        log.debug("websocket closed with an error", exc_info=True)
    finally:
        await session.aclose()
        session.outbox.abort()


@router.websocket("/ws/synthesize")
async def ws_synthesize(ws: WebSocket) -> None:
    """One request after another; frames as they are produced; ``cancel`` stops one."""
    runtime = runtime_of(ws)
    await ws.accept()
    outbox = Outbox(ws.send_text)
    outbox.start()
    session = RequestSession(runtime, outbox)
    session.start()

    async def on_cancel(data: dict[str, Any]) -> None:
        await session.on_cancel()

    def route(data: dict[str, Any]) -> Handler | None:
        kind = data.get("type")
        if kind is None or kind == "synthesize":
            return session.on_request
        if kind == "cancel":
            return on_cancel
        return None

    await _serve(ws, session, route)


@router.websocket("/ws/synthesize-stream")
async def ws_synthesize_stream(ws: WebSocket) -> None:
    """LLM token streams: init, text..., end; audio per clause; ``cancel`` for barge-in."""
    runtime = runtime_of(ws)
    await ws.accept()
    outbox = Outbox(ws.send_text)
    outbox.start()
    session = StreamSession(runtime, outbox)
    handlers: dict[str, Handler] = {
        "init": session.on_init,
        "text": session.on_text,
        "end": session.on_end,
        "cancel": session.on_cancel,
    }

    def route(data: dict[str, Any]) -> Handler | None:
        kind = data.get("type")
        return handlers.get(kind) if isinstance(kind, str) else None

    await _serve(ws, session, route)
