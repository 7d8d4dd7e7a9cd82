"""Warmups the call webhook asks for: one per voice at a time, a few at once, no call slot.

A ringing call warms its voice so the first reply is fast, but the warmup is a courtesy,
not a call: it must never hold one of the ``MAX_CONCURRENT_STREAMS`` slots that calls
need, and a burst of webhooks (or one replayed) must not turn into a burst of synthesis.
So a voice already being warmed or waiting is not queued twice, at most
``WARMUP_CONCURRENCY`` warmups run at once, at most ``max_waiting`` more wait, and the rest
are dropped (the call still works, its first reply just pays the cold start).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.errors import TTSError
from app.runtime import Runtime
from app.sessions.oneshot import warmup

log = logging.getLogger(__name__)


class WarmupPool:
    def __init__(self, concurrency: int, max_waiting: int = 32) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._gate: asyncio.Semaphore | None = None  # made on the loop, at first use
        self._voices: set[str] = set()  # waiting or running
        self.started = 0
        self.skipped = 0

    def stats(self) -> dict[str, Any]:
        return {"pending": len(self._voices), "started": self.started, "skipped": self.skipped,
                "concurrency": self.concurrency}

    def submit(self, runtime: Runtime, voice_id: str, preset: str = "realtime") -> bool:
        """Start warming ``voice_id`` in the background; False when deduplicated or full."""
        if (voice_id in self._voices or runtime.draining
                or len(self._voices) >= self.concurrency + self.max_waiting):
            self.skipped += 1
            return False
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.concurrency)
        self._voices.add(voice_id)
        self.started += 1
        task = asyncio.create_task(self._run(runtime, voice_id, preset, self._gate),
                                   name=f"warmup-{voice_id}")
        runtime.background.add(task)
        task.add_done_callback(runtime.background.discard)
        return True

    async def _run(self, runtime: Runtime, voice_id: str, preset: str,
                   gate: asyncio.Semaphore) -> None:
        try:
            async with gate:
                ms = await warmup(runtime, voice_id, preset, hold_slot=False)
            log.info("call warmup done: voice %s in %.0f ms", voice_id, ms)
        except TTSError as exc:
            log.warning("call warmup failed: voice %s: %s", voice_id, exc.code)
        except Exception:
            log.exception("call warmup crashed: voice %s", voice_id)
        finally:
            self._voices.discard(voice_id)
