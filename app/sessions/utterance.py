"""One utterance is one object: validation, capacity, voice, slot, chain, metrics, release.

Every route synthesizes through it, so no route can forget a step::

    utterance = await open_utterance(runtime, UtteranceSpec(text, voice_id, ...))
    with utterance:                      # closing it records metrics and frees the slot
        async for event in utterance:    # Audio events, then UtteranceDone
            ...

``open_utterance`` does, in this order and before any byte of a response: the text (length,
``app.text.clean``), preset, language, format and voice id (all pure checks); the replica's
capacity (``Busy`` at once when it is full or draining, before any voice is fetched or
decoded); the voice (fetch and prepare); then the slot. A streaming session runs the first
steps once per ``init`` (``prepare_utterance``) and opens one ``Utterance`` per reply on the
slot it holds for the whole call, feeding it clause by clause (``speak``).

Inside, one clause goes: text normalization (clause text -> spoken form, with a character
map back: ``app.text.normalize``; skipped when ``TEXT_NORMALIZATION`` is off, the request
says ``normalize: false`` or the engine normalizes itself) -> engine -> crossfader -> level
(loudness gain and true-peak limiter, with one ``LoudnessTracker`` for the whole
utterance or reply) -> resampler -> encoder -> framer (the ``AudioPipeline`` built by
``Runtime.pipeline``). Each ``Audio`` event says which clause and engine chunk it came from,
where it starts in the clause's audio, the clause as received and, when normalization
changed it, what the engine read, so serializers can align characters in both.

Closing, however it ends (done, cancelled, client gone, engine error), records time to
first audio, total time (when done) and the outcome by code, and releases the slot exactly
once. A speakable text that yields no audio is an ``EngineError`` (``no_audio``), not a
silent success.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

from app.audio import AudioPipeline
from app.audio.formats import MULAW, OutputFormat
from app.capacity import Slot
from app.engines.base import SynthesisParams, VoiceHandle
from app.errors import EngineError, InvalidRequest, TTSError
from app.protocol import events as ev
from app.runtime import Runtime
from app.text.clean import check_text
from app.text.normalize import Normalized, normalize
from app.voices.validation import validate_voice_id


@dataclass(frozen=True)
class UtteranceSpec:
    """What a client asked for, already parsed by its route (formats resolved there)."""

    text: str | None  # None: a reply whose text arrives clause by clause
    voice_id: str = "default"
    preset: str | None = "balanced"
    format: OutputFormat = MULAW
    framed: bool = True  # 20 ms frames (sockets) or one piece per engine chunk (HTTP)
    speed: float = 1.0
    language: str | None = None
    normalize: bool = True  # per request; TEXT_NORMALIZATION and the engine have a say too
    route: str = "synthesize"  # the metrics label
    # Sampling, for APIs that expose it (seed-003, ElevenLabs' seed): engines that sample
    # use them (Chatterbox), the others ignore them.
    temperature: float | None = None  # replaces the preset's
    top_p: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class UtterancePlan:
    """What validation resolved; a streaming session reuses it for every reply."""

    spec: UtteranceSpec
    params: SynthesisParams
    voice: VoiceHandle
    format: OutputFormat  # with the engine's rate filled in (wav)


@dataclass
class UtteranceStats:
    started: float = field(default_factory=time.perf_counter)
    engine_first_chunk_ms: float | None = None
    first_frame_ms: float | None = None
    total_ms: float = 0.0
    engine_wait_ms: float = 0.0
    engine_chunks: int = 0
    frames: int = 0
    seconds: float = 0.0

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def latency(self, pipeline: AudioPipeline) -> dict[str, float]:
        out = {
            "engine_first_chunk_ms": round(self.engine_first_chunk_ms or 0.0, 2),
            "first_frame_ms": round(self.first_frame_ms or 0.0, 2),
            "engine_ms": round(self.engine_wait_ms, 2),
        }
        out.update({k: round(v, 3) for k, v in pipeline.timings.items()})
        return out


def check_spec_text(runtime: Runtime, text: str) -> str:
    if not text.strip():
        raise InvalidRequest("text must not be empty")
    limit = runtime.settings.max_text_length
    if len(text) > limit:
        raise InvalidRequest(
            f"text is too long: {len(text)} characters (limit {limit})", code="text_too_long"
        )
    return check_text(text)


async def prepare_utterance(
    runtime: Runtime, spec: UtteranceSpec, *, check_capacity: bool = True
) -> UtterancePlan:
    """Every check, then the voice; ``check_capacity=False`` when the caller holds a slot."""
    if spec.text is not None:
        check_spec_text(runtime, spec.text)
    params = runtime.params(spec.preset, speed=spec.speed, language=spec.language)
    if spec.temperature is not None:
        params = replace(params, preset=replace(params.preset, temperature=spec.temperature))
    if spec.top_p is not None:
        params = replace(params, extra={**params.extra, "top_p": spec.top_p})
    if spec.seed is not None:
        params = replace(params, seed=spec.seed)
    voice_id = validate_voice_id(spec.voice_id)
    if check_capacity:
        runtime.capacity.check()
    voice = await runtime.voices.get(voice_id)
    fmt = spec.format.at_rate(runtime.engine.sample_rate)
    return UtterancePlan(spec, params, voice, fmt)


async def open_utterance(
    runtime: Runtime, spec: UtteranceSpec, *, hold_slot: bool = True
) -> Utterance:
    """A one-shot utterance holding its own slot (see the module docstring).

    ``hold_slot=False`` is for work that is bounded elsewhere and must not take a call's
    slot: the webhook's warmups run in their own small pool (``app.sessions.warmups``).
    """
    plan = await prepare_utterance(runtime, spec, check_capacity=hold_slot)
    slot = runtime.capacity.acquire() if hold_slot else None
    return Utterance(runtime, plan, slot, started=time.perf_counter())


class Utterance:
    def __init__(
        self,
        runtime: Runtime,
        plan: UtterancePlan,
        slot: Slot | None,
        *,
        started: float | None = None,
        reply: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.plan = plan
        self.reply = reply
        self._slot = slot  # owned: released on close; None when a session holds the slot
        self.started = started  # TTFA is measured from here (a reply: its first clause)
        self.first_audio_ms: float | None = None
        self.frames = 0
        self.seconds = 0.0  # audio sent, the padding of each clause's last frame included
        self.spoken_s = 0.0  # audio the engine made, at the output rate (no padding)
        self.latency: dict[str, float] = {}
        self.finished = False
        self.closed = False
        self.outcome: str | None = None
        self.loudness = runtime.loudness_tracker()  # one loudness estimate per reply
        self._spoken: dict[str, Normalized | None] = {}

    @property
    def voice(self) -> VoiceHandle:
        return self.plan.voice

    @property
    def format(self) -> OutputFormat:
        return self.plan.format

    # --- audio ------------------------------------------------------------------------

    async def speak(
        self,
        text: str,
        *,
        clause: int | None = None,
        ready_at: float | None = None,
        lead_s: float = 0.0,
        clause_text: str | None = None,
    ) -> AsyncGenerator[ev.Audio, None]:
        """``Audio`` events for ``text`` through a fresh chain, as each engine chunk passes.

        Closing the generator early (cancel, client gone) closes the engine stream, which
        stops generation. Engine failures surface as ``EngineError``. ``clause_text``: the
        clause as the client sent it, for the events' alignment (default ``text``).
        """
        shown = text if clause_text is None else clause_text
        runtime, plan = self.runtime, self.plan
        engine = runtime.engine
        stats = UtteranceStats(started=ready_at or time.perf_counter())
        if self.started is None:
            self.started = stats.started
        pipeline = runtime.pipeline(plan.format, framed=plan.spec.framed,
                                    loudness=self.loudness)
        params = replace(plan.params, lead_s=lead_s) if lead_s else plan.params
        spoken = self.spoken_form(text)
        offset = 0.0
        try:
            read = spoken.spoken if spoken is not None else text
            async with aclosing(engine.stream(read, plan.voice, params)) as chunks:
                waited_from = time.perf_counter()
                async for chunk in chunks:
                    now = time.perf_counter()
                    stats.engine_wait_ms += (now - waited_from) * 1000.0
                    if stats.engine_first_chunk_ms is None:
                        stats.engine_first_chunk_ms = (now - stats.started) * 1000.0
                    for data in pipeline.push(chunk):
                        event = self._audio(data, stats, offset, clause, shown, spoken)
                        offset += event.seconds
                        yield event
                    stats.engine_chunks += 1
                    waited_from = time.perf_counter()
        except TTSError:
            raise
        except Exception as exc:
            raise EngineError(f"Synthesis failed: {type(exc).__name__}") from exc
        for data in pipeline.flush():
            event = self._audio(data, stats, offset, clause, shown, spoken)
            offset += event.seconds
            yield event
        stats.total_ms = stats.elapsed_ms()
        self.latency = stats.latency(pipeline)
        self.spoken_s += pipeline.samples_out / plan.format.sample_rate
        if stats.frames == 0:
            raise EngineError("The engine produced no audio for this text", code="no_audio")

    def spoken_form(self, text: str) -> Normalized | None:
        """What the engine reads for ``text``; None when it reads ``text`` as it is
        (normalization off, or nothing to change). Kept per text, so a cancel's estimate of
        what was heard uses the same form as the synthesis."""
        if text in self._spoken:
            return self._spoken[text]
        runtime = self.runtime
        result: Normalized | None = None
        if (runtime.settings.text_normalization and self.plan.spec.normalize
                and not runtime.engine.capabilities.normalizes_text):
            normalized = normalize(text, self.plan.params.language or "en")
            result = normalized if normalized.changed else None
        if len(self._spoken) > 64:  # a long reply: keep the recent clauses only
            self._spoken.clear()
        self._spoken[text] = result
        return result

    def _audio(
        self, data: bytes, stats: UtteranceStats, offset: float, clause: int | None, text: str,
        spoken: Normalized | None = None,
    ) -> ev.Audio:
        now_ms = stats.elapsed_ms()
        if stats.first_frame_ms is None:
            stats.first_frame_ms = now_ms
        if self.first_audio_ms is None and self.started is not None:
            self.first_audio_ms = (time.perf_counter() - self.started) * 1000.0
        stats.frames += 1
        self.frames += 1
        seconds = self.plan.format.seconds(len(data))
        stats.seconds += seconds
        self.seconds += seconds
        return ev.Audio(data, self.plan.format, seconds, engine_chunk=stats.engine_chunks,
                        offset_s=offset, clause=clause, clause_text=text, reply=self.reply,
                        spoken=spoken)

    def __aiter__(self) -> AsyncGenerator[ev.Event, None]:
        return self.events()

    async def events(self) -> AsyncGenerator[ev.Event, None]:
        """A one-shot utterance: its ``Audio`` events, then ``UtteranceDone``."""
        text = self.plan.spec.text
        if text is None:
            raise TypeError("a reply utterance is fed with speak(), clause by clause")
        async with aclosing(self.speak(text, ready_at=self.started)) as audio:
            async for event in audio:
                yield event
        self.finished = True
        yield self.done_event()

    def done_event(self) -> ev.UtteranceDone:
        return ev.UtteranceDone(
            frames=self.frames,
            first_frame_ms=self.first_audio_ms or 0.0,
            total_ms=self.elapsed_ms(),
            latency=self.latency,
            backend=self.runtime.engine.name,
            voice_id=self.voice.voice_id,
            builtin_voice=self.voice.builtin,
            seconds=self.spoken_s,
        )

    def elapsed_ms(self) -> float:
        if self.started is None:
            return 0.0
        return (time.perf_counter() - self.started) * 1000.0

    # --- closing ----------------------------------------------------------------------

    def finish(self) -> None:
        """A reply: every clause has been spoken."""
        self.finished = True

    def close(self, outcome: str | None = None) -> None:
        """Record the metrics and release the slot, once, however the utterance ended.

        ``outcome``: ``done`` when finished, else what stopped it (``cancelled``,
        ``client_gone``, an error code).
        """
        if self.closed:
            return
        self.closed = True
        if outcome is None:
            outcome = "done" if self.finished else "client_gone"
        self.outcome = outcome
        preset = self.plan.params.preset.name
        total_ms = self.elapsed_ms() if outcome == "done" else None
        self.runtime.metrics.observe_utterance(
            self.runtime.engine.name, preset, self.plan.spec.route, outcome,
            self.first_audio_ms, total_ms,
        )
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    def __enter__(self) -> Utterance:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        self.close(outcome_of(exc) if exc is not None else None)


def outcome_of(exc: BaseException) -> str:
    if isinstance(exc, TTSError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, GeneratorExit | ConnectionError):
        return "client_gone"
    return "internal_error"
