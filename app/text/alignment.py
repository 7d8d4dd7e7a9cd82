"""Character timings for a clause from its audio duration (ElevenLabs-style ``alignment``).

None of our engines reports per-character timings (Piper runs a sentence in one ONNX call,
Chatterbox emits speech tokens with no text alignment), so the timings are an estimate:
the clause's audio is shared among its characters by weight (letters and digits count
most, whitespace and punctuation less). It is exact at clause boundaries: the first
character starts where the clause's audio starts and the last ends where it ends, so the
error never carries from one clause to the next.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from app.text.estimate import CHARS_PER_SECOND
from app.text.normalize_core import Normalized

_LETTER = 1.0
_SPACE = 0.6
_OTHER = 0.4


def _weight(ch: str) -> float:
    if ch.isalnum():
        return _LETTER
    if ch.isspace():
        return _SPACE
    return _OTHER


@dataclass(frozen=True)
class CharTimings:
    chars: list[str]
    start_ms: list[int]
    duration_ms: list[int]

    def to_dict(self) -> dict[str, list[str] | list[int]]:
        return {
            "chars": self.chars,
            "charStartTimesMs": self.start_ms,
            "charDurationsMs": self.duration_ms,
        }


def estimate_char_timings(text: str, duration_ms: float) -> CharTimings:
    """Timings of each character of ``text`` spoken over ``duration_ms`` (integers, in ms).

    Starts are 0 at the first character; every character ends where the next starts and the
    last ends at ``round(duration_ms)``.
    """
    chars = list(text)
    if not chars:
        return CharTimings([], [], [])
    total = max(0, round(duration_ms))
    weights = [_weight(c) for c in chars]
    scale = total / sum(weights)
    edges = [0]
    acc = 0.0
    for w in weights:
        acc += w
        edges.append(min(total, round(acc * scale)))
    edges[-1] = total
    starts = edges[:-1]
    durations = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return CharTimings(chars, starts, durations)


class ChunkAligner:
    """Shares a text's characters among its audio chunks as the engine produces them.

    Audio leaves chunk by chunk, before the text's total duration is known, so each chunk
    takes the characters whose estimated start, at a typical speaking rate
    (``app.text.estimate.CHARS_PER_SECOND``, weighted as above), falls inside the audio sent
    so far and no earlier chunk took; ``last`` takes whatever is left. Within a chunk the
    characters share its duration by weight (``estimate_char_timings``), so every message's
    timings lie within its own audio and joining the messages' characters gives the text
    back exactly. Estimated, like the rest of this module: no engine here reports timings.
    """

    def __init__(self, text: str, chars_per_second: float = CHARS_PER_SECOND) -> None:
        self.text = text
        weights = [_weight(c) for c in text]
        mean = sum(weights) / len(weights) if weights else 1.0
        per_second = chars_per_second * mean
        self._starts: list[float] = []
        acc = 0.0
        for w in weights:
            self._starts.append(acc / per_second)
            acc += w
        self._pos = 0
        self._audio_s = 0.0

    @property
    def rest(self) -> str:
        return self.text[self._pos :]

    def take(self, seconds: float, *, last: bool = False) -> CharTimings:
        """The characters of the next ``seconds`` of audio, timed from that chunk's start."""
        self._audio_s += seconds
        end = len(self.text) if last else bisect.bisect_left(
            self._starts, self._audio_s, lo=self._pos
        )
        chars = self.text[self._pos : end]
        self._pos = end
        return estimate_char_timings(chars, seconds * 1000.0)
