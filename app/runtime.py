"""The service's long-lived parts, built once per app by the lifespan and injected.

The engine, the voices, the synthesis slots, the live sockets and the metrics of one
replica. Sessions use it (``app.sessions.utterance.open_utterance`` is how an utterance
starts); routes reach it through ``app.api.deps``. Nothing here knows about HTTP,
WebSockets or a wire format, and nothing here imports a session (``make lint`` checks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from app import __version__
from app.audio import AudioPipeline
from app.audio.formats import OutputFormat
from app.audio.level import (
    DEFAULT_LOUDNESS_LUFS,
    LevelStage,
    LoudnessTracker,
    level_settings,
)
from app.capacity import Capacity
from app.config import Settings
from app.connections import WS_GOING_AWAY, ConnectionRegistry
from app.engines.base import Engine, SynthesisParams, VoiceHandle
from app.engines.registry import EngineChoice
from app.errors import InvalidRequest
from app.observability.metrics import Metrics
from app.presets import PRESETS, get_preset

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
    metrics: Metrics = field(default_factory=Metrics)
    connections: ConnectionRegistry = field(
        default_factory=lambda: ConnectionRegistry(1_000_000, 0)
    )
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    started_at: float = field(default_factory=time.time)
    ready: bool = False

    def __post_init__(self) -> None:
        self.metrics.bind(
            slots_in_use=lambda: self.capacity.in_use,
            slots_max=lambda: self.capacity.max_slots,
            queue_depth=lambda: self.connections.queue_depth(),
            draining=lambda: 1.0 if self.draining else 0.0,
        )

    @property
    def draining(self) -> bool:
        return self.capacity.draining

    async def drain(self, grace_s: float) -> None:
        """Shutdown: refuse new work, let utterances in flight finish (up to ``grace_s``),
        then close every socket with 1001."""
        self.capacity.draining = True
        log.info("draining: %d sockets, %d slots in use, grace %.1fs",
                 len(self.connections.live), self.capacity.in_use, grace_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while loop.time() < deadline:
            if not (self.connections.any_busy() or self.capacity.oneshots > 0):
                break
            await asyncio.sleep(0.05)  # polled: sessions have no shared "idle" event
        busy = sum(1 for c in self.connections.live if c.busy)
        if busy:
            log.warning("grace period over: closing %d sockets mid-utterance", busy)
        for conn in list(self.connections.live):
            if conn.outbox is not None:
                conn.outbox.request_close(WS_GOING_AWAY, "server shutting down")
        while loop.time() < deadline + 2.0:
            if not self.connections.live:
                break
            await asyncio.sleep(0.02)

    def pipeline(
        self, fmt: OutputFormat, *, framed: bool = True, loudness: LoudnessTracker | None = None
    ) -> AudioPipeline:
        """The audio chain for one utterance of this engine, in ``fmt``.

        Every utterance builds its chain here, so the resampler quality setting and the
        engine's declared overlap apply everywhere alike. A ``wav`` format (or
        ``framed=False``) gives one byte string per engine chunk instead of 20 ms frames.
        With ``LOUDNESS_NORMALIZATION`` the level stage (loudness gain, true-peak limiter)
        joins between crossfader and resampler, measuring into ``loudness`` (one tracker
        per reply; a fresh one if None).
        """
        engine = self.engine
        fmt = fmt.at_rate(engine.sample_rate)
        framed = framed and fmt.container == "raw"
        return AudioPipeline.for_format(
            engine.sample_rate, fmt, max_overlap=engine.capabilities.max_overlap_samples,
            framed=framed, quality=self.settings.resampler_quality,
            level=self.level_stage(loudness),
        )

    def loudness_tracker(self) -> LoudnessTracker:
        """A reply's loudness estimate, seeded by the engine's calibrated level
        (``ENGINE_LOUDNESS_LUFS`` overrides it)."""
        prior = self.settings.engine_loudness_lufs or self.engine.capabilities.loudness_lufs
        return LoudnessTracker(prior or DEFAULT_LOUDNESS_LUFS)

    def level_stage(self, loudness: LoudnessTracker | None = None) -> LevelStage | None:
        settings, engine = self.settings, self.engine
        if not settings.loudness_normalization:
            return None
        return LevelStage(
            engine.sample_rate,
            level_settings(engine.capabilities.streaming, settings.target_loudness_lufs,
                           settings.true_peak_dbtp),
            loudness if loudness is not None else self.loudness_tracker(),
        )

    def params(
        self, preset: str | None, *, speed: float = 1.0, language: str | None = None
    ) -> SynthesisParams:
        """Synthesis options for one utterance: the preset, and a language the engine has
        (``None``: the engine's first; anything else it lacks is ``invalid_request``)."""
        languages = self.engine.capabilities.languages
        if language is None:
            language = languages[0]
        elif language.lower() not in languages:
            raise InvalidRequest(
                f"Unsupported language: {language[:16]!r}. "
                f"Supported by {self.engine.name}: {', '.join(languages)}"
            )
        return SynthesisParams(preset=get_preset(preset), speed=speed, language=language.lower())

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
            # Engines that batch (Chatterbox) say how many streams run and what is left.
            "engine_streams": getattr(self.engine, "stats", dict)(),
            "connections": len(self.connections.live),
            "tasks": len(asyncio.all_tasks()),
            "draining": self.draining,
            "version": __version__,
            "presets": list(PRESETS),
            "uptime_s": round(time.time() - self.started_at, 1),
        }

