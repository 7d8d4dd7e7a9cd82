"""Typed errors to HTTP responses in our JSON shape (``{"error", "code"}``), counted by code.

The OpenAI-compatible route maps the same errors into OpenAI's envelope
(``app.api.openai_compat``); sockets send them as ``Error`` events through their serializer.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import TTSError

log = logging.getLogger(__name__)


def error_response(exc: TTSError) -> JSONResponse:
    headers: dict[str, str] | None = None
    if exc.status_code == 503:
        headers = {"Retry-After": "1"}
    elif exc.status_code == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TTSError)
    async def _tts_error(request: Request, exc: TTSError) -> JSONResponse:
        metrics = getattr(getattr(request.app.state, "runtime", None), "metrics", None)
        if metrics is not None:
            metrics.error(exc.code)
        if exc.status_code >= 500:
            log.warning("request failed: %s (%s)", exc.code, exc.message)
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Framework errors (unparseable body, no such route, wrong method) in our shape,
        # keeping FastAPI's ``detail`` for clients that read it.
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        body = {"error": str(exc.detail), "code": code, "detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        message = "Invalid request: " + "; ".join(parts)
        return JSONResponse({"error": message, "code": "invalid_request"}, status_code=400)
