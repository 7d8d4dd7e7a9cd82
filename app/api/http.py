"""HTTP routes: health, readiness, metrics and batch synthesis (parse, open, serialize)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api.auth import RequireApiKey, check_key, presented_key
from app.api.deps import RuntimeDep
from app.audio.formats import resolve_format
from app.observability.metrics import CONTENT_TYPE
from app.protocol.requests import SynthesizeRequest
from app.protocol.serializers import BatchJsonSerializer
from app.sessions.oneshot import run_whole
from app.sessions.utterance import UtteranceSpec, open_utterance

router = APIRouter()


@router.get("/health")
async def health(runtime: RuntimeDep) -> dict[str, Any]:
    """Liveness, the running engine and why, caches and capacity."""
    return runtime.health()


@router.get("/ready")
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """503 until the engine is loaded and warmed, while the replica is full or draining."""
    if not runtime.ready:
        return JSONResponse({"ready": False, "reason": "warming up"}, status_code=503)
    if runtime.draining:
        return JSONResponse({"ready": False, "reason": "shutting down"}, status_code=503,
                            headers={"Retry-After": "5"})
    if runtime.capacity.full:
        return JSONResponse({"ready": False, "reason": "full"}, status_code=503,
                            headers={"Retry-After": "1"})
    return JSONResponse({"ready": True})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics; needs the API key unless ``METRICS_PUBLIC`` is set."""
    if not runtime.settings.metrics_public:
        check_key(runtime.settings.api_key_list, presented_key(request))
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)


@router.post("/synthesize", dependencies=[RequireApiKey])
async def synthesize(req: SynthesizeRequest, runtime: RuntimeDep) -> Response:
    """The whole utterance in one response.

    ``audio`` is a list of base64 160-byte frames for ``mulaw``/``alaw``, base64 WAV (engine
    rate) for ``wav``, and base64 PCM16 little-endian for ``pcm_*``.
    """
    fmt = resolve_format("synthesize", req.output_format)
    spec = UtteranceSpec(req.text, req.voice_id, req.preset, fmt,
                         framed=fmt.encoding != "pcm16", speed=req.speed,
                         language=req.language, route="synthesize")
    utterance = await open_utterance(runtime, spec)
    body = await run_whole(utterance, BatchJsonSerializer())
    return Response(body[-1], media_type="application/json")
