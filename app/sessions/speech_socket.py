"""``WS /v1/audio/speech/stream/ws``: the chunked HTTP stream's socket twin (seed-003 shape).

One request at a time on a connection, each answered by a ``start`` JSON message, the audio
as binary messages (headerless PCM16 little-endian or mu-law, one per engine chunk, as it
is produced) and an ``end`` JSON message:

    → {"text", "voice_id": "default", "preset", "format": "pcm_24000", "speed",
       "temperature", "top_p"}            ("type": "start" may be present)
    ← {"type": "start", "format", "sample_rate", "encoding", "channels": 1, "voice_id",
       "backend"}
    ← <binary> ...
    ← {"type": "end", "chunks", "bytes", "duration_s", "first_chunk_ms", "total_ms"}
    → {"type": "cancel"}                   (stops the running request: ``cancelled``)

Every request is validated (text, voice, format, a slot) before its ``start``; an error is
``{"type": "error", "error", "code"}`` and the socket stays open. The request runs on its own
task so the reader stays free for ``cancel``. Binary messages travel through the outbox
like every other message (so ordering, slow-consumer and cancel hold) as ``{"binary":
base64}``, which the route's writer sends as a binary frame.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from contextlib import aclosing
from typing import Any

from app.errors import InvalidRequest, TTSError
from app.protocol import serializers as ser
from app.protocol.requests import parse
from app.protocol.speech import SpeechStreamRequest, stream_format
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.speech import SpeechJob, open_speech


def binary(data: bytes) -> dict[str, Any]:
    """An outbox message the route's writer sends as one binary frame."""
    return {"binary": base64.b64encode(data).decode("ascii")}


class SpeechSocketSession:
    def __init__(self, runtime: Runtime, outbox: Outbox) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def on_message(self, data: dict[str, Any]) -> None:
        kind = data.get("type", "start")
        if kind == "cancel":
            await self._cancel()
            return
        if kind != "start":
            raise InvalidRequest(f"Unknown message type: {str(kind)[:32]}", code="unknown_type")
        if self.busy:
            raise InvalidRequest("A request is running: wait for its end or cancel it",
                                 code="invalid_state")
        req = parse(SpeechStreamRequest, {k: v for k, v in data.items() if k != "type"})
        fmt, _ = stream_format(req.format)
        job = await open_speech(
            self.runtime, text=req.text, voice_id=req.voice_id, preset=req.preset, fmt=fmt,
            speed=req.speed, **req.sampling(),
        )
        await self.outbox.control({
            "type": "start", "format": req.format, "sample_rate": fmt.sample_rate,
            "encoding": "mulaw" if fmt.encoding == "mulaw" else "pcm_s16le", "channels": 1,
            "voice_id": job.voice.voice_id, "backend": self.runtime.engine.name,
        })
        self._task = asyncio.create_task(self._run(job, fmt.bytes_per_sample * fmt.sample_rate),
                                         name="speech-socket")

    async def _run(self, job: SpeechJob, bytes_per_second: int) -> None:
        generation = self.outbox.generation
        started = time.perf_counter()
        chunks = 0
        total = 0
        first_ms: float | None = None
        try:
            async with aclosing(job.chunks()) as audio:
                async for data in audio:
                    if first_ms is None:
                        first_ms = (time.perf_counter() - started) * 1000.0
                    chunks += 1
                    total += len(data)
                    await self.outbox.audio(binary(data), generation, len(data) / bytes_per_second)
        except TTSError as exc:
            await self.outbox.control(ser.error(exc.message, exc.code), generation)
            return
        finally:
            job.release()
        await self.outbox.control({
            "type": "end", "chunks": chunks, "bytes": total,
            "duration_s": round(total / bytes_per_second, 3),
            "first_chunk_ms": round(first_ms or 0.0, 1),
            "total_ms": round((time.perf_counter() - started) * 1000.0, 1),
        }, generation)

    async def _cancel(self) -> None:
        task = self._task
        self.outbox.cancel()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.outbox.control({"type": "cancelled"})

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
