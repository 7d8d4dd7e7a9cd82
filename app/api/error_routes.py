"""Route classes that answer every error of a route in one third-party API's own shape.

OpenAI's clients read ``{"error": {"message", "type", "param", "code"}}``, ElevenLabs'
read ``{"detail": {"status", "message"}}``; our other routes use ``app.api.errors``. A
route class (not an app-wide handler) is what reaches the errors of a route's dependencies
too (authentication, body validation), so a client of those APIs never meets our shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.errors import TTSError

log = logging.getLogger(__name__)

# (message, code, HTTP status, the parameter at fault or None) -> response body
ErrorShape = Callable[[str, str, int, str | None], dict[str, Any]]


def shaped_response(
    shape: ErrorShape, message: str, code: str, status: int, param: str | None = None
) -> Response:
    headers: dict[str, str] | None = None
    if status == 503:
        headers = {"Retry-After": "1"}
    elif status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(shape(message, code, status, param), status_code=status,
                        headers=headers)


def _validation(shape: ErrorShape, exc: RequestValidationError, status: int) -> Response:
    errors = exc.errors()
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    first = errors[0].get("loc", ()) if errors else ()
    param = ".".join(str(p) for p in first if p != "body") or None
    return shaped_response(shape, "Invalid request: " + "; ".join(parts), "invalid_request",
                           status, param)


def shaped_error_route(shape: ErrorShape, *, validation_status: int = 400) -> type[APIRoute]:
    """A route class mapping typed, validation and HTTP errors through ``shape``."""

    class ShapedErrorRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route_handler(request: Request) -> Response:
                try:
                    return await handler(request)
                except TTSError as exc:
                    metrics = getattr(getattr(request.app.state, "runtime", None), "metrics",
                                      None)
                    if metrics is not None:
                        metrics.error(exc.code)
                    if exc.status_code >= 500:
                        log.warning("request failed: %s (%s)", exc.code, exc.message)
                    return shaped_response(shape, exc.message, exc.code, exc.status_code)
                except RequestValidationError as exc:
                    return _validation(shape, exc, validation_status)
                except HTTPException as exc:
                    code = "unauthorized" if exc.status_code == 401 else "http_error"
                    detail = exc.detail
                    if isinstance(detail, dict):
                        code = str(detail.get("code", code))
                        detail = detail.get("error", detail.get("message", str(detail)))
                    response = shaped_response(shape, str(detail), code, exc.status_code)
                    for key, value in (exc.headers or {}).items():
                        response.headers[key] = value
                    return response

            return route_handler

    return ShapedErrorRoute
