"""Contexts on one socket: ElevenLabs' multi-stream-input (and stream-input, one context).

A connection is one call: the voice and a synthesis slot are settled at its first message
(``start``: capacity first, then the voice) and kept until it closes; a socket that cannot
work is refused then, with an error and a close that is not 1000 (1008 for a bad request,
1013 for a full replica or a store that is down), since every later message would fail the
same way.
Each context is one reply: its own clause segmenter and its own ``Utterance`` (on the
connection's slot, with the metrics of a reply). One producer speaks the queued clauses in
order and emits each engine chunk's ``Audio`` event as soon as it has passed the chain; the
connection's serializer (``app.protocol.elevenlabs_ws``) encodes it (one MP3 or Ogg stream
per context) and aligns the characters it covers, so the first audio of a reply follows the
engine's first chunk, not the end of the first clause.

Messages (``app.protocol.elevenlabs_ws`` has the client-side notes):

- a new ``context_id`` opens a context; its whitespace-only opener (``{"text": " "}``) is
  not text; text is pushed to the segmenter and complete clauses are queued; with
  ``auto_mode`` a message that ends a sentence is spoken at once (the clients send whole
  sentences in that mode); a reply left without punctuation is spoken after
  ``CLAUSE_IDLE_FLUSH_MS``;
- ``flush`` queues everything buffered; ``close_context`` does the same and ends the
  context's input: its audio is finished, then ``isFinal`` (with ``contextId``);
- barge-in: when a newer context gets text while a closed one is still being spoken, the
  closed one is abandoned (its queued audio dropped, its engine stream closed within one
  chunk, ``isFinal`` sent at once), as the clients stop playing an interrupted context;
- ``{"text": ""}`` is a keepalive on multi-stream-input and the end of input on
  stream-input (where the socket closes with 1000 after ``isFinal``); ``close_socket``
  closes at once; ``inactivity_timeout`` seconds without a message and with nothing to
  speak closes the socket (1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from app.audio.formats import OutputFormat
from app.capacity import Slot
from app.errors import Busy, InvalidRequest, TTSError
from app.protocol import events as ev
from app.protocol.elevenlabs_ws import ElevenLabsSocketSerializer
from app.runtime import Runtime
from app.sessions.outbox import Outbox
from app.sessions.utterance import Utterance, UtterancePlan, UtteranceSpec, prepare_utterance
from app.text import ClauseSegmenter, speakable
from app.text.clean import check_characters

WS_NORMAL = 1000
WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013
MAX_CONTEXTS = 5  # ElevenLabs' own limit per connection
MAX_CONTEXT_ID = 128
_SENTENCE_END = (".", "!", "?", "\u3002", "\uff01", "\uff1f")


@dataclass(frozen=True)
class ContextOptions:
    """What the connection's URL asked for; checked by ``ContextSession.start``."""

    voice_id: str
    format: OutputFormat
    preset: str = "adaptive"
    multi: bool = True  # multi-stream-input (contexts) or stream-input (one, ended by "")
    auto_mode: bool = False
    inactivity_timeout_s: float = 20.0
    language: str | None = None
    seed: int | None = None
    normalize: bool = True  # apply_text_normalization: "off" reads the text as written


@dataclass(eq=False)
class _Context:
    id: str | None
    reply: int
    utterance: Utterance
    segmenter: ClauseSegmenter
    closed: bool = False  # no more input
    abandoned: bool = False  # barge-in: the client no longer plays it
    final_sent: bool = False
    chars: int = 0
    clauses: int = 0
    frames: int = 0
    idle: asyncio.TimerHandle | None = None
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Clause:
    ctx: _Context
    index: int
    text: str
    ready_at: float


_CLOSE = object()


