"""A bound on every HTTP request body, enforced while it streams in (pure ASGI middleware).

Starlette and FastAPI read a body whole, and FastAPI parses it before any dependency (auth
included) runs, so without this one unauthenticated request could make the process hold a
gigabyte. Here the body is read before the app sees the request, in at most
``max_bytes`` (a smaller bound per path where one is configured, e.g. the Twilio webhook):

- a ``Content-Length`` over the bound is answered 413 at once, without reading a byte;
- a chunked body is counted as it arrives and answered 413 as soon as it passes the bound;
- the whole body must arrive within ``timeout_s`` of the request's headers, else 408, so
  unfinished bodies cannot hold sockets (and file descriptors) open for ever.

Both answers carry ``Connection: close``: the rest of the body is never read, so the
connection cannot be reused. The app then gets the buffered body through its ``receive``
(later calls reach the real one, so disconnects are still seen). WebSockets pass through:
their messages are bounded by uvicorn's ``ws_max_size``.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import PayloadTooLarge, RequestTimeout, TTSError

log = logging.getLogger(__name__)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float,
                 path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise PayloadTooLarge(f"Request body of {declared} bytes is over the "
                                      f"limit of {limit} bytes")
            body = await _read_body(receive, limit, self.timeout_s)
        except TTSError as exc:
            await _refuse(scope, send, exc)
            return
        except _Disconnected:
            return
        first: Message | None = {"type": "http.request", "body": body, "more_body": False}

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        await self.app(scope, replay, send)


class _Disconnected(Exception):
    """The client went away before its body was complete: nothing to answer."""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before we ever run
    return None


async def _read_body(receive: Receive, limit: int, timeout_s: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes")
                parts.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(parts)
    except TimeoutError:
        raise RequestTimeout(f"Request body not received within {timeout_s:g} s") from None


async def _refuse(scope: Scope, send: Send, exc: TTSError) -> None:
    log.warning("request refused: %s %s: %s", scope.get("method"), scope["path"], exc.code)
    runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
    if runtime is not None:
        runtime.metrics.error(exc.code)
    response = error_response(exc)
    response.headers["connection"] = "close"
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
