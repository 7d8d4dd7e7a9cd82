"""How much of a clause the caller has heard, from the audio sent so far.

Used by ``cancelled.text_spoken`` when a barge-in cuts a clause: engines without
character timings give no exact answer, so the part of the current clause is estimated
from the audio duration at a typical speaking rate and cut at a word boundary.
"""

from __future__ import annotations

from app.text.normalize_core import Normalized

# About 150 words per minute of English: ~14 characters per second including spaces.
CHARS_PER_SECOND = 14.0


def estimate_spoken(text: str, seconds: float, *, finished: bool) -> tuple[str, bool]:
    """(the part of ``text`` heard after ``seconds`` of its audio, whether it is an estimate)."""
    if finished:
        return text, False
    if seconds <= 0:
        return "", False
    chars = int(seconds * CHARS_PER_SECOND)
    if chars >= len(text.rstrip()):
        return text, True
    cut = text.rfind(" ", 0, chars + 1)
    return (text[:cut] if cut > 0 else ""), True


def estimate_heard(text: str, seconds: float, spoken: Normalized | None) -> tuple[str, bool]:
    """``estimate_spoken`` for a clause that was cut, when the engine read its normalized
    form: the estimate runs on what was read (that is what the audio's rate is of) and is
    carried back to the client's own text through the character map, counting only the
    original characters whose spoken form was heard in full."""
    if spoken is None:
        return estimate_spoken(text, seconds, finished=False)
    heard, estimated = estimate_spoken(spoken.spoken, seconds, finished=False)
    if not estimated:
        return (text if heard else ""), estimated
    end = 0
    for i, (_, b) in enumerate(spoken.char_map()):
        if b > len(heard):
            break
        end = i + 1
    lead = max(0, text.find(spoken.original))
    return text[: lead + end], True
