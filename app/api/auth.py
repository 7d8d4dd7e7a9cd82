"""API keys (``API_KEYS``): one check for HTTP routes and WebSockets.

A key is read from ``Authorization: Bearer <key>``, ``X-API-Key`` or ``xi-api-key`` (the
ElevenLabs-style clients), or from the ``api_key`` / ``xi_api_key`` query parameter for
clients that cannot set headers (browsers' WebSocket). Every configured key is compared in
constant time. The key never appears in a log or a response: callers get a short key id
(``key-<sha256 prefix>``) for per-key limits and logs. With no key configured,
authentication is off and every check passes with ``None``.

HTTP: ``dependencies=[RequireApiKey]`` on a route (or ``ApiKeyDep`` as a parameter) answers
401. WebSocket: ``await authenticate_websocket(ws)`` before ``accept``; a rejected socket is
accepted and at once closed with 1008, so that every client sees the code (a close before
accept would be an HTTP 403 handshake answer instead).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, WebSocketException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket

from app.errors import Unauthorized

KEY_HEADERS = ("x-api-key", "xi-api-key")
KEY_PARAMS = ("api_key", "xi_api_key")
WS_POLICY_VIOLATION = 1008


def key_id(key: str) -> str:
    """A stable, non-secret name for a key (logs, metrics, per-key limits)."""
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def presented_key(conn: HTTPConnection) -> str | None:
    """The key a client sent, from the first place that has one."""
    auth = conn.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in KEY_HEADERS:
        header = conn.headers.get(name)
        if header:
            return header.strip()
    for name in KEY_PARAMS:
        param = conn.query_params.get(name)
        if param:
            return param
    return None


def check_key(keys: list[str], presented: str | None) -> str | None:
    """The key id of ``presented``; ``None`` when auth is off; ``Unauthorized`` otherwise."""
    if not keys:
        return None
    if presented is None:
        raise Unauthorized("Missing API key: send Authorization: Bearer <key> or X-API-Key")
    given = presented.encode("utf-8")
    match = False
    for key in keys:  # compare with every key: the time taken says nothing about which
        match |= hmac.compare_digest(given, key.encode("utf-8"))
    if not match:
        raise Unauthorized("Invalid API key")
    return key_id(presented)


def _keys(conn: HTTPConnection) -> list[str]:
    return conn.app.state.settings.api_key_list  # type: ignore[no-any-return]


# Declared for the OpenAPI schema (so /docs and schema-driven clients know the scheme);
# the checking itself is ``check_key`` on whatever the client presented.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key header")


async def require_api_key(
    request: Request,
    _bearer_creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _header_key: Annotated[str | None, Depends(_header)],
) -> str | None:
    """HTTP dependency: the caller's key id (``None`` with auth off), else 401."""
    kid = check_key(_keys(request), presented_key(request))
    request.state.key_id = kid
    return kid


ApiKeyDep = Annotated[str | None, Depends(require_api_key)]
RequireApiKey = Depends(require_api_key)


async def authenticate_websocket(ws: WebSocket) -> str | None:
    """Call before ``accept``: the key id (``None`` with auth off).

    A missing or wrong key accepts the socket and raises ``WebSocketException(1008)``, which
    Starlette turns into a close with that code; the route just lets it propagate.
    """
    try:
        kid = check_key(_keys(ws), presented_key(ws))
    except Unauthorized as exc:
        await ws.accept()
        raise WebSocketException(code=WS_POLICY_VIOLATION, reason=exc.message) from None
    ws.state.key_id = kid
    return kid
