"""Uvicorn with a graceful drain on SIGTERM (``python -m app`` runs this).

Plain uvicorn closes every WebSocket with 1012 as soon as it gets SIGTERM, before the app's
shutdown runs, which would cut calls mid-word. Here the first SIGTERM (or SIGINT) starts a
drain instead: the listening sockets close (no new connections), ``/ready`` and new
requests answer 503 on open connections, utterances in flight run to their end for up to
``SHUTDOWN_GRACE_SECONDS``, every socket is closed with 1001, and only then does uvicorn
shut down. A second signal exits at once, as uvicorn does. A sticky engine fault
(``app.engines.faults``) starts the same drain and makes the process exit with
``EXIT_ENGINE_FAULT``, so the orchestrator replaces the replica.

Before all that, for ``SHUTDOWN_DEREGISTER_SECONDS`` (0 by default), ``/ready`` answers 503
while calls are still accepted: a load balancer that polls ``/ready`` stops sending calls
before the port closes, so no call is routed here in the moment the drain begins (in
Kubernetes a preStop sleep does the same, and this stays 0).

Before serving, the soft file-descriptor limit is raised to the hard one: every connection
is a descriptor, and the common default of 1024 would let about a thousand idle or slow
clients make the replica refuse its own health checks.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

EXIT_ENGINE_FAULT = 3


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
        self.exit_code = 0
        app.state.on_engine_fault = self.engine_fault

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def engine_fault(self, reason: str) -> None:
        """The engine is poisoned: drain, then exit non-zero (``EXIT_ENGINE_FAULT``)."""
        self.exit_code = EXIT_ENGINE_FAULT
        if self._loop is not None:
            log.critical("engine fault: draining for up to %.1fs, then exiting with %d",
                         self._grace_s, EXIT_ENGINE_FAULT)
            self._loop.call_soon_threadsafe(self._begin_drain)

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


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft descriptor limit to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted * 2)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the file-descriptor limit: %s", exc)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("file-descriptor limit %d is below the connection bound %d "
                    "(HTTP_MAX_CONCURRENCY): raise `ulimit -n`", soft, wanted)
    return soft


def serve(
    app: FastAPI, config: uvicorn.Config, grace_s: float, deregister_s: float = 0.0
) -> int:
    """Run until shut down; the process's exit code (non-zero after an engine fault)."""
    raise_fd_limit((config.limit_concurrency or 1024) + 64)
    server = GracefulServer(config, app, grace_s, deregister_s)
    server.run()
    return server.exit_code
