"""``/ws/synthesize``: requests one after another on one connection.

Requests queue up and run in order on one worker task; the receive loop stays free, so a
``cancel`` arrives while audio is being produced. A cancel stops the running utterance
(its engine stream is closed), drops queued requests and its unsent frames, and answers
``cancelled`` in place of the final message.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from typing import Any

from app.audio import OUTPUT_FORMATS, get_output_format, wav_bytes
from app.errors import InvalidRequest, TTSError
from app.protocol import serializers as ser
from app.protocol.requests import SynthesizeRequest, check_text, parse
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.utterance import UtteranceStats, synthesize_frames
from app.text.estimate import estimate_spoken
from app.voices.validation import validate_voice_id

MAX_QUEUED_REQUESTS = 16


class RequestSession:
    def __init__(self, runtime: Runtime, outbox: Outbox) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self._requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED_REQUESTS)
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._current_text = ""
        self._sent_before = (0, 0.0)  # outbox counters when the current request started
        self._session_text = 0  # characters received on this connection

    @property
    def busy(self) -> bool:
        """A request is running or queued."""
        running = self._current is not None and not self._current.done()
        return running or not self._requests.empty()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="ws-synthesize-worker")

    async def on_request(self, data: dict[str, Any]) -> None:
        if not data.get("text") or not data.get("voice_id"):
            await self.outbox.control(ser.error("Missing text or voice_id", "invalid_request"))
            return
        if self.runtime.draining:
            await self.outbox.control(
                ser.error("Server shutting down: try another replica", "shutting_down")
            )
            return
        text = data.get("text")
        if isinstance(text, str):
            limit = self.runtime.settings.max_session_text_length
            if self._session_text + len(text) > limit:
                await self.outbox.control(ser.error(
                    f"Session text is too long (limit {limit} characters per connection)",
                    "text_too_long",
                ))
                return
            self._session_text += len(text)
        try:
            self._requests.put_nowait(data)
        except asyncio.QueueFull:
            await self.outbox.control(
                ser.error("Too many queued requests on this connection", "busy")
            )

    async def on_cancel(self) -> None:
        while not self._requests.empty():
            self._requests.get_nowait()
        self.outbox.cancel()
        current = self._current
        if current is None or current.done():
            await self.outbox.control(ser.cancelled(0, "", False))
            return
        current.cancel()
        # Let the engine notice (one step); never hold the acknowledgement for long.
        await asyncio.wait({current}, timeout=0.05)
        frames = self.outbox.sent_audio - self._sent_before[0]
        seconds = self.outbox.sent_seconds - self._sent_before[1]
        spoken, estimated = estimate_spoken(self._current_text, seconds, finished=False)
        await self.outbox.control(ser.cancelled(frames, spoken, estimated))

    async def _run(self) -> None:
        while True:
            data = await self._requests.get()
            self._current = asyncio.create_task(self._one(data), name="ws-synthesize-request")
            try:
                await self._current
            except asyncio.CancelledError:
                # A cancel of the request (barge-in) is normal; a cancel of this worker
                # (the connection closed) must end the loop.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            finally:
                self._current = None

    async def _one(self, data: dict[str, Any]) -> None:
        try:
            await self._synthesize(data)
        except TTSError as exc:
            await self.outbox.control(exc.to_dict())

    async def _synthesize(self, data: dict[str, Any]) -> None:
        runtime = self.runtime
        req: SynthesizeRequest = parse(SynthesizeRequest, data)
        text = check_text(req.text, runtime.settings.max_text_length)
        params = runtime.params(req.preset, speed=req.speed)
        voice_id = validate_voice_id(req.voice_id)
        engine = runtime.engine
        wav = req.output_format == "wav"
        if req.stream_sid is not None and req.output_format not in ("mulaw", "wav"):
            raise InvalidRequest("Twilio mode (stream_sid) sends mu-law only")
        if not wav and req.output_format not in OUTPUT_FORMATS:
            valid = ", ".join([*OUTPUT_FORMATS, "wav"])
            raise InvalidRequest(
                f"Unknown output_format: {req.output_format:.32}. Valid formats: {valid}"
            )
        fmt = get_output_format("mulaw" if wav else req.output_format)
        voice = await runtime.voices.get(voice_id)
        serializer = ser.FrameSerializer(fmt, req.stream_sid)
        pipeline = runtime.pipeline(None if wav else fmt)
        generation = self.outbox.generation
        self._current_text = text
        self._sent_before = (self.outbox.sent_audio, self.outbox.sent_seconds)
        stats = UtteranceStats()
        index = 0
        with runtime.capacity.acquire():
            frames = synthesize_frames(engine, voice, text, params, pipeline, stats,
                                       runtime.normalization_language(params))
            async with aclosing(frames):
                async for frame in frames:
                    if wav:
                        message = serializer.wav_chunk(
                            wav_bytes(frame, engine.sample_rate), index, engine.sample_rate
                        )
                        seconds = len(frame) / 2 / engine.sample_rate
                    else:
                        message = serializer.seed_frame(frame, index)
                        seconds = fmt.frame_ms / 1000.0
                    await self.outbox.audio(message, generation, seconds)
                    index += 1
        runtime.observe(params.preset.name, stats.first_frame_ms, stats.total_ms)
        await self.outbox.control(
            ser.seed_final(
                index=index,
                first_chunk_ms=stats.first_frame_ms or 0.0,
                total_ms=stats.total_ms,
                total_chunks=index,
                latency=stats.latency(pipeline),
                backend=engine.name,
                voice_id=voice.voice_id,
                builtin_voice=voice.builtin,
            ),
            generation,
        )

    async def aclose(self) -> None:
        for task in (self._current, self._worker):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._current, self._worker):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
