"""Replayed Twilio webhooks get the answer they got the first time, and nothing else.

A signed ``/twilio/voice`` request stays valid for as long as the URL and auth token do,
so anyone who captures one can send it again. Each acceptance used to start a warmup; a
replay loop took every call slot. Twilio itself retries a webhook that timed out, with
the same ``CallSid`` and signature, and must get the same TwiML back. So the first answer
for a (CallSid, signature) pair is remembered for ``TWILIO_REPLAY_WINDOW_S`` and a repeat
within the window is answered from here without starting anything.

Hand-written (an insertion-ordered dict) rather than a cache library: entries all live for
the same window, so the oldest is always first and expiry is a pop from the front.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class ReplayCache:
    def __init__(self, window_s: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self.replays = 0

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            _, (expires, _) = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= self.max_entries:
                break
            self._entries.popitem(last=False)

    def get(self, call_sid: str, signature: str) -> str | None:
        """The answer already given to this request, if it came within the window."""
        self._expire()
        entry = self._entries.get((call_sid, signature))
        if entry is None:
            return None
        self.replays += 1
        return entry[1]

    def put(self, call_sid: str, signature: str, answer: str) -> None:
        self._entries[(call_sid, signature)] = (self._clock() + self.window_s, answer)
        self._expire()

    def __len__(self) -> int:
        return len(self._entries)
