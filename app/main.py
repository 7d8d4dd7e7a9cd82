"""The ASGI app: ``create_app(settings)`` builds it; ``app`` is the one uvicorn serves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__
from app.api.body_limit import BodyLimitMiddleware
from app.api.elevenlabs_http import router as elevenlabs_http_router
from app.api.elevenlabs_ws import router as elevenlabs_ws_router
from app.api.errors import install_error_handlers
from app.api.http import router as http_router
from app.api.http_stream import router as http_stream_router
from app.api.middleware import RequestIdMiddleware
from app.api.normalize import router as normalize_router
from app.api.openai_compat import router as openai_router
from app.api.playground import router as playground_router
from app.api.proxies import TrustedProxyMiddleware
from app.api.speech_ws import router as speech_ws_router
from app.api.twilio import router as twilio_router
from app.api.twilio_replay import ReplayCache
from app.api.voices import router as voices_router
from app.api.ws import router as ws_router
from app.audio.formats import probe_encoders
from app.capacity import Capacity
from app.config import Settings, get_settings
from app.connections import ConnectionRegistry
from app.engines.faults import FaultGuard
from app.engines.registry import build_engine, choose_engine
from app.runtime import Runtime
from app.sessions.warmups import WarmupPool
from app.voices.manager import VoiceManager
from app.voices.stores import build_store

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        choice = choose_engine(settings)
        log.info("engine: %s (%s)", choice.name, choice.reason)
        engine = FaultGuard(build_engine(choice.name, settings),
                            on_fault=lambda reason: _engine_fault(app, reason))
        http_client = httpx.AsyncClient(
            timeout=settings.voice_fetch_timeout_s,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        store = build_store(settings, http_client)
        voices = VoiceManager(settings, engine, store)
        runtime = Runtime(
            settings=settings,
            engine=engine,
            choice=choice,
            voices=voices,
            capacity=Capacity(settings.max_concurrent_streams),
            connections=ConnectionRegistry(
                settings.max_connections, settings.max_sessions_per_key
            ),
        )
        app.state.runtime = runtime
        voices.observer = runtime.metrics
        if not settings.api_key_list:
            log.warning(
                "AUTHENTICATION IS OFF: API_KEYS is empty, so anyone who can reach this "
                "port can synthesize. Set API_KEYS before exposing the service."
            )
        await engine.load()
        await asyncio.to_thread(probe_encoders)
        runtime.ready = True
        log.info(
            "ready: engine=%s device=%s rate=%d store=%s",
            engine.name,
            engine.device,
            engine.sample_rate,
            store.describe() if store is not None else "none (only voice 'default')",
        )
        try:
            yield
        finally:
            runtime.ready = False
            for task in list(runtime.background):
                task.cancel()
            await voices.aclose()
            await http_client.aclose()
            await engine.aclose()

    app = FastAPI(
        title="Telephony TTS",
        version=__version__,
        description="Real-time text-to-speech for phone-call voice agents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.twilio_replays = ReplayCache(settings.twilio_replay_window_s)
    app.state.warmups = WarmupPool(settings.warmup_concurrency)
    install_error_handlers(app)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        timeout_s=settings.request_body_timeout_s,
        path_limits={"/twilio/voice": settings.twilio_max_request_bytes},
    )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxies)
    app.include_router(http_router)
    app.include_router(twilio_router)
    app.include_router(voices_router)
    app.include_router(ws_router)
    app.include_router(http_stream_router)
    app.include_router(speech_ws_router)
    app.include_router(openai_router)
    app.include_router(elevenlabs_ws_router)
    app.include_router(elevenlabs_http_router)
    app.include_router(playground_router)
    app.include_router(normalize_router)
    return app


def _engine_fault(app: FastAPI, reason: str) -> None:
    """A sticky engine fault: stop taking work, and let the server drain and exit non-zero.

    ``python -m app`` registers ``on_engine_fault`` (``app.server``); under another server
    the replica only turns unready and refuses work, for the orchestrator to replace.
    """
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:
        runtime.ready = False
    exit_hook = getattr(app.state, "on_engine_fault", None)
    if exit_hook is not None:
        exit_hook(reason)


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` for uvicorn, built on first access so importing this module
    # (tests, tools) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
