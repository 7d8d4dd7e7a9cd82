"""``/ws/synthesize-stream``: speech from a live LLM token stream.

Tokens go into the clause segmenter; each complete clause is queued and spoken by one
producer task while the receive loop keeps reading, so a ``cancel`` is seen at once and
the next clause is synthesized while the current one is still being sent. Every clause
ends with ``sentence_complete`` carrying its exact text (and a Twilio ``mark`` in Twilio
mode); ``end`` speaks the rest and answers ``complete``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from app.audio import get_output_format
from app.engines.base import SynthesisParams, VoiceHandle
from app.errors import Busy, InvalidRequest, TTSError
from app.protocol import serializers as ser
from app.protocol.requests import InitMessage, TextMessage, parse
from app.runtime import Runtime
from app.sessions.capacity import Slot
from app.sessions.outbox import Outbox
from app.sessions.utterance import UtteranceStats, synthesize_frames
from app.text import ClauseSegmenter, speakable
from app.text.estimate import estimate_spoken
from app.voices.validation import validate_voice_id


@dataclass
class _Clause:
    index: int
    text: str
    ready_at: float


_END = object()


@dataclass
class _Config:
    voice: VoiceHandle
    params: SynthesisParams
    serializer: ser.FrameSerializer


class StreamSession:
    def __init__(self, runtime: Runtime, outbox: Outbox) -> None:
        self.runtime = runtime
        self.outbox = outbox
        outbox.on_sent = self._on_sent
        settings = runtime.settings
        self._idle_s = settings.clause_idle_flush_ms / 1000.0
        self._max_chars = settings.clause_max_chars
        self._config: _Config | None = None
        self._slot: Slot | None = None
        self._segmenter = ClauseSegmenter(max_chars=self._max_chars)
        self._queue: asyncio.Queue[_Clause | object] = asyncio.Queue()
        self._producer: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._next_clause = 0
        self._chunk_index = 0
        self._pending = 0  # clauses queued or being spoken in this reply
        self._reply_started: float | None = None
        self._reply_frames = 0
        self._reply_text = 0  # characters received in this reply
        self._session_text = 0  # characters received on this connection
        # The reply's playback timeline, to tell engines how much audio the caller has
        # queued when a later clause starts (``SynthesisParams.lead_s``).
        self._playback_start: float | None = None
        self._reply_audio_s = 0.0
        # What the caller has received of this reply (updated as messages are written).
        self._heard: list[str] = []
        # Clauses whose sentence_complete is not written yet, in order; the first is the
        # one the caller is hearing, for ``_current_seconds`` of its audio.
        self._unheard: deque[_Clause] = deque()
        self._current_seconds = 0.0

    # --- message handlers -------------------------------------------------------------

    async def on_init(self, data: dict[str, Any]) -> None:
        if not data.get("voice_id"):
            await self.outbox.control(ser.error("Missing voice_id in init", "invalid_request"))
            return
        if self._busy():
            raise InvalidRequest(
                "A reply is in progress: send end (or cancel) before a new init",
                code="invalid_state",
            )
        msg: InitMessage = parse(InitMessage, data)
        if self.runtime.draining:
            raise Busy("Server shutting down: start the call on another replica",
                       code="shutting_down")
        params = self.runtime.params(msg.preset)
        voice_id = validate_voice_id(msg.voice_id)
        if msg.stream_sid is not None and msg.output_format != "mulaw":
            raise InvalidRequest("Twilio mode (stream_sid) sends mu-law only")
        if msg.output_format == "wav":
            raise InvalidRequest("output_format wav is not available on this socket")
        fmt = get_output_format(msg.output_format)
        voice = await self.runtime.voices.get(voice_id)
        if self._slot is None:
            self._slot = self.runtime.capacity.acquire(oneshot=False)
        self._config = _Config(voice, params, ser.FrameSerializer(fmt, msg.stream_sid))
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce(), name="stream-producer")
        await self.outbox.control(
            ser.ready(voice.voice_id, params.preset.name, builtin_voice=voice.builtin,
                      backend=self.runtime.engine.name)
        )

    async def on_text(self, data: dict[str, Any]) -> None:
        if self._config is None:
            await self.outbox.control(ser.error("Session not initialized", "not_initialized"))
            return
        msg: TextMessage = parse(TextMessage, data)
        if self.runtime.draining and not self._busy():
            raise Busy("Server shutting down: no new reply on this replica",
                       code="shutting_down")
        settings = self.runtime.settings
        limit = settings.max_text_length
        if self._reply_text + len(msg.content) > limit:
            raise InvalidRequest(
                f"Reply text is too long (limit {limit} characters per reply)",
                code="text_too_long",
            )
        session_limit = settings.max_session_text_length
        if self._session_text + len(msg.content) > session_limit:
            raise InvalidRequest(
                f"Session text is too long (limit {session_limit} characters per connection)",
                code="text_too_long",
            )
        self._reply_text += len(msg.content)
        self._session_text += len(msg.content)
        if self._reply_started is None:
            self._reply_started = time.perf_counter()
        self._enqueue(self._segmenter.push(msg.content))
        self._arm_idle_flush()

    async def on_end(self, data: dict[str, Any]) -> None:
        if self._config is None:
            await self.outbox.control(ser.error("Session not initialized", "not_initialized"))
            return
        self._cancel_idle_flush()
        if self._reply_started is None:
            self._reply_started = time.perf_counter()
        self._enqueue(self._segmenter.flush())
        self._pending += 1
        self._queue.put_nowait(_END)

    async def on_cancel(self, data: dict[str, Any]) -> None:
        self._cancel_idle_flush()
        self.outbox.cancel()
        self._segmenter = ClauseSegmenter(max_chars=self._max_chars)
        while not self._queue.empty():
            self._queue.get_nowait()
        producer = self._producer
        if producer is not None and not producer.done():
            producer.cancel()
            # Let the engine stop (one step); never hold the acknowledgement for long.
            await asyncio.wait({producer}, timeout=0.05)
        self._producer = None
        partial = ""
        estimated = False
        if self._unheard:
            partial, estimated = estimate_spoken(
                self._unheard[0].text, self._current_seconds, finished=False
            )
        spoken = "".join(self._heard) + partial
        await self.outbox.control(ser.cancelled(self._reply_frames, spoken, estimated))
        self._reset_reply()
        if self._config is not None:
            self._producer = asyncio.create_task(self._produce(), name="stream-producer")

    # --- internals ----------------------------------------------------------------------

    def _busy(self) -> bool:
        return self._pending > 0 or bool(self._segmenter.buffered)

    @property
    def busy(self) -> bool:
        """A reply is in progress (text buffered, clauses queued or being spoken)."""
        return self._busy()

    def _reset_reply(self) -> None:
        self._pending = 0
        self._reply_started = None
        self._reply_frames = 0
        self._reply_text = 0
        self._playback_start = None
        self._reply_audio_s = 0.0
        self._heard = []
        self._unheard.clear()
        self._current_seconds = 0.0

    def _enqueue(self, clauses: list[str]) -> None:
        now = time.perf_counter()
        for text in clauses:
            self._pending += 1
            self._queue.put_nowait(_Clause(self._next_clause, text, now))
            self._next_clause += 1

    def _arm_idle_flush(self) -> None:
        self._cancel_idle_flush()
        if self._idle_s > 0 and self._segmenter.buffered.strip():
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(self._idle_s, self._idle_flush)

    def _cancel_idle_flush(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_flush(self) -> None:
        self._idle = None
        self._enqueue(self._segmenter.flush_idle())

    def _on_sent(self, message: dict[str, Any], seconds: float) -> None:
        kind = message.get("type")
        if kind == "sentence_complete":
            self._heard.append(message["text"])
            if self._unheard:
                self._unheard.popleft()
            self._current_seconds = 0.0
        elif seconds:
            self._current_seconds += seconds

    async def _produce(self) -> None:
        while True:
            item = await self._queue.get()
            generation = self.outbox.generation
            if item is _END:
                started = self._reply_started or time.perf_counter()
                total_ms = (time.perf_counter() - started) * 1000.0
                await self.outbox.control(
                    ser.complete(self._reply_frames, total_ms, self._next_clause), generation
                )
                self._reset_reply()
                continue
            assert isinstance(item, _Clause)
            try:
                await self._speak(item, generation)
            except TTSError as exc:
                await self.outbox.control(ser.error(exc.message, exc.code, clause=item.index))
            self._pending = max(0, self._pending - 1)

    async def _speak(self, clause: _Clause, generation: int) -> None:
        config = self._config
        assert config is not None
        engine = self.runtime.engine
        serializer = config.serializer
        frames_in_clause = 0
        self._unheard.append(clause)
        if speakable(clause.text):
            pipeline = self.runtime.pipeline(serializer.fmt)
            stats = UtteranceStats(started=clause.ready_at)
            frame_s = serializer.fmt.frame_ms / 1000.0
            params = replace(config.params, lead_s=self._queued_audio_s())
            frames = synthesize_frames(
                engine, config.voice, clause.text.strip(), params, pipeline, stats,
                self.runtime.normalization_language(params),
            )
            async with aclosing(frames):
                async for frame in frames:
                    message = serializer.stream_frame(frame, self._chunk_index)
                    await self.outbox.audio(message, generation, frame_s)
                    if self._playback_start is None:
                        self._playback_start = time.perf_counter()
                    self._reply_audio_s += frame_s
                    self._chunk_index += 1
                    self._reply_frames += 1
                    frames_in_clause += 1
        done = ser.sentence_complete(clause.index, clause.text, frames_in_clause)
        await self.outbox.control(done, generation)
        mark = serializer.mark(f"clause-{clause.index}")
        if mark is not None:
            await self.outbox.control(mark, generation)

    def _queued_audio_s(self) -> float:
        """Audio of this reply the caller has not played yet (0 before the first frame)."""
        if self._playback_start is None:
            return 0.0
        played = time.perf_counter() - self._playback_start
        return max(0.0, self._reply_audio_s - played)

    async def aclose(self) -> None:
        self._cancel_idle_flush()
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._producer
        if self._slot is not None:
            self._slot.release()
            self._slot = None
