"""Uvicorn with a graceful drain on SIGTERM (``python -m app`` runs this).

Plain uvicorn closes every WebSocket with 1012 as soon as it gets SIGTERM, before the app's
shutdown runs, which would cut calls mid-word. Here the first SIGTERM (or SIGINT) starts a
drain instead: the listening sockets close (no new connections), ``/ready`` and new
requests answer 503 on open connections, utterances in flight run to their end for up to
``SHUTDOWN_GRACE_SECONDS``, every socket is closed with 1001, and only then does uvicorn
shut down. A second signal exits at once, as uvicorn does.

Before all that, for ``SHUTDOWN_DEREGISTER_SECONDS`` (0 by default), ``/ready`` answers 503
while calls are still accepted: a load balancer that polls ``/ready`` stops sending calls
before the port closes, so no call is routed here in the moment the drain begins (in
Kubernetes a preStop sleep does the same, and this stays 0).
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, app: FastAPI, grace_s: float, deregister_s: float = 0.0
    ) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s
        self._deregister_s = deregister_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None or self.should_exit:
            super().handle_exit(sig, frame)  # second signal: uvicorn's own (forced) exit
            return
        log.info("signal %d: draining for up to %.1fs", sig, self._grace_s)
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            runtime = getattr(self._app.state, "runtime", None)
            if runtime is not None and self._deregister_s > 0:
                runtime.ready = False  # /ready 503; work is still accepted meanwhile
                log.info("deregistering: /ready is 503 for %.1fs before draining",
                         self._deregister_s)
                await asyncio.sleep(self._deregister_s)
            for server in getattr(self, "servers", []):
                server.close()  # stop accepting; open connections carry on
            if runtime is not None:
                await runtime.drain(self._grace_s)
        except Exception:
            log.exception("drain failed")
        finally:
            log.info("drain finished: shutting down")
            self.should_exit = True


def serve(
    app: FastAPI, config: uvicorn.Config, grace_s: float, deregister_s: float = 0.0
) -> None:
    GracefulServer(config, app, grace_s, deregister_s).run()
