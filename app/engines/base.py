"""The engine contract: what every speech engine gives the rest of the service.

An engine turns text into float32 mono PCM chunks at its own sample rate. It knows nothing
about sockets, codecs or frames. Blocking inference never runs on the event loop: engines
drive their blocking generators through ``iterate_blocking``, which also makes closing the
async iterator stop generation before the next step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from app.audio.chunk import AudioChunk
from app.presets import Preset

__all__ = ["AudioChunk", "Engine", "EngineCapabilities", "SynthesisParams", "VoiceClip",
           "VoiceHandle", "iterate_blocking"]

T = TypeVar("T")

DEFAULT_VOICE_ID = "default"


@dataclass(frozen=True)
class VoiceClip:
    """A decoded reference clip: float32 mono samples at ``sample_rate``."""

    voice_id: str
    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class VoiceHandle:
    """A voice prepared for one engine.

    ``builtin`` is True when the engine speaks with its own voice (voice ``default``, or an
    engine without cloning that was given a clip); responses say so.
    """

    voice_id: str
    builtin: bool
    data: Any = None


@dataclass(frozen=True)
class EngineCapabilities:
    cloning: bool
    streaming: str  # "token": chunks inside a sentence; "sentence": one chunk per sentence
    languages: tuple[str, ...] = ("en",)
    paralinguistic_tags: bool = False
    preset_fields: tuple[str, ...] = ()
    max_overlap_samples: int = 0  # the largest ``AudioChunk.overlap`` the engine declares
    notes: str = ""
    # Typical loudness of the engine's speech (LUFS, as app.audio.level measures it): seeds
    # the level stage's estimate before an utterance has been measured. None: -23.
    loudness_lufs: float | None = None
    # The engine reads numbers, dates, etc. itself: the service's normalization is skipped.
    normalizes_text: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "cloning": self.cloning,
            "streaming": self.streaming,
            "languages": list(self.languages),
            "paralinguistic_tags": self.paralinguistic_tags,
            "preset_fields": list(self.preset_fields),
            "max_overlap_samples": self.max_overlap_samples,
            "notes": self.notes,
            "loudness_lufs": self.loudness_lufs,
            "normalizes_text": self.normalizes_text,
        }


@dataclass(frozen=True)
class SynthesisParams:
    """Options copied per request, so a change mid-stream cannot race a running one."""

    preset: Preset
    language: str = "en"
    seed: int | None = None
    speed: float = 1.0
    # Audio the listener already has queued when this utterance starts (a later clause of
    # a reply): engines shared by many calls may schedule it behind more urgent work.
    lead_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    name: str
    sample_rate: int
    capabilities: EngineCapabilities
    device: str

    async def load(self) -> None:
        """Load weights and warm up; called once at start-up."""

    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        """Conditioning for ``clip``; ``None`` means the built-in voice (``default``)."""

    def stream(
        self, text: str, voice: VoiceHandle, params: SynthesisParams
    ) -> AsyncGenerator[AudioChunk, None]:
        """Audio for ``text`` as it is generated. Closing the iterator stops generation."""

    async def aclose(self) -> None:
        """Release the model and its threads."""


def _submit(executor: Executor, fn: Callable[[], Any], when: float | None) -> asyncio.Future[Any]:
    submit_at = getattr(executor, "submit_at", None)
    if when is not None and submit_at is not None:
        return asyncio.wrap_future(submit_at(when, fn))
    return asyncio.get_running_loop().run_in_executor(executor, fn)


class _Done:
    pass


_DONE = _Done()


async def iterate_blocking(
    factory: Callable[[threading.Event], Iterator[T]],
    executor: Executor,
    deadline: Callable[[], float] | None = None,
) -> AsyncGenerator[T, None]:
    """Drive a blocking generator on ``executor`` and yield its items on the event loop.

    ``factory(stop)`` builds the generator inside the worker thread. Every ``next()`` runs
    on the executor, never on the loop. When the consumer stops early (break, cancel,
    ``aclose``), ``stop`` is set before the generator is closed, so a generator that checks
    it between steps ends within one step, and the close itself also runs off the loop.
    With ``deadline`` and an executor that has ``submit_at`` (``DeadlineExecutor``), each
    step is queued with the deadline the callable gives at that moment.
    starlette's ``iterate_in_threadpool`` does the first half of this but never closes
    the sync generator, which would leave a model running after a barge-in.
    """
    stop = threading.Event()
    holder: list[Iterator[T]] = []

    def _next() -> T | _Done:
        if not holder:
            holder.append(factory(stop))
        try:
            return next(holder[0])
        except StopIteration:
            return _DONE

    def _close() -> None:
        if holder:
            close = getattr(holder[0], "close", None)
            if close is not None:
                close()

    finished = False
    try:
        while True:
            fut = _submit(executor, _next, deadline() if deadline is not None else None)
            try:
                item = await asyncio.shield(fut)
            except asyncio.CancelledError:
                stop.set()
                # The step already running finishes on its thread; wait for it without
                # blocking the loop so the generator is never closed while it runs.
                await asyncio.wait([fut])
                raise
            if isinstance(item, _Done):
                finished = True
                return
            yield item
    finally:
        if not finished:
            stop.set()
            # Closing frees the stream's resources: ahead of every queued step.
            await _submit(executor, _close, float("-inf"))
