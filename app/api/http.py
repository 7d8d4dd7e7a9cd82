"""HTTP routes: health, readiness, metrics and batch synthesis (parse, open, serialize)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api.auth import RequireApiKey, check_key, presented_key
from app.api.deps import RuntimeDep
from app.audio.formats import resolve_format
from app.errors import Unauthorized
from app.observability.metrics import CONTENT_TYPE
from app.protocol.requests import SynthesizeRequest
from app.protocol.serializers import BatchJsonSerializer
from app.sessions.oneshot import run_whole
from app.sessions.utterance import UtteranceSpec, open_utterance

router = APIRouter()


# What /health shows without a key when auth is on: liveness and capacity, nothing that
# names where voices are stored or cached (bucket endpoints, paths) or why an engine was
# chosen (which can name a checkpoint path).
PUBLIC_HEALTH = ("status", "model_loaded", "device", "backend", "sample_rate", "cached_voices",
                 "capacity", "connections", "draining", "version", "presets", "uptime_s")


@router.get("/health")
async def health(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """Liveness, the running engine and why, caches and capacity.

    Open to all; with ``API_KEYS`` set, the full view (store, cache paths, engine reason)
    needs a key and everyone else gets the ``PUBLIC_HEALTH`` fields.
    """
    full = {**runtime.health(), "warmups": request.app.state.warmups.stats()}
    keys = runtime.settings.api_key_list
    if keys:
        try:
            check_key(keys, presented_key(request))
        except Unauthorized:
            public = {name: full[name] for name in PUBLIC_HEALTH if name in full}
            return {**public, "view": "public: send an API key for the full view"}
    return full


@router.get("/ready")
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """503 until the engine is loaded and warmed, while the replica is full or draining."""
    if getattr(runtime.engine, "fault", None):
        return JSONResponse({"ready": False, "reason": "engine fault: replica exiting"},
                            status_code=503)
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
                         language=req.language, normalize=req.normalize, route="synthesize")
    utterance = await open_utterance(runtime, spec)
    body = await run_whole(utterance, BatchJsonSerializer())
    return Response(body[-1], media_type="application/json")
