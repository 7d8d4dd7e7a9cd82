"""``/ws/synthesize-stream`` (and the ElevenLabs socket): speech from a live LLM token stream.

Tokens go into the reply's clause segmenter; each complete clause is queued and spoken by
one producer task while the receive loop keeps reading, so a ``cancel`` is seen at once and
the next clause is synthesized while the current one is still being sent. Every clause
ends with ``ClauseDone`` carrying its exact text; ``end`` speaks the rest and answers
``ReplyDone``. A session is a queue of ``Reply`` objects and a ``SessionState``, checked at
every transition (as Starlette's ``WebSocketState``):

    NEW --init--> READY --text/end--> REPLYING --last complete sent / cancel--> READY
    any --connection closed--> CLOSED

The session takes its slot at the first ``init`` (before any voice I/O it checks that the
replica has one) and keeps it until the connection closes: a call in progress is never
refused mid-conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from contextlib import aclosing
from enum import Enum
from typing import Any

from app.audio.formats import resolve_format
from app.capacity import Slot
from app.errors import Busy, InvalidRequest, TTSError
from app.protocol import events as ev
from app.protocol.requests import InitMessage, TextMessage, parse
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.reply import Clause, Reply
from app.sessions.utterance import Utterance, UtterancePlan, UtteranceSpec, prepare_utterance
from app.text import ClauseSegmenter, speakable
from app.text.clean import check_characters


class SessionState(Enum):
    NEW = "new"  # no init yet
    READY = "ready"  # initialized, no reply in progress
    REPLYING = "replying"  # a reply has text buffered, clauses queued, or audio unsent
    CLOSED = "closed"


_Work = tuple[Reply, Clause | None]  # None: the reply's end


class StreamSession:
    def __init__(self, runtime: Runtime, outbox: Outbox, *, route: str = "ws_stream") -> None:
        self.runtime = runtime
        self.outbox = outbox
        self.route = route
        outbox.on_sent = self._on_sent
        settings = runtime.settings
        self._idle_s = settings.clause_idle_flush_ms / 1000.0
        self._max_chars = settings.clause_max_chars
        self.state = SessionState.NEW
        self._plan: UtterancePlan | None = None
        self._slot: Slot | None = None
        self._replies: deque[Reply] = deque()  # oldest first; the first is playing
        self._work: asyncio.Queue[_Work] = asyncio.Queue()
        self._producer: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._next_clause = 0
        self._next_reply = 0
        self._session_text = 0  # characters received on this connection

    @property
    def busy(self) -> bool:
        """A reply is in progress (text buffered, clauses queued, or audio not yet sent)."""
        return self.state is SessionState.REPLYING

    def _require_init(self) -> None:
        if self.state is SessionState.NEW:
            raise InvalidRequest("Session not initialized", code="not_initialized")

    # --- message handlers -------------------------------------------------------------

    async def on_init(self, data: dict[str, Any]) -> None:
        if not data.get("voice_id"):
            raise InvalidRequest("Missing voice_id in init")
        if self.state is SessionState.REPLYING:
            raise InvalidRequest(
                "A reply is in progress: send end (or cancel) before a new init",
                code="invalid_state",
            )
        msg: InitMessage = parse(InitMessage, data)
        if self.runtime.draining:
            raise Busy("Server shutting down: start the call on another replica",
                       code="shutting_down")
        fmt = resolve_format("stream", msg.output_format)
        if msg.stream_sid is not None and fmt.encoding != "mulaw":
            raise InvalidRequest("Twilio mode (stream_sid) sends mu-law only")
        spec = UtteranceSpec(None, msg.voice_id, msg.preset, fmt, speed=msg.speed,
                             language=msg.language, normalize=msg.normalize, route=self.route)
        plan = await prepare_utterance(self.runtime, spec, check_capacity=self._slot is None)
        if self._slot is None:
            self._slot = self.runtime.capacity.acquire(oneshot=False)
        self._plan = plan
        self.state = SessionState.READY
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce(), name="stream-producer")
        voice = plan.voice
        await self.outbox.control(ev.Ready(
            voice.voice_id, plan.params.preset.name, builtin_voice=voice.builtin,
            backend=self.runtime.engine.name, format=plan.format, stream_sid=msg.stream_sid,
            language=msg.language,
        ))

    async def on_text(self, data: dict[str, Any]) -> None:
        self._require_init()
        msg: TextMessage = parse(TextMessage, data)
        check_characters(msg.content)
        if self.runtime.draining and self.state is not SessionState.REPLYING:
            raise Busy("Server shutting down: no new reply on this replica",
                       code="shutting_down")
        reply = self._receiving()
        settings = self.runtime.settings
        limit = settings.max_text_length
        if reply.text_chars + len(msg.content) > limit:
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
        reply.text_chars += len(msg.content)
        self._session_text += len(msg.content)
        self._enqueue(reply, reply.segmenter.push(msg.content))
        self._arm_idle_flush(reply)

    async def on_end(self, data: dict[str, Any]) -> None:
        self._require_init()
        self._cancel_idle_flush()
        reply = self._receiving()
        self._enqueue(reply, reply.segmenter.flush())
        reply.ended = True
        self._work.put_nowait((reply, None))

    async def on_cancel(self, data: dict[str, Any]) -> None:
        self._cancel_idle_flush()
        self.outbox.cancel()
        while not self._work.empty():
            self._work.get_nowait()
        producer = self._producer
        if producer is not None and not producer.done():
            producer.cancel()
            # Let the engine stop (one step); never hold the acknowledgement for long.
            await asyncio.wait({producer}, timeout=0.05)
        self._producer = None
        frames, spoken, estimated = 0, "", False
        if self._replies:
            playing = self._replies[0]
            frames = playing.frames
            spoken, estimated = playing.spoken()
        for reply in self._replies:
            reply.utterance.close("cancelled")
        self._replies.clear()
        await self.outbox.control(ev.Cancelled(frames, spoken, estimated))
        if self._plan is not None:
            self.state = SessionState.READY
            self._producer = asyncio.create_task(self._produce(), name="stream-producer")

    # --- replies ------------------------------------------------------------------------

    def _receiving(self) -> Reply:
        """The reply that takes text now: the last one unless it has ended, else a new one."""
        if self._replies and not self._replies[-1].ended:
            return self._replies[-1]
        assert self._plan is not None
        index = self._next_reply
        self._next_reply += 1
        utterance = Utterance(self.runtime, self._plan, None, reply=index)
        reply = Reply(index, utterance, ClauseSegmenter(max_chars=self._max_chars))
        self._replies.append(reply)
        self.state = SessionState.REPLYING
        return reply

    def _enqueue(self, reply: Reply, texts: list[str]) -> None:
        now = time.perf_counter()
        for text in texts:
            self._work.put_nowait((reply, Clause(self._next_clause, text, now)))
            self._next_clause += 1
            reply.clauses += 1

    def _arm_idle_flush(self, reply: Reply) -> None:
        self._cancel_idle_flush()
        if self._idle_s > 0 and reply.segmenter.buffered.strip():
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(self._idle_s, self._idle_flush, reply)

    def _cancel_idle_flush(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_flush(self, reply: Reply) -> None:
        self._idle = None
        if not reply.ended and reply in self._replies:
            self._enqueue(reply, reply.segmenter.flush_idle())

    def _reply(self, index: int | None) -> Reply | None:
        for reply in self._replies:
            if reply.index == index:
                return reply
        return None

    def _on_sent(self, event: ev.Event, seconds: float) -> None:
        """What the caller has received: for the cancel estimate and the reply's end."""
        if isinstance(event, ev.Audio):
            reply = self._reply(event.reply)
            if reply is not None:
                reply.sent_audio(seconds)
        elif isinstance(event, ev.ClauseDone):
            reply = self._reply(event.reply)
            if reply is not None:
                reply.sent_clause(event.text)
        elif isinstance(event, ev.ReplyDone):
            reply = self._reply(event.reply)
            if reply is not None:
                self._replies.remove(reply)
            if not self._replies and self.state is SessionState.REPLYING:
                self.state = SessionState.READY

    # --- the producer -----------------------------------------------------------------

    async def _produce(self) -> None:
        while True:
            reply, clause = await self._work.get()
            generation = self.outbox.generation
            if clause is None:
                reply.utterance.finish()
                reply.utterance.close(reply.failure)
                await self.outbox.control(
                    ev.ReplyDone(reply.frames, reply.total_ms(), reply.clauses, reply.index),
                    generation,
                )
                continue
            try:
                await self._speak(reply, clause, generation)
            except TTSError as exc:
                reply.failure = exc.code
                await self.outbox.control(ev.Error.of(exc, clause.index))

    async def _speak(self, reply: Reply, clause: Clause, generation: int) -> None:
        frames, seconds = 0, 0.0
        spoken = None
        reply.unheard.append(clause)
        if speakable(clause.text):
            audio = reply.utterance.speak(
                clause.text.strip(), clause=clause.index, ready_at=clause.ready_at,
                lead_s=reply.queued_audio_s(),
            )
            async with aclosing(audio):
                async for event in audio:
                    spoken = event.spoken
                    await self.outbox.audio(event, generation)
                    reply.produced(event.seconds)
                    frames += 1
                    seconds += event.seconds
        done = ev.ClauseDone(clause.index, clause.text, frames, seconds, reply.index, spoken)
        await self.outbox.control(done, generation)

    async def aclose(self) -> None:
        self.state = SessionState.CLOSED
        self._cancel_idle_flush()
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._producer
        for reply in self._replies:
            reply.utterance.close("client_gone")
        self._replies.clear()
        if self._slot is not None:
            self._slot.release()
            self._slot = None
