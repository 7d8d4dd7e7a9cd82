"""One reply on a streaming session: its clauses, counters, playback clock and cancel estimate.

A reply starts with its first text and ends when its ``complete`` has been sent. Everything
that belongs to it lives here, so a second reply queued behind it (text sent after ``end``
while the first is still speaking) can never reset or count into the first one. It owns
the ``Utterance`` that synthesizes its clauses (on the session's slot) and records its
metrics when it ends.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from app.sessions.utterance import Utterance
from app.text import ClauseSegmenter
from app.text.estimate import estimate_heard


@dataclass
class Clause:
    index: int  # in the session: 0, 1, 2, ... across replies
    text: str  # exactly as received
    ready_at: float  # when the segmenter released it (time to first audio starts here)


@dataclass(eq=False)
class Reply:
    index: int
    utterance: Utterance
    segmenter: ClauseSegmenter
    started: float = field(default_factory=time.perf_counter)
    text_chars: int = 0  # characters received
    clauses: int = 0  # clauses queued so far
    frames: int = 0  # audio frames produced
    ended: bool = False  # ``end`` received: no more text
    failure: str | None = None  # the code of a clause that failed, for the metrics
    # The playback timeline, to tell engines how much audio the caller has queued when a
    # later clause starts (``SynthesisParams.lead_s``).
    playback_start: float | None = None
    audio_s: float = 0.0
    # What the caller has received (updated as events are written): the clauses heard in
    # full, and those not yet, the first being the one playing for ``current_s``.
    heard: list[str] = field(default_factory=list)
    unheard: deque[Clause] = field(default_factory=deque)
    current_s: float = 0.0

    def queued_audio_s(self) -> float:
        """Audio of this reply the caller has not played yet (0 before the first frame)."""
        if self.playback_start is None:
            return 0.0
        played = time.perf_counter() - self.playback_start
        return max(0.0, self.audio_s - played)

    def produced(self, seconds: float) -> None:
        if self.playback_start is None:
            self.playback_start = time.perf_counter()
        self.audio_s += seconds
        self.frames += 1

    def sent_audio(self, seconds: float) -> None:
        self.current_s += seconds

    def sent_clause(self, text: str) -> None:
        self.heard.append(text)
        if self.unheard:
            self.unheard.popleft()
        self.current_s = 0.0

    def spoken(self) -> tuple[str, bool]:
        """(what the caller heard of this reply, whether its last part is an estimate)."""
        partial, estimated = "", False
        if self.unheard:
            text = self.unheard[0].text
            spoken = self.utterance.spoken_form(text.strip())
            partial, estimated = estimate_heard(text, self.current_s, spoken)
        return "".join(self.heard) + partial, estimated

    def total_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
