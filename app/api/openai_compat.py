"""``POST /v1/audio/speech``: OpenAI's speech API, so OpenAI TTS clients need only a base URL.

``pcm`` streams (chunked) as it is generated, like OpenAI's; ``wav``, ``mp3``, ``opus`` and
``flac`` are whole files encoded once synthesis ends (``FileSerializer``; which of them a
process offers depends on its libsndfile, ``app.audio.formats``). Every error on this
route, validation and authentication included, uses OpenAI's error envelope with our codes
(and is counted in the metrics like every other), so OpenAI clients surface the message
instead of a parse failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.api.auth import RequireApiKey
from app.api.deps import RuntimeDep, runtime_of
from app.api.http_stream import UtteranceResponse, audio_headers
from app.audio.formats import resolve_format
from app.errors import InvalidRequest, TTSError
from app.protocol.openai import OpenAISpeechRequest, openai_error
from app.protocol.serializers import FileSerializer
from app.sessions.oneshot import run_whole
from app.sessions.utterance import UtteranceSpec, open_utterance

log = logging.getLogger(__name__)


def _error_response(message: str, code: str, status: int, param: str | None = None) -> Response:
    headers: dict[str, str] | None = None
    if status == 503:
        headers = {"Retry-After": "1"}
    elif status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(openai_error(message, code, status, param), status_code=status,
                        headers=headers)


class OpenAIErrorRoute(APIRoute):
    """Maps every error of the route (dependencies included) to OpenAI's error envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except TTSError as exc:
                runtime_of(request).metrics.error(exc.code)
                if exc.status_code >= 500:
                    log.warning("request failed: %s (%s)", exc.code, exc.message)
                return _error_response(exc.message, exc.code, exc.status_code)
            except RequestValidationError as exc:
                errors = exc.errors()
                parts = []
                for err in errors[:5]:
                    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
                    parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
                first = errors[0].get("loc", ()) if errors else ()
                param = ".".join(str(p) for p in first if p != "body") or None
                return _error_response(
                    "Invalid request: " + "; ".join(parts), "invalid_request", 400, param
                )
            except HTTPException as exc:
                code = "unauthorized" if exc.status_code == 401 else "http_error"
                detail = exc.detail
                if isinstance(detail, dict):
                    code = str(detail.get("code", code))
                    detail = detail.get("error", detail.get("message", str(detail)))
                response = _error_response(str(detail), code, exc.status_code)
                for key, value in (exc.headers or {}).items():
                    response.headers[key] = value
                return response

        return route_handler


router = APIRouter(route_class=OpenAIErrorRoute)


@router.post("/v1/audio/speech", dependencies=[RequireApiKey])
async def openai_speech(req: OpenAISpeechRequest, runtime: RuntimeDep) -> Response:
    """OpenAI-compatible speech: ``pcm`` streams; file formats come whole at the end."""
    fmt = resolve_format("openai", req.response_format, field="response_format")
    if req.stream_format != "audio":
        raise InvalidRequest("Unsupported stream_format: only 'audio' is available here")
    spec = UtteranceSpec(req.input, req.voice_id(), req.preset, fmt, framed=False,
                         speed=req.speed, language=req.language, route="openai")
    utterance = await open_utterance(runtime, spec)
    headers = audio_headers(utterance, req.response_format)
    # Echoed for the client's logs; a header carries printable ASCII only.
    headers["X-Model"] = "".join(c for c in req.model[:100] if " " <= c <= "~")
    if fmt.container == "raw":
        return UtteranceResponse(utterance, media_type=fmt.media_type, headers=headers)
    body = await run_whole(utterance, FileSerializer(fmt), offload_final=True)
    del headers["X-Audio-Encoding"]
    return Response(body[-1], media_type=fmt.media_type, headers=headers)
