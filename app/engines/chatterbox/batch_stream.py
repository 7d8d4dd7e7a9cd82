"""A stream's side of the step scheduler: what it asks for and the handle its tokens arrive on.

The handle is shared by three threads: the scheduler pushes tokens, the stream's consumer
waits for them (blocking with ``wait_for`` or on its event loop with ``until``), and anyone
may ``cancel``. One condition guards the token list; an event loop waiting for a count is
woken with ``call_soon_threadsafe`` only when that count is reached, not at every token.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch

from app.engines.chatterbox.tokens import Sampling


@dataclass
class TokenRequest:
    """One sentence to generate: its conditioning, text tokens (1, L) and options."""

    t3_cond: Any
    text_tokens: torch.Tensor
    sampling: Sampling
    generator: torch.Generator | None = None
    analyzer: Any = None
    greedy: bool = False
    fixed_tokens: int | None = None  # exactly this many tokens, end-of-speech masked
    record_logits: bool = False  # keep each step's raw logits (tests compare them)


class TokenStream:
    """A stream's handle: tokens arrive in ``tokens``; ``done`` once it has ended."""

    def __init__(self, request: TokenRequest) -> None:
        self.request = request
        self.tokens: list[int] = []
        self.logits: list[torch.Tensor] = []
        self.done = False
        self.error: BaseException | None = None
        self.submitted_at = time.perf_counter()
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self._cancel = threading.Event()
        self._cond = threading.Condition()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event, int] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """No token after the step in flight; the stream leaves before the next step."""
        self._cancel.set()
        with self._cond:
            self._waiter = None  # whoever waited has gone

    def wait_for(self, count: int, timeout: float | None = None) -> bool:
        """Block until ``count`` tokens or the end; True if ``count`` tokens are there."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.tokens) >= count or self.done, timeout)
        self._raise()
        return len(self.tokens) >= count

    async def until(self, count: int) -> None:
        """Wait on the event loop until ``count`` tokens are there or the stream ended."""
        while True:
            event = asyncio.Event()
            with self._cond:
                if len(self.tokens) >= count or self.done:
                    break
                self._waiter = (asyncio.get_running_loop(), event, count)
            await event.wait()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    # --- scheduler side ---
    def _push(self, token: int) -> None:
        with self._cond:
            self.last_token_at = time.perf_counter()
            if self.first_token_at is None:
                self.first_token_at = self.last_token_at
            self.tokens.append(token)
            self._wake(len(self.tokens) >= self._waiting_for())

    def _finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.error = error
            self.done = True
            self._wake(True)

    def _waiting_for(self) -> int:
        return self._waiter[2] if self._waiter is not None else 1 << 30

    def _wake(self, due: bool) -> None:
        self._cond.notify_all()
        if due and self._waiter is not None:
            loop, event, _ = self._waiter
            self._waiter = None
            with contextlib.suppress(RuntimeError):  # that event loop has closed: nobody waits
                loop.call_soon_threadsafe(event.set)
