"""Typed errors to HTTP responses, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.errors import TTSError

log = logging.getLogger(__name__)


def error_response(exc: TTSError) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status_code == 503 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TTSError)
    async def _tts_error(request: Request, exc: TTSError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("request failed: %s (%s)", exc.code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        message = "Invalid request: " + "; ".join(parts)
        return JSONResponse({"error": message, "code": "invalid_request"}, status_code=400)