def map_timings_to_original(
    original: str, char_map: list[tuple[int, int]], spoken: CharTimings
) -> CharTimings:
    """Timings of the original text from the timings of its spoken form.

    ``char_map[i]`` is the spoken span that original character ``i`` became
    (``Normalized.char_map()``). The characters that became one span share its time
    equally, in order ("$5" -> "five dollars": "$" the first half, "5" the second), so the
    original's timings cover the same audio, start to end, with no gap or overlap.
    """
    chars = list(original)
    if not chars:
        return CharTimings([], [], [])
    edges = [0, *(s + d for s, d in zip(spoken.start_ms, spoken.duration_ms, strict=True))]
    total = edges[-1]

    def at(pos: int) -> float:  # time at spoken position ``pos`` (a character boundary)
        return float(edges[min(max(pos, 0), len(edges) - 1)]) if spoken.chars else 0.0

    bounds: list[float] = []
    i = 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and char_map[j + 1] == char_map[i]:
            j += 1
        a, b = char_map[i]
        t0, t1 = at(a), at(b)
        n = j - i + 1
        bounds.extend(t0 + (t1 - t0) * k / n for k in range(n))
        i = j + 1
    bounds.append(float(total))
    ints = [round(t) for t in bounds]
    for k in range(1, len(ints)):  # monotonic after rounding
        ints[k] = max(ints[k], ints[k - 1])
    return CharTimings(chars, ints[:-1], [b - a for a, b in zip(ints[:-1], ints[1:], strict=True)])


def clause_alignments(
    text: str, spoken: Normalized | None, duration_ms: float
) -> tuple[CharTimings, CharTimings]:
    """(timings of the clause as received, timings of what the engine read) over its audio.

    ``spoken`` is the normalized form of the clause with its surrounding whitespace
    stripped (or None: the engine read ``text`` itself). The spoken form gets the estimate;
    the clause's characters take the time of what they became, and whitespace around the
    clause takes none at its edge.
    """
    if spoken is None:
        same = estimate_char_timings(text, duration_ms)
        return same, same
    said = estimate_char_timings(spoken.spoken, duration_ms)
    lead = max(0, text.find(spoken.original))
    tail = len(text) - lead - len(spoken.original)
    char_map = spoken.char_map()
    end = len(spoken.spoken)
    full_map = [(0, 0)] * lead + char_map + [(end, end)] * tail
    return map_timings_to_original(text, full_map, said), said


class SpokenChunkAligner:
    """``ChunkAligner`` over both forms of a clause: as received and as the engine read it.

    The audio's pace is that of what the engine read, so the estimate runs on the spoken
    form ("$5" -> "five dollars"); each chunk then carries the client's characters whose
    whole spoken span it has reached, timed over the same chunk. Both sequences, joined
    over a clause's messages, give back their texts exactly (ElevenLabs' ``alignment`` and
    ``normalizedAlignment``). ``text`` is the clause as received; ``spoken`` the normalized
    form of its stripped text (whitespace around it goes out with the first and last
    chunks), or None when the engine read ``text`` itself: then both forms are ``text``.
    """

    def __init__(self, text: str, spoken: Normalized | None) -> None:
        self.text = text
        self._said = ChunkAligner(spoken.spoken if spoken is not None else text)
        self._same = spoken is None
        self._ends: list[int] = []  # where in the spoken form each received char is complete
        if spoken is not None:
            lead = max(0, text.find(spoken.original))
            tail = len(text) - lead - len(spoken.original)
            self._ends = [0] * lead + [b for _, b in spoken.char_map()]
            self._ends += [len(spoken.spoken)] * tail
        self._pos = 0
        self._said_pos = 0

    @property
    def rest(self) -> tuple[str, str]:
        if self._same:
            return self._said.rest, self._said.rest
        return self.text[self._pos :], self._said.rest

    def take(self, seconds: float, *, last: bool = False) -> tuple[CharTimings, CharTimings]:
        """(received, spoken) characters of the next ``seconds`` of audio."""
        said = self._said.take(seconds, last=last)
        if self._same:
            return said, said
        self._said_pos += len(said.chars)
        end = len(self.text) if last else self._pos
        while end < len(self.text) and self._ends[end] <= self._said_pos:
            end += 1
        chars = self.text[self._pos : end]
        self._pos = end
        return estimate_char_timings(chars, seconds * 1000.0), said
