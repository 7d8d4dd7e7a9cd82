"""Voice routes for the call webhook: preload, warmup, and dropping a changed clip."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from app.api.auth import RequireApiKey
from app.api.deps import RuntimeDep
from app.errors import InvalidRequest
from app.sessions.oneshot import warmup as run_warmup
from app.voices.validation import validate_voice_id

router = APIRouter(dependencies=[RequireApiKey])

MAX_PRELOAD = 100


@router.post("/preload")
async def preload(
    voice_ids: Annotated[list[Any], Body(description="Voice ids to fetch and prepare.")],
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Fetch and prepare voices concurrently; ``errors`` says why each false is false."""
    if len(voice_ids) > MAX_PRELOAD:
        raise InvalidRequest(f"Too many voice ids: {len(voice_ids)} (limit {MAX_PRELOAD})")
    # The answer is keyed by the ids as sent; one that is not valid Unicode (a lone
    # surrogate from a JSON escape) could not be encoded in it, so it is escaped here (it
    # is an invalid id either way).
    ids = [(v if isinstance(v, str) else str(v)).encode("utf-8", "backslashreplace")
           .decode("utf-8") for v in voice_ids]
    preloaded, errors = await runtime.voices.preload(ids)
    return {"preloaded": preloaded, "errors": errors, "cache_stats": runtime.voices.stats()}


@router.post("/warmup")
async def warmup(
    runtime: RuntimeDep,
    voice_id: Annotated[str, Query(max_length=1000)] = "default",
    preset: Annotated[str, Query(max_length=100)] = "realtime",
) -> dict[str, Any]:
    """Prepare the voice and run a short generation through the whole pipeline."""
    ms = await run_warmup(runtime, voice_id, preset)
    return {"voice_id": voice_id, "preset": preset, "warmup_ms": round(ms, 1), "ready": True}


@router.delete("/voices/{voice_id}/cache")
async def evict_voice(voice_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Drop one voice from every cache level (its clip changed in the store)."""
    voice_id = validate_voice_id(voice_id)
    evicted = await runtime.voices.evict(voice_id)
    return {"voice_id": voice_id, "evicted": evicted}
