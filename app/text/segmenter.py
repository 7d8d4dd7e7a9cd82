"""Clause segmentation: when an LLM token stream has a complete clause worth speaking.

``ClauseSegmenter`` takes tokens as they arrive and returns clauses as soon as they are
complete, so speech starts at the first clause instead of at the end of the reply. Every
returned clause is an exact slice of the input: joining everything that ``push``,
``flush_idle`` and ``flush`` return gives back exactly what was pushed. A boundary sits right
after a word (its closing punctuation, quotes and brackets included); the whitespace after it
starts the next clause.

Rules, in the order they are applied:

- A boundary is only ever placed at the end of a whitespace-delimited word, and only once the
  whitespace after that word has arrived, so "3." then "5" is never a boundary and the token
  that brings the whitespace is the one that completes the clause. Numbers, emails, URLs and
  dotted acronyms contain no whitespace, so they are never split.
- A sentence end (``. ! ? …`` and their CJK forms, or a paragraph break) ends a clause once the
  clause holds at least ``min_sentence_chars`` characters (whitespace-stripped length); a
  clause pause (``, ; :``, a dash, a single line break) once it holds ``min_clause_chars``.
  Shorter clauses keep accumulating until a later boundary qualifies.
- Words that end in a period but do not end a sentence: titles and the like ("Dr.", "Mr.",
  "St.", "vs.", "e.g.", "i.e."), dotted acronyms ("U.S."), single initials ("J. R. R.") and
  ordered-list numbers at the start of a line ("1. "). A few abbreviations that often do end a
  sentence ("etc.", "a.m.", "p.m.", "Inc.", "Jr.", "No.", ...) end one only when the next word
  starts with a capital letter; an ellipsis is a sentence end before a capital letter and a
  clause pause otherwise. Those are the only decisions that wait for the next word.
- CJK sentence and clause marks (``。！？，、；：``) need no whitespace after them.
- A clause that never ends is cut once it would pass ``max_chars``: at the last pause in the
  second half of the window if there is one, else at the last word end, else (no whitespace at
  all) at ``max_chars``.

Boundaries depend only on the text, never on how it was split into tokens (``flush_idle``
aside, which is a decision about time). Each push rescans only the undecided tail of the
buffer, so the work per token is proportional to the token plus the current clause.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Final


class _Strength(IntEnum):
    NONE = 0
    CLAUSE = 1
    SENTENCE = 2


class _Verdict(IntEnum):
    NO = 0
    YES = 1
    PENDING = 2


_SENTENCE_MARKS: Final = frozenset("!?‼⁇⁈⁉。！？।؟")
_CLAUSE_MARKS: Final = frozenset(",;:—–，、；：")
_CJK_SENTENCE: Final = frozenset("。！？")
_CJK_MARKS: Final = "。！？，、；："
# Characters that may follow the terminating mark and still belong to the clause.
_CLOSERS: Final = "\"'”’»)]}*_」』）】〕》〉"
_OPENERS: Final = "\"'“‘«([{*_¿¡「『（【〔《〈"
# After a CJK mark: more marks and closers belong to the same boundary.
_CJK_TAIL: Final = frozenset(_CLOSERS) | frozenset(_CJK_MARKS) | frozenset("!?.…")
_PAUSE_CHARS: Final = _SENTENCE_MARKS | _CLAUSE_MARKS | frozenset(".…")

# A word end (whitespace after a non-whitespace character) or a CJK mark.
_CANDIDATE: Final = re.compile(r"(?<=\S)\s|[" + _CJK_MARKS + "]")
_NON_SPACE: Final = re.compile(r"\S")
_DOTTED: Final = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")

# "Never": the next word continues the sentence. "Capital": a sentence end only before a
# capital letter ("etc. The" ends a sentence, "etc. and" and "No. 5" do not).
_NEVER: Final = (_Strength.NONE, _Strength.NONE)
_IF_CAPITAL: Final = (_Strength.SENTENCE, _Strength.NONE)
_ABBREVIATIONS: Final[dict[str, tuple[_Strength, _Strength]]] = {
    **{
        word: _NEVER
        for word in (
            "mr mrs ms mx dr prof st mt ft sgt lt col capt gen adm rev hon gov sen rep pres "
            "messrs vs cf approx fig figs vol vols dept apt ca e.g i.e viz al"
        ).split()
    },
    **{
        word: _IF_CAPITAL
        for word in (
            "etc inc ltd co corp llc jr sr no nos a.m p.m ph.d ave blvd rd "
            "jan feb mar apr jun jul aug sep sept oct nov dec"
        ).split()
    },
}
_ELLIPSIS: Final = (_Strength.SENTENCE, _Strength.CLAUSE)


def _classify(word: str, at_line_start: bool) -> tuple[_Strength, _Strength]:
    """How strongly ``word`` ends a clause: (before a capital letter, before anything else)."""
    core = word.rstrip(_CLOSERS)
    if not core:
        return _NEVER
    last = core[-1]
    if last in _SENTENCE_MARKS:
        return (_Strength.SENTENCE, _Strength.SENTENCE)
    if last == "…" or core.endswith(".."):
        return _ELLIPSIS
    if last == ".":
        base = core[:-1].lstrip(_OPENERS)
        if not base:
            return (_Strength.SENTENCE, _Strength.SENTENCE)
        if at_line_start and base.isdigit() and len(base) <= 3:
            return _NEVER  # an ordered-list marker: "1. Open the app"
        if len(base) == 1 and base.isalpha():
            return _NEVER  # an initial: "J. R. R. Tolkien"
        rule = _ABBREVIATIONS.get(base.lower())
        if rule is not None:
            return rule
        if _DOTTED.fullmatch(base):
            return _NEVER  # "U.S.", "U.S.A."
        return (_Strength.SENTENCE, _Strength.SENTENCE)
    if last in _CLAUSE_MARKS:
        return (_Strength.CLAUSE, _Strength.CLAUSE)
    if word in ("-", "--") and not at_line_start:
        return (_Strength.CLAUSE, _Strength.CLAUSE)  # a spaced dash; "- " at line start is a bullet
    return _NEVER


def speakable(clause: str) -> bool:
    """Whether ``clause`` has anything to say (letters or digits); callers skip the rest."""
    return any(ch.isalnum() for ch in clause)


class ClauseSegmenter:
    """Turns a token stream into clauses, one instance per reply."""

    def __init__(
        self, *, min_sentence_chars: int = 15, min_clause_chars: int = 25, max_chars: int = 250
    ) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self._min_sentence = min_sentence_chars
        self._min_clause = min_clause_chars
        self._max = max_chars
        self._buf = ""
        self._start = 0  # where the current clause starts in _buf
        self._scan = 0  # every candidate before this position has been judged "no"
        # Whether _start is at the beginning of a line (for list markers like "1. ").
        self._line_start = True

    @property
    def buffered(self) -> str:
        """The text received but not yet returned in a clause."""
        return self._buf[self._start :]

    def push(self, text: str) -> list[str]:
        """Append a token; return the clauses that are now complete (possibly none)."""
        if self._start:
            self._buf = self._buf[self._start :]
            self._scan -= self._start
            self._start = 0
        self._buf += text
        clauses: list[str] = []
        while (cut := self._find_cut()) is not None:
            clauses.append(self._take(cut))
        return clauses

    def flush_idle(self) -> list[str]:
        """No token for a while: speak up to the last word end, keep the trailing partial word."""
        buf, start = self._buf, self._start
        word_start = len(buf)
        while word_start > start and not buf[word_start - 1].isspace():
            word_start -= 1
        if word_start == start:
            return []
        cut = start + len(buf[start:word_start].rstrip())
        if cut == start:
            return []
        return [self._take(cut)]

    def flush(self) -> list[str]:
        """End of input: return everything still buffered as the last clause.

        The remainder may be whitespace or punctuation only; it is returned anyway so that the
        clauses join back to the input exactly, and ``speakable`` tells callers to skip it.
        """
        rest = self.buffered
        if not rest:
            return []
        return [self._take(len(self._buf))]

    def _take(self, cut: int) -> str:
        clause = self._buf[self._start : cut]
        tail = clause.rstrip(" \t\r\f\v")
        if tail:
            self._line_start = tail.endswith("\n")
        self._start = self._scan = cut
        return clause

    def _find_cut(self) -> int | None:
        """The next boundary, or None while there is none yet (or one is still undecided)."""
        buf, start, n = self._buf, self._start, len(self._buf)
        limit = start + self._max  # the furthest a boundary may be
        pos = max(self._scan, start)
        while (match := _CANDIDATE.search(buf, pos, min(n, limit + 1))) is not None:
            p = match.start()
            if buf[p].isspace():
                verdict = self._judge_word_end(p) if p > start else _Verdict.NO
                pos = p + 1
            else:
                end = p + 1
                while end < n and buf[end] in _CJK_TAIL:
                    end += 1
                if end > limit:
                    break  # a boundary there would be too late: the forced cut decides
                if end == n:
                    self._scan = p
                    return None  # a closing mark may still follow
                is_sentence = any(ch in _CJK_SENTENCE for ch in buf[p:end])
                strength = _Strength.SENTENCE if is_sentence else _Strength.CLAUSE
                if buf[end].isspace():
                    verdict = _Verdict.NO  # judged as a word end at `end`
                else:
                    verdict = self._verdict(end, strength, strength)
                p, pos = end, end
            if verdict is _Verdict.YES:
                return p
            if verdict is _Verdict.PENDING:
                self._scan = p
                return None
        if n > limit:
            return self._forced_cut()
        self._scan = n
        return None

    def _qualifies(self, length: int, strength: _Strength) -> bool:
        if strength >= _Strength.CLAUSE and length >= self._min_clause:
            return True
        return strength is _Strength.SENTENCE and length >= self._min_sentence

    def _verdict(self, p: int, low: _Strength, high: _Strength) -> _Verdict:
        first = _NON_SPACE.search(self._buf, self._start, p)
        length = p - first.start() if first else 0
        if self._qualifies(length, low):
            return _Verdict.YES
        if not self._qualifies(length, high):
            return _Verdict.NO
        return _Verdict.PENDING

    def _judge_word_end(self, p: int) -> _Verdict:
        """Judge the word that ends at ``p`` (``buf[p]`` is whitespace)."""
        buf, start, n = self._buf, self._start, len(self._buf)
        first = _NON_SPACE.search(buf, start, p)
        length = p - first.start() if first else 0
        if length < min(self._min_sentence, self._min_clause):
            return _Verdict.NO
        word_start = p - 1
        while word_start > start and not buf[word_start - 1].isspace():
            word_start -= 1
        before_capital, otherwise = _classify(buf[word_start:p], self._at_line_start(word_start))

        run_end = p
        while run_end < n and buf[run_end].isspace():
            run_end += 1
        run_done = run_end < n
        newlines = buf.count("\n", p, run_end)
        by_newlines = (
            _Strength.SENTENCE
            if newlines >= 2
            else _Strength.CLAUSE
            if newlines == 1
            else _Strength.NONE
        )
        nxt = run_end
        while nxt < n and buf[nxt] in _OPENERS:
            nxt += 1
        if nxt < n:
            low = high = before_capital if buf[nxt].isupper() else otherwise
        else:
            low, high = min(before_capital, otherwise), max(before_capital, otherwise)
        low = max(low, by_newlines)
        high = max(high, by_newlines if run_done else _Strength.SENTENCE)
        return self._verdict(p, low, high)

    def _at_line_start(self, pos: int) -> bool:
        """Whether only spaces separate ``pos`` from the start of its line."""
        k = pos - 1
        while k >= self._start and self._buf[k] != "\n" and self._buf[k].isspace():
            k -= 1
        if k < self._start:
            return self._line_start
        return self._buf[k] == "\n"

    def _forced_cut(self) -> int:
        """Cut a clause that has run past max_chars, never inside a word if avoidable."""
        buf, start = self._buf, self._start
        limit = start + self._max
        last_word_end = last_pause = None
        for match in _CANDIDATE.finditer(buf, start, limit + 1):
            p = match.start()
            if buf[p].isspace():
                if p == start:
                    continue
                k = p - 1
                while k > start and buf[k] in _CLOSERS:
                    k -= 1
                is_pause = buf[k] in _PAUSE_CHARS or buf[p] == "\n"
            else:
                end = p + 1
                while end <= limit and buf[end] in _CJK_TAIL:
                    end += 1
                if end > limit or buf[end].isspace():
                    continue
                p, is_pause = end, True
            last_word_end = p
            if is_pause and p - start >= self._max // 2:
                last_pause = p
        if last_pause is not None:
            return last_pause
        if last_word_end is not None:
            return last_word_end
        return limit


def split_clauses(
    text: str, *, min_sentence_chars: int = 15, min_clause_chars: int = 25, max_chars: int = 250
) -> list[str]:
    """Segment a whole text at once: the same clauses as pushing it in any pieces, then flush."""
    segmenter = ClauseSegmenter(
        min_sentence_chars=min_sentence_chars,
        min_clause_chars=min_clause_chars,
        max_chars=max_chars,
    )
    return segmenter.push(text) + segmenter.flush()
