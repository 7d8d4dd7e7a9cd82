"""The service's long-lived parts, built once per app by the lifespan and injected.

Routes reach these through ``get_runtime`` (a FastAPI dependency); nothing here knows about
HTTP or WebSockets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from app import __version__
from app.config import Settings
from app.engines.base import Engine, SynthesisParams, VoiceHandle
from app.engines.registry import EngineChoice
from app.presets import PRESETS, get_preset
from app.sessions.capacity import Capacity

log = logging.getLogger(__name__)


class VoiceResolver(Protocol):
    """What the runtime needs of the voice layer (``app.voices.manager.VoiceManager``)."""

    async def get(self, voice_id: str) -> VoiceHandle: ...

    async def preload(
        self, voice_ids: list[str]
    ) -> tuple[dict[str, bool], dict[str, dict[str, str]]]: ...

    async def evict(self, voice_id: str) -> bool: ...

    def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    choice: EngineChoice
    voices: VoiceResolver
    capacity: Capacity
    started_at: float = field(default_factory=time.time)
    ready: bool = False

    def params(self, preset: str | None, **extra: Any) -> SynthesisParams:
        return SynthesisParams(preset=get_preset(preset), **extra)

    def health(self) -> dict[str, Any]:
        voice_stats = self.voices.stats()
        return {
            "status": "ok",
            "model_loaded": self.ready,
            "device": self.engine.device,
            "backend": self.engine.name,
            "engine_reason": self.choice.reason,
            "sample_rate": self.engine.sample_rate,
            "capabilities": self.engine.capabilities.to_dict(),
            "cached_voices": voice_stats.get("cached_voices", 0),
            "cache": voice_stats,
            "capacity": self.capacity.to_dict(),
            "version": __version__,
            "presets": list(PRESETS),
            "uptime_s": round(time.time() - self.started_at, 1),
        }


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def runtime_of(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
