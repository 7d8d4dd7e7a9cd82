"""``POST /v1/audio/speech``: OpenAI's speech API, so OpenAI TTS clients need only a base URL.

``pcm`` streams (chunked) as it is generated, like OpenAI's; ``wav``, ``mp3``, ``opus`` and
``flac`` are whole files encoded once synthesis ends (``app.audio.files``; which of them a
process offers depends on its libsndfile). Every error on this route, validation and
authentication included, uses OpenAI's error envelope with our codes, so OpenAI clients
surface the message instead of a parse failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.api.auth import RequireApiKey
from app.api.http_stream import JobStreamingResponse, audio_headers, stream_body
from app.audio import get_output_format
from app.audio.files import MEDIA_TYPES, available_file_formats, encode_file
from app.errors import InvalidRequest, TTSError
from app.protocol.openai import OPENAI_RATE, OpenAISpeechRequest, openai_error
from app.runtime import RuntimeDep
from app.sessions.speech import open_speech

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


def response_format(name: str) -> str:
    valid = ("pcm", *available_file_formats())
    if name not in valid:
        raise InvalidRequest(
            f"Unsupported response_format: {name[:32]!r}. Supported here: {', '.join(valid)}",
            code="unsupported_response_format",
        )
    return name


@router.post("/v1/audio/speech", dependencies=[RequireApiKey])
async def openai_speech(req: OpenAISpeechRequest, runtime: RuntimeDep) -> Response:
    """OpenAI-compatible speech: ``pcm`` streams; file formats come whole at the end."""
    fmt_name = response_format(req.response_format)
    if req.stream_format != "audio":
        raise InvalidRequest("Unsupported stream_format: only 'audio' is available here")
    job = await open_speech(
        runtime, text=req.input, voice_id=req.voice_id(), preset=req.preset,
        fmt=get_output_format("pcm_24000"), speed=req.speed,
    )
    headers = audio_headers(job, fmt_name)
    # Echoed for the client's logs; a header carries printable ASCII only.
    headers["X-Model"] = "".join(c for c in req.model[:100] if " " <= c <= "~")
    if fmt_name == "pcm":
        return JobStreamingResponse(job, stream_body(job), media_type="audio/pcm", headers=headers)
    try:
        pcm = await job.collect()
    finally:
        job.release()
    data = await anyio.to_thread.run_sync(encode_file, pcm, OPENAI_RATE, fmt_name)
    del headers["X-Audio-Encoding"]
    return Response(data, media_type=MEDIA_TYPES[fmt_name], headers=headers)


