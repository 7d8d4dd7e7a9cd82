"""Sticky engine faults: errors after which the engine can never work again in this process.

A CUDA error such as an illegal memory access or a device-side assert poisons the CUDA
context: every later kernel launch fails too, so answering ``engine_error`` request after
request would keep a dead replica in the pool for ever. ``FaultGuard`` wraps the engine,
recognises such an error once, refuses every later call at once with ``EngineFault`` (503,
retryable elsewhere) and tells the server (``on_fault``), which turns ``/ready`` to 503,
drains and exits non-zero so the orchestrator starts a fresh replica.

Recognising them means reading the message: torch 2.6 (the CUDA build chatterbox-tts pins)
raises a plain ``RuntimeError("CUDA error: ...")``; newer torch raises
``torch.AcceleratorError``. Out-of-memory is not sticky (the allocator recovers) and is
left to the normal error path.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from app.engines.base import (
    AudioChunk,
    Engine,
    SynthesisParams,
    VoiceClip,
    VoiceHandle,
)
from app.errors import EngineFault, TTSError

log = logging.getLogger(__name__)

_STICKY_MARKERS = (
    "CUDA error",  # torch's prefix for every CUDA runtime error
    "CUBLAS_STATUS_EXECUTION_FAILED",
    "CUDNN_STATUS_EXECUTION_FAILED",
    "device-side assert",
    "illegal memory access",
    "unspecified launch failure",
)
_NOT_STICKY = ("out of memory",)


def is_sticky(exc: BaseException) -> bool:
    """Whether ``exc`` leaves the engine unusable for the rest of the process."""
    if isinstance(exc, TTSError | MemoryError):
        return False
    torch = sys.modules.get("torch")  # never import torch just to ask
    accelerator_error = getattr(torch, "AcceleratorError", None) if torch else None
    if isinstance(accelerator_error, type) and isinstance(exc, accelerator_error):
        return True
    text = str(exc)
    if any(marker in text for marker in _NOT_STICKY):
        return False
    return any(marker in text for marker in _STICKY_MARKERS)


class FaultGuard:
    """An ``Engine`` that passes every call through until a sticky fault, then none."""

    def __init__(self, engine: Engine, on_fault: Callable[[str], None]) -> None:
        self._engine = engine
        self._on_fault = on_fault
        self.fault: str | None = None

    # The contract's attributes, read through (some engines only know them after load).
    name = property(lambda self: self._engine.name)
    sample_rate = property(lambda self: self._engine.sample_rate)
    capabilities = property(lambda self: self._engine.capabilities)
    device = property(lambda self: self._engine.device)

    @property
    def inner(self) -> Engine:
        return self._engine

    def __getattr__(self, name: str) -> Any:  # what a particular engine adds (tests read it)
        return getattr(self._engine, name)

    def _refuse(self) -> None:
        if self.fault is not None:
            raise EngineFault("The engine failed on this replica; retry on another")

    def _check(self, exc: BaseException) -> None:
        if self.fault is None and is_sticky(exc):
            self.fault = f"{type(exc).__name__}: {exc}"[:300]
            log.critical("sticky engine fault, this replica must be replaced: %s", self.fault)
            self._on_fault(self.fault)
        if self.fault is not None:
            raise EngineFault("The engine failed on this replica; retry on another") from exc

    async def load(self) -> None:
        await self._engine.load()

    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        self._refuse()
        try:
            return await self._engine.prepare_voice(clip)
        except Exception as exc:
            self._check(exc)
            raise

    async def stream(self, text: str, voice: VoiceHandle,
                     params: SynthesisParams) -> AsyncGenerator[AudioChunk, None]:
        self._refuse()
        try:
            async with aclosing(self._engine.stream(text, voice, params)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except Exception as exc:
            self._check(exc)
            raise

    async def aclose(self) -> None:
        await self._engine.aclose()
