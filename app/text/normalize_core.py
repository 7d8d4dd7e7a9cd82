"""The machinery of text normalization: spans, the result object and the rule scanner.

(What normalization is for: ``app.text.normalize``.)

The map is a list of ``Span`` pieces that tile both texts in order: each covers one or more
original characters and the spoken text they became (text a rule did not touch is an
identity span, character for character). No original character is dropped or counted
twice, which a property test checks over arbitrary text.

Rules live per language: English in ``normalize_en`` (hand-written telephony rules over
num2words' number words), the other languages in ``normalize_intl`` (numbers, decimals,
percentages, money and times through num2words where it has the language). A language with
neither is passed through unchanged, and ``Normalized.supported`` says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# A rule's result: a replacement for the whole match, or pieces that cover it in order as
# (original length, spoken text); None declines the match (the next rule gets a turn).
Pieces = str | list[tuple[int, str]] | None


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    handler: Callable[[re.Match[str], str], Pieces]


@dataclass(frozen=True)
class Span:
    """Original ``[start, end)`` became spoken ``[spoken_start, spoken_end)``."""

    start: int
    end: int
    spoken_start: int
    spoken_end: int
    identity: bool  # untouched text: character i maps to spoken character i alone


@dataclass(frozen=True)
class Normalized:
    original: str
    spoken: str
    spans: tuple[Span, ...]
    language: str
    supported: bool

    @property
    def changed(self) -> bool:
        return self.spoken != self.original

    def char_map(self) -> list[tuple[int, int]]:
        """For each original character, the spoken span ``(start, end)`` it became."""
        out: list[tuple[int, int]] = []
        for s in self.spans:
            if s.identity:
                out.extend((s.spoken_start + i, s.spoken_start + i + 1)
                           for i in range(s.end - s.start))
            else:
                out.extend((s.spoken_start, s.spoken_end) for _ in range(s.end - s.start))
        return out

    def original_span(self, spoken_start: int, spoken_end: int) -> tuple[int, int]:
        """The original characters that a spoken range ``[spoken_start, spoken_end)`` came
        from (for carrying the spoken position back to the client's text)."""
        lo, hi = len(self.original), 0
        for s in self.spans:
            if s.spoken_end <= spoken_start and s.spoken_end != s.spoken_start:
                continue
            if s.spoken_start >= spoken_end:
                break
            if s.identity:
                a = s.start + max(0, spoken_start - s.spoken_start)
                b = s.start + min(s.end - s.start, spoken_end - s.spoken_start)
            else:
                a, b = s.start, s.end
            lo, hi = min(lo, a), max(hi, b)
        return (lo, hi) if hi > lo else (len(self.original), len(self.original))

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "supported": self.supported,
            "text": self.original,
            "spoken": self.spoken,
            "spans": [
                {
                    "start": s.start,
                    "end": s.end,
                    "spoken_start": s.spoken_start,
                    "spoken_end": s.spoken_end,
                    "text": self.original[s.start : s.end],
                    "spoken": self.spoken[s.spoken_start : s.spoken_end],
                }
                for s in self.spans
                if not s.identity
            ],
            "char_map": [list(p) for p in self.char_map()],
        }


class _Builder:
    """Accumulates spans; pads a replacement with a space where it would touch a word."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.pos = 0  # original characters consumed
        self.out = 0  # spoken characters produced
        self.last = ""  # last spoken character

    def keep(self, end: int) -> None:
        if end <= self.pos:
            return
        chunk = self.text[self.pos : end]
        self.spans.append(Span(self.pos, end, self.out, self.out + len(chunk), True))
        self._add(chunk)
        self.pos = end

    def say(self, length: int, spoken: str, *, pad_after: bool) -> None:
        if spoken and spoken[0].isalnum() and self.last.isalnum():
            spoken = " " + spoken
        if pad_after and spoken and spoken[-1].isalnum():
            spoken += " "
        end = self.pos + length
        self.spans.append(Span(self.pos, end, self.out, self.out + len(spoken), False))
        self._add(spoken)
        self.pos = end

    def _add(self, chunk: str) -> None:
        if chunk:
            self.parts.append(chunk)
            self.out += len(chunk)
            self.last = chunk[-1]


def apply_rules(text: str, rules: Sequence[Rule], language: str) -> Normalized:
    """Scan ``text`` left to right; at each position the leftmost match wins, and among
    matches at the same position the earlier rule. Unmatched text is kept as it is."""
    b = _Builder(text)
    nxt: list[re.Match[str] | None] = [r.pattern.search(text) for r in rules]
    while b.pos < len(text):
        best = -1
        for i, rule in enumerate(rules):
            m = nxt[i]
            if m is not None and m.start() < b.pos:
                m = nxt[i] = rule.pattern.search(text, b.pos)
            if m is not None and (best < 0 or m.start() < nxt[best].start()):  # type: ignore[union-attr]
                best = i
        if best < 0:
            break
        m = nxt[best]
        assert m is not None
        result = rules[best].handler(m, text)
        if result is None:
            nxt[best] = rules[best].pattern.search(text, m.start() + 1)
            continue
        b.keep(m.start())
        pieces = [(m.end() - m.start(), result)] if isinstance(result, str) else result
        assert sum(n for n, _ in pieces) == m.end() - m.start(), rules[best].name
        for k, (n, spoken) in enumerate(pieces):
            last = k == len(pieces) - 1
            after = text[b.pos + n : b.pos + n + 1]
            b.say(n, spoken, pad_after=last and after.isalnum())
    b.keep(len(text))
    return Normalized(text, "".join(b.parts), tuple(b.spans), language, True)


def passthrough(text: str, language: str) -> Normalized:
    span = (Span(0, len(text), 0, len(text), True),) if text else ()
    return Normalized(text, text, span, language, False)
