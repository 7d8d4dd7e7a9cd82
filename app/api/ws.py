"""WebSocket routes: accept, read messages, dispatch one handler per message type.

Bad messages get an error message and the connection stays open (DESIGN.md, "Errors on
a socket"); the sessions do the work and emit typed events, the outbox does all the writing
through the serializer the route chose at connect (the only code that knows the wire
format). Only
connection-level refusals close a socket: no or wrong API key (1008), replica full or too
many sessions for the key at connect (1013), message too large (1009, by uvicorn), a
client that stops reading (1008, ``slow_consumer``), idle timeout (1000) and shutdown
(1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketException

from app.api.auth import authenticate_websocket
from app.api.deps import runtime_of
from app.connections import Connection, ConnectionRefused, RateLimiter
from app.errors import TTSError
from app.observability.logs import clean_request_id, request_id_var
from app.protocol import events as ev
from app.protocol.serializers import (
    RequestSerializer,
    Serializer,
    StreamSerializer,
    WireMessage,
)
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.request_session import RequestSession
from app.sessions.stream_session import StreamSession

log = logging.getLogger(__name__)
router = APIRouter()

Handler = Callable[[dict[str, Any]], Awaitable[None]]
Router = Callable[[dict[str, Any]], Handler | None]
WS_NORMAL = 1000
CLOSE_TIMEOUT_S = 5.0


class _Reader:
    """Reads and dispatches messages; remembers when the client last sent one."""

    def __init__(self, ws: WebSocket, outbox: Outbox, route: Router, runtime: Runtime) -> None:
        self.ws = ws
        self.outbox = outbox
        self.route = route
        self.limiter = RateLimiter(runtime.settings.ws_messages_per_second)
        self.last_message = time.monotonic()

    async def error(self, message: str, code: str) -> None:
        await self.outbox.control(ev.Error(message, code))

    async def run(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            self.last_message = time.monotonic()
            if not self.limiter.allow():
                rate = self.limiter.rate
                await self.error(f"Too many messages (limit {rate:g}/s): dropped", "rate_limited")
                continue
            text = message.get("text")
            if text is None:
                await self.error("Binary frames are not supported: send JSON text",
                                 "invalid_message")
                continue
            try:
                data = json.loads(text)
            except ValueError:
                await self.error("Malformed JSON", "invalid_json")
                continue
            except RecursionError:
                await self.error("JSON nested too deeply", "invalid_json")
                continue
            if not isinstance(data, dict):
                await self.error("Expected a JSON object", "invalid_message")
                continue
            handler = self.route(data)
            if handler is None:
                kind = str(data.get("type"))[:32]
                await self.error(f"Unknown message type: {kind}", "unknown_type")
                continue
            try:
                await handler(data)
            except TTSError as exc:
                await self.outbox.control(ev.Error.of(exc))


async def open_socket(
    ws: WebSocket, route_name: str, serializer: Serializer
) -> tuple[Runtime, Connection, Outbox]:
    """Authenticate, admit, accept; the connection is registered until ``serve_socket`` ends.

    ``serializer``: the connection's wire format (``app.protocol.serializers``), chosen by
    the route; the outbox hands it every event.
    """
    runtime = runtime_of(ws)
    if request_id_var.get() is None:  # normally set by RequestIdMiddleware
        request_id_var.set(clean_request_id(ws.headers.get("x-request-id")))
    key = await authenticate_websocket(ws)
    try:
        conn = runtime.connections.admit(route_name, key, runtime.draining)
    except ConnectionRefused as exc:
        runtime.metrics.error("connection_refused")
        log.info("refused %s: %s", route_name, exc.reason)
        await ws.accept()
        raise WebSocketException(code=exc.code, reason=exc.reason) from None
    await ws.accept(headers=[(b"x-request-id", (request_id_var.get() or "").encode())])

    async def send(message: WireMessage) -> None:
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_text(message)

    outbox = Outbox(send, serializer, max_seconds=runtime.settings.ws_send_buffer_seconds,
                    on_error=runtime.metrics.error)
    conn.outbox = outbox
    outbox.start()
    runtime.metrics.sessions.labels(route_name).inc()
    log.info("%s opened (key %s)", route_name, key or "-")
    return runtime, conn, outbox


async def _watch_idle(reader: _Reader, conn: Connection, timeout_s: float) -> None:
    if timeout_s <= 0:
        return
    while True:
        await asyncio.sleep(min(1.0, timeout_s / 4))
        idle = time.monotonic() - reader.last_message
        if idle >= timeout_s and not conn.busy and reader.outbox.depth == 0:
            reader.outbox.request_close(
                WS_NORMAL, "idle timeout",
                ev.Error(f"No message for {timeout_s:g}s: closing", "idle_timeout"),
            )
            return


async def _close(ws: WebSocket, outbox: Outbox) -> None:
    request = outbox.close_request
    assert request is not None
    outbox.abort()  # the sender may be stuck on a client that does not read
    with contextlib.suppress(Exception):
        if request.error is not None:
            for message in outbox.serializer.serialize(request.error):
                if isinstance(message, bytes):
                    continue
                await asyncio.wait_for(ws.send_text(message), 0.5)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(request.code, request.reason), CLOSE_TIMEOUT_S)


async def serve_socket(
    ws: WebSocket, runtime: Runtime, conn: Connection, session: Any, route: Router
) -> None:
    outbox: Outbox = session.outbox
    conn.session = session
    reader = _Reader(ws, outbox, route, runtime)
    tasks = [
        asyncio.create_task(reader.run(), name="ws-reader"),
        asyncio.create_task(outbox.close_requested.wait(), name="ws-close-requested"),
        asyncio.create_task(
            _watch_idle(reader, conn, runtime.settings.session_idle_timeout_s), name="ws-idle"
        ),
    ]
    try:
        await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        if tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is not None:
            log.debug("websocket closed with an error", exc_info=tasks[0].exception())
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await session.aclose()
        if outbox.close_request is not None:
            log.info("closing socket: %d %s", outbox.close_request.code,
                     outbox.close_request.reason)
            await _close(ws, outbox)
        outbox.abort()
        runtime.connections.release(conn)
        runtime.metrics.sessions.labels(conn.route).dec()


@router.websocket("/ws/synthesize")
async def ws_synthesize(ws: WebSocket) -> None:
    """One request after another; frames as they are produced; ``cancel`` stops one."""
    runtime, conn, outbox = await open_socket(
        ws, "synthesize", RequestSerializer(request_id_var.get())
    )
    session = RequestSession(runtime, outbox)
    session.start()

    def route(data: dict[str, Any]) -> Handler | None:
        kind = data.get("type")
        if kind is None or kind == "synthesize":
            return session.on_request
        if kind == "cancel":
            return session.on_cancel
        return None

    await serve_socket(ws, runtime, conn, session, route)


@router.websocket("/ws/synthesize-stream")
async def ws_synthesize_stream(ws: WebSocket) -> None:
    """LLM token streams: init, text..., end; audio per clause; ``cancel`` for barge-in."""
    runtime, conn, outbox = await open_socket(
        ws, "synthesize-stream", StreamSerializer(request_id_var.get())
    )
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

    await serve_socket(ws, runtime, conn, session, route)