class ContextSession:
    def __init__(
        self,
        runtime: Runtime,
        outbox: Outbox,
        serializer: ElevenLabsSocketSerializer,
        options: ContextOptions,
    ) -> None:
        self.runtime = runtime
        self.outbox = outbox
        self.serializer = serializer
        self.options = options
        settings = runtime.settings
        self._idle_s = settings.clause_idle_flush_ms / 1000.0
        self._max_chars = settings.clause_max_chars
        self._contexts: dict[str | None, _Context] = {}
        # Ids whose isFinal went out (bounded): text for them is an error, not a new context.
        self._finished: dict[str | None, None] = {}
        self._queue: asyncio.Queue[_Clause | tuple[_Context, object]] = asyncio.Queue()
        # Inactivity counts from the connection's opening, messages or not.
        self._tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(self._watch_inactivity(), name="contexts-inactivity")
        ]
        self._plan: UtterancePlan | None = None
        self._slot: Slot | None = None
        self._next_reply = 0
        self._session_chars = 0
        self._last_message = time.monotonic()
        self._speaking: _Context | None = None

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Every check, at the first message: preset, capacity, voice, a slot (typed errors)."""
        runtime, options = self.runtime, self.options
        if runtime.draining:
            raise Busy("Server shutting down: start the call on another replica",
                       code="shutting_down")
        spec = UtteranceSpec(None, options.voice_id, options.preset, options.format,
                             framed=False, language=options.language, route="elevenlabs",
                             seed=options.seed, normalize=options.normalize)
        self._plan = await prepare_utterance(runtime, spec)  # capacity first, then the voice
        self._slot = runtime.capacity.acquire(oneshot=False)
        self._tasks.append(asyncio.create_task(self._produce(), name="contexts-producer"))

    @property
    def busy(self) -> bool:
        return self._speaking is not None or not self._queue.empty() or any(
            c.segmenter.buffered.strip() for c in self._contexts.values()
        )

    async def aclose(self) -> None:
        for ctx in self._contexts.values():
            self._cancel_idle(ctx)
            ctx.utterance.close("client_gone")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    # --- messages ---------------------------------------------------------------------

    async def on_message(self, data: dict[str, Any]) -> None:
        self._last_message = time.monotonic()
        if self._plan is None:
            if self.outbox.closed:
                return  # refused; its close is on the way
            try:
                await self.start()
            except TTSError as exc:
                code = WS_TRY_AGAIN_LATER if exc.status_code >= 500 else WS_POLICY_VIOLATION
                self.outbox.request_close(code, exc.code, ev.Error.of(exc))
                return
        if data.get("close_socket") is True:
            self.outbox.request_close(WS_NORMAL, "close_socket")
            return
        text = data.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidRequest("text must be a string", code="invalid_message")
        ctx_id = self._context_id(data)
        flush = data.get("flush") is True
        close = self.options.multi and data.get("close_context") is True
        if not self.options.multi:
            if text is None:
                raise InvalidRequest('Missing text: send {"text": "..."}', code="invalid_message")
            close = text == ""
        elif text == "" and not flush and not close:
            return  # keepalive
        ctx = self._contexts.get(ctx_id)
        if ctx is None and ctx_id in self._finished and self.options.multi:
            if text and text.strip():  # a late close or flush of a finished context is moot
                await self._error("This context is closed: open a new one", "invalid_state",
                                  ctx_id)
            return
        if ctx is None:
            if close and not text:
                return  # closing a context that never opened: nothing to finish
            ctx = await self._open(ctx_id)
            if ctx is None:
                return
            if text is not None and text.strip() == "" and not flush and not close:
                return  # the opener ({"text": " "}) carries settings, not speech
        if ctx.closed:
            await self._error("This context is closed: open a new one", "invalid_state", ctx_id)
            return
        if text:
            self._add_text(ctx, text)
        if flush or close:
            self._cancel_idle(ctx)
            self._enqueue(ctx, ctx.segmenter.flush())
        if close:
            ctx.closed = True
            self._queue.put_nowait((ctx, _CLOSE))

    def _context_id(self, data: dict[str, Any]) -> str | None:
        if not self.options.multi:
            return None
        ctx_id = data.get("context_id")
        if ctx_id is None:
            return None
        if not isinstance(ctx_id, str) or not 0 < len(ctx_id) <= MAX_CONTEXT_ID:
            raise InvalidRequest(f"context_id must be a string of 1 to {MAX_CONTEXT_ID} "
                                 "characters", code="invalid_message")
        return ctx_id

    async def _open(self, ctx_id: str | None) -> _Context | None:
        live = [c for c in self._contexts.values() if not c.final_sent]
        if len(live) >= MAX_CONTEXTS:
            await self._error(f"At most {MAX_CONTEXTS} open contexts per connection: close one "
                              "first", "max_active_conversations", ctx_id)
            return None
        self._abandon_closed()
        assert self._plan is not None
        reply = self._next_reply
        self._next_reply += 1
        utterance = Utterance(self.runtime, self._plan, None, reply=reply)
        ctx = _Context(ctx_id, reply, utterance, ClauseSegmenter(max_chars=self._max_chars))
        self.serializer.bind(reply, ctx_id)
        self._contexts[ctx_id] = ctx
        return ctx

    def _abandon_closed(self) -> None:
        """Barge-in: closed contexts still being spoken are dropped for the new one."""
        stale = [c for c in self._contexts.values()
                 if c.closed and not c.final_sent and not c.abandoned]
        if not stale:
            return
        for ctx in stale:
            ctx.abandoned = True
        self.outbox.cancel()  # their audio still queued for the socket is not sent

    def _add_text(self, ctx: _Context, text: str) -> None:
        check_characters(text)  # invalid_text: controls and lone surrogates, before any audio
        limit = self.runtime.settings.max_text_length
        if ctx.chars + len(text) > limit:
            raise InvalidRequest(f"Context text is too long (limit {limit} characters)",
                                 code="text_too_long")
        session_limit = self.runtime.settings.max_session_text_length
        if self._session_chars + len(text) > session_limit:
            raise InvalidRequest(
                f"Session text is too long (limit {session_limit} characters per connection)",
                code="text_too_long",
            )
        ctx.chars += len(text)
        self._session_chars += len(text)
        self._enqueue(ctx, ctx.segmenter.push(text))
        if self.options.auto_mode and ctx.segmenter.buffered.rstrip().endswith(_SENTENCE_END):
            self._enqueue(ctx, ctx.segmenter.flush())
        self._arm_idle(ctx)

    def _enqueue(self, ctx: _Context, clauses: list[str]) -> None:
        now = time.perf_counter()
        for text in clauses:
            self._queue.put_nowait(_Clause(ctx, ctx.clauses, text, now))
            ctx.clauses += 1

    def _arm_idle(self, ctx: _Context) -> None:
        self._cancel_idle(ctx)
        if self._idle_s > 0 and ctx.segmenter.buffered.strip():
            ctx.idle = asyncio.get_running_loop().call_later(
                self._idle_s, lambda: self._enqueue(ctx, ctx.segmenter.flush_idle())
            )

    def _cancel_idle(self, ctx: _Context) -> None:
        if ctx.idle is not None:
            ctx.idle.cancel()
            ctx.idle = None

    async def _error(self, message: str, code: str, ctx_id: str | None) -> None:
        extra: dict[str, object] = {"contextId": ctx_id} if ctx_id is not None else {}
        await self.outbox.control(ev.Error(message, code, extra=extra))

    # --- speaking ---------------------------------------------------------------------

    async def _produce(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, tuple):
                await self._finish(item[0])
                continue
            ctx = item.ctx
            self._speaking = ctx
            try:
                if not ctx.abandoned:
                    await self._speak(item)
            except TTSError as exc:
                await self._error(exc.message, exc.code, ctx.id)
            finally:
                self._speaking = None

    async def _speak(self, clause: _Clause) -> None:
        ctx = clause.ctx
        generation = self.outbox.generation
        frames, seconds = 0, 0.0
        if speakable(clause.text):
            audio = ctx.utterance.speak(clause.text.strip(), clause=clause.index,
                                        ready_at=clause.ready_at, clause_text=clause.text)
            async with aclosing(audio):  # closing it closes the engine stream
                async for event in audio:
                    if ctx.abandoned:
                        return
                    await self.outbox.audio(event, generation)
                    frames += 1
                    seconds += event.seconds
        ctx.frames += frames
        done = ev.ClauseDone(clause.index, clause.text, frames, seconds, ctx.reply)
        await self.outbox.control(done, generation)

    async def _finish(self, ctx: _Context) -> None:
        ctx.final_sent = True
        self._contexts.pop(ctx.id, None)
        if ctx.id is not None:
            self._finished[ctx.id] = None
            if len(self._finished) > 256:
                del self._finished[next(iter(self._finished))]
        if not ctx.abandoned:
            ctx.utterance.finish()
        total_ms = (time.perf_counter() - ctx.started) * 1000.0
        await self.outbox.control(ev.ReplyDone(ctx.frames, total_ms, ctx.clauses, ctx.reply))
        ctx.utterance.close("cancelled" if ctx.abandoned else None)

    async def _watch_inactivity(self) -> None:
        timeout = self.options.inactivity_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            idle = time.monotonic() - self._last_message
            if idle >= timeout and not self.busy and self.outbox.depth == 0:
                self.outbox.request_close(WS_NORMAL, "inactivity timeout")
                return
