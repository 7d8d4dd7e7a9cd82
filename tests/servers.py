"""Real servers for tests: the app under uvicorn on 127.0.0.1, in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from app.config import Settings
from app.main import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, settings: Settings, **uvicorn_options: Any) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_max_size=settings.ws_max_message_bytes,
            lifespan="on",
            proxy_headers=False,  # as python -m app: the app applies TRUSTED_PROXIES
            **uvicorn_options,  # e.g. ssl_certfile/ssl_keyfile for a TLS server
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True, name="uvicorn-test")
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run ``coro`` on the server's event loop (inspect tasks, drain, ...)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def runtime(self):  # type: ignore[no-untyped-def]
        return self.app.state.runtime

    def start(self, timeout: float = 240.0) -> LiveServer:
        """Start and wait for the lifespan to finish (engine load included: a Chatterbox
        checkpoint builds for over a minute on a loaded 2-core machine, so the deadline
        only catches a server that will never start)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=10)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def make_settings(**overrides: object) -> Settings:
    """Settings for a test: no .env, no store, a throwaway cache dir unless given."""
    base: dict[str, object] = {"tts_engine": "synthetic", "synthetic_rtf": 0.0}
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]
