"""Clause segmenter: exact slices, boundaries independent of tokenization, never inside a word."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.text import ClauseSegmenter, speakable, split_clauses

# (text, expected clauses after stripping). Defaults: sentence >= 15 chars, clause >= 25.
CASES: list[tuple[str, list[str]]] = [
    (
        "Hello there, my friend. How are you doing today? I hope all is well with you.",
        ["Hello there, my friend.", "How are you doing today?", "I hope all is well with you."],
    ),
    ("Hi! Sure. I can help with that right away.", ["Hi! Sure. I can help with that right away."]),
    (
        "Your balance is 1,000 dollars and 3.5 cents today. Anything else?",
        ["Your balance is 1,000 dollars and 3.5 cents today.", "Anything else?"],
    ),
    (
        "The meeting is at 3:30 in the afternoon. See you there.",
        ["The meeting is at 3:30 in the afternoon.", "See you there."],
    ),
    (
        "That will be $25.50 plus a 10.5% service fee. Shall I proceed?",
        ["That will be $25.50 plus a 10.5% service fee.", "Shall I proceed?"],
    ),
    (
        "Please update to version 1.2.3 of the app. It fixes the crash.",
        ["Please update to version 1.2.3 of the app.", "It fixes the crash."],
    ),
    (
        "Dr. Smith will see you now. Mr. Jones and Mrs. Brown already left.",
        ["Dr. Smith will see you now.", "Mr. Jones and Mrs. Brown already left."],
    ),
    (
        "Ms. Lee lives on Main St. near the park. She moved in May.",
        ["Ms. Lee lives on Main St. near the park.", "She moved in May."],
    ),
    (
        "Martin Luther King Jr. gave the speech in 1963. It changed history.",
        ["Martin Luther King Jr. gave the speech in 1963.", "It changed history."],
    ),
    (
        "The game was Lakers vs. Celtics last night. Lakers won by ten.",
        ["The game was Lakers vs. Celtics last night.", "Lakers won by ten."],
    ),
    (
        "Bring snacks, e.g. chips or nuts, to the party. Also bring drinks.",
        ["Bring snacks, e.g. chips or nuts,", "to the party. Also bring drinks."],
    ),
    (
        "Use the main entrance, i.e. the one on the north side. Thanks.",
        ["Use the main entrance, i.e. the one on the north side.", "Thanks."],
    ),
    (
        "She moved to the U.S. last year with her family. Now she works here.",
        ["She moved to the U.S. last year with her family.", "Now she works here."],
    ),
    (
        "The store opens at 9 a.m. and closes at 5 p.m. Call us anytime before then.",
        ["The store opens at 9 a.m. and closes at 5 p.m.", "Call us anytime before then."],
    ),
    (
        "My favorite author is J. R. R. Tolkien without a doubt. What about you?",
        ["My favorite author is J. R. R. Tolkien without a doubt.", "What about you?"],
    ),
    (
        "You can email john.doe@example.com for help. We reply fast.",
        ["You can email john.doe@example.com for help.", "We reply fast."],
    ),
    (
        "Visit https://example.com/a.b?x=1,2 for details. It has everything.",
        ["Visit https://example.com/a.b?x=1,2 for details.", "It has everything."],
    ),
    (
        "Our website is example.com. You can book online there too.",
        ["Our website is example.com.", "You can book online there too."],
    ),
    (
        'He said "I will be there soon." Then he hung up the phone.',
        ['He said "I will be there soon."', "Then he hung up the phone."],
    ),
    (
        # A period before a closing bracket ends the sentence, closer included.
        "The order (the big one.) shipped today. Tracking is available now.",
        ["The order (the big one.)", "shipped today. Tracking is available now."],
    ),
    (
        "Well... let me check that for you in the system. Okay, got it.",
        ["Well... let me check that for you in the system.", "Okay, got it."],
    ),
    (
        "I was thinking about it... Maybe we should wait a bit.",
        ["I was thinking about it...", "Maybe we should wait a bit."],
    ),
    (
        "Hmm… that is a really interesting question… let me think about it.",
        ["Hmm… that is a really interesting question…", "let me think about it."],
    ),
    (
        "Really?! That is amazing news for everyone! Congratulations!",
        ["Really?! That is amazing news for everyone!", "Congratulations!"],
    ),
    (
        "We sell apples, oranges, etc. and many other fruits. Come by soon.",
        ["We sell apples, oranges, etc. and many other fruits.", "Come by soon."],
    ),
    (
        "We have pears, plums, etc. Come by the store soon.",
        ["We have pears, plums, etc.", "Come by the store soon."],
    ),
    (
        "Is that item No. 5 on your list? No. It is the sixth.",
        ["Is that item No. 5 on your list?", "No. It is the sixth."],
    ),
    (
        "If you want to reschedule your appointment, just let me know and I will do it.",
        ["If you want to reschedule your appointment,", "just let me know and I will do it."],
    ),
    (
        "First, we check the account; then we verify your identity.",
        ["First, we check the account;", "then we verify your identity."],
    ),
    (
        "Here is what I found in our records: three open tickets.",
        ["Here is what I found in our records:", "three open tickets."],
    ),
    (
        "The package arrived yesterday — but it was the wrong size, sadly.",
        ["The package arrived yesterday —", "but it was the wrong size,", "sadly."],
    ),
    (
        "Here are the steps:\n1. Open the app\n2. Tap settings\n3. Choose the account page\n\n"
        "That is all.",
        [
            "Here are the steps:\n1. Open the app",
            "2. Tap settings\n3. Choose the account page",
            "That is all.",
        ],
    ),
    (
        "Options:\n- Pizza with extra cheese\n- Pasta with tomato sauce\n- Salad",
        ["Options:\n- Pizza with extra cheese", "- Pasta with tomato sauce", "- Salad"],
    ),
    (
        "**Note.** Your appointment is confirmed for Monday.",
        ["**Note.** Your appointment is confirmed for Monday."],
    ),
    (
        "This is the first paragraph\n\nAnd this is the second one",
        ["This is the first paragraph", "And this is the second one"],
    ),
    (
        "no punctuation here at all just words flowing on and on",
        ["no punctuation here at all just words flowing on and on"],
    ),
    (
        "Great news 🎉 your refund is approved! Café crème costs €3.50 now.",
        ["Great news 🎉 your refund is approved!", "Café crème costs €3.50 now."],
    ),
    (
        "Sure.   I   can    do   that   for   you.    Anything  else?",
        ["Sure.   I   can    do   that   for   you.", "Anything  else?"],
    ),
    ("   Leading spaces are kept here. And   ", ["Leading spaces are kept here.", "And"]),
    (
        "你好。我是你的助手，很高兴为你服务。请问有什么可以帮你？",
        ["你好。我是你的助手，很高兴为你服务。", "请问有什么可以帮你？"],
    ),
    (
        "The price was 3. Five people paid it anyway, believe it or not.",
        ["The price was 3.", "Five people paid it anyway,", "believe it or not."],
    ),
    (
        "Please call Acme Inc. Tomorrow they open early for everyone.",
        ["Please call Acme Inc.", "Tomorrow they open early for everyone."],
    ),
    (
        "Please call Acme Inc. at noon, they open early for everyone.",
        ["Please call Acme Inc. at noon,", "they open early for everyone."],
    ),
    ("Okay.", ["Okay."]),
    ("", []),
]


def _whole(text: str) -> list[str]:
    return [text]


def _chars(text: str) -> list[str]:
    return list(text)


def _llm_tokens(text: str) -> list[str]:
    """Roughly how an LLM tokenizer splits: " Hello", ",", " world", "."."""
    return re.findall(r"\s*[\w]+|\s*[^\w\s]|\s+$", text)


def _random_splitter(seed: int) -> Callable[[str], list[str]]:
    def split(text: str) -> list[str]:
        rng = random.Random(seed)
        pieces, i = [], 0
        while i < len(text):
            step = rng.randint(1, 3)
            pieces.append(text[i : i + step])
            i += step
        return pieces

    return split


SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    "whole": _whole,
    "chars": _chars,
    "llm": _llm_tokens,
    "random1": _random_splitter(1),
    "random2": _random_splitter(2),
}


def _stream(tokens: list[str], **kw: int) -> list[str]:
    segmenter = ClauseSegmenter(**kw)
    out: list[str] = []
    for token in tokens:
        out += segmenter.push(token)
    return out + segmenter.flush()


def test_llm_tokenizer_covers_the_text() -> None:
    for text, _ in CASES:
        assert "".join(_llm_tokens(text)) == text


@pytest.mark.parametrize("splitter", SPLITTERS)
@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] for c in CASES])
def test_tricky_llm_outputs_split_at_the_same_boundaries_whatever_the_tokens(
    text: str, expected: list[str], splitter: str
) -> None:
    clauses = _stream(SPLITTERS[splitter](text))
    assert "".join(clauses) == text
    assert [c.strip() for c in clauses if speakable(c)] == expected


def test_sentence_end_waits_for_whitespace() -> None:
    seg = ClauseSegmenter()
    assert seg.push("The interest rate is 3.") == []
    assert seg.push("5") == []
    assert seg.push(" percent") == []
    assert seg.push(" a year.") == []
    # The token that brings the whitespace completes the clause.
    assert seg.push(" Good") == ["The interest rate is 3.5 percent a year."]
    assert seg.buffered == " Good"


def test_clause_pause_waits_for_whitespace() -> None:
    seg = ClauseSegmenter()
    assert seg.push("The company has grown to about 1,") == []
    assert seg.push("000") == []
    assert seg.push(" employees,") == []
    assert seg.push(" mostly") == ["The company has grown to about 1,000 employees,"]


def test_boundary_on_the_token_with_the_whitespace() -> None:
    seg = ClauseSegmenter()
    assert seg.push("Thanks for calling us today.") == []
    assert seg.push("\n") == ["Thanks for calling us today."]
    assert seg.buffered == "\n"


def test_short_sentences_accumulate() -> None:
    seg = ClauseSegmenter()
    assert seg.push("Yes. ") == []
    assert seg.push("Okay. ") == []
    assert seg.push("That works for me. ") == ["Yes. Okay. That works for me."]


def test_capital_rule_waits_for_the_next_word() -> None:
    seg = ClauseSegmenter()
    assert seg.push("We stock apples, pears, etc. ") == []
    assert seg.push("and") == []
    assert seg.push(" more. ") == ["We stock apples, pears, etc. and more."]
    seg = ClauseSegmenter()
    assert seg.push("We stock apples, pears, etc. ") == []
    assert seg.push("The") == ["We stock apples, pears, etc."]


def test_min_lengths_are_configurable() -> None:
    assert split_clauses("Hi. Yes, fine. Go.", min_sentence_chars=0, min_clause_chars=0) == [
        "Hi.",
        " Yes,",
        " fine.",
        " Go.",
    ]


def test_flush_idle_speaks_up_to_the_last_whitespace() -> None:
    seg = ClauseSegmenter()
    assert seg.push("I am looking that up for you right no") == []
    assert seg.flush_idle() == ["I am looking that up for you right"]
    assert seg.buffered == " no"
    assert seg.push("w.") == []
    assert seg.flush() == [" now."]


def test_flush_idle_never_splits_a_number() -> None:
    seg = ClauseSegmenter()
    seg.push("Your total is 3")
    assert seg.flush_idle() == ["Your total is"]
    seg.push(".50 dollars ")
    assert seg.flush_idle() == [" 3.50 dollars"]
    assert seg.buffered == " "


def test_flush_idle_without_whitespace_keeps_everything() -> None:
    seg = ClauseSegmenter()
    seg.push("Supercalifragilistic")
    assert seg.flush_idle() == []
    seg = ClauseSegmenter()
    seg.push("   ")
    assert seg.flush_idle() == []
    assert seg.flush() == ["   "]


def test_flush_returns_the_rest_even_if_unspeakable() -> None:
    seg = ClauseSegmenter()
    assert seg.push("This sentence is long enough. ") == ["This sentence is long enough."]
    assert seg.flush() == [" "]
    assert not speakable(" ")
    assert seg.flush() == []


def test_max_chars_cuts_at_the_last_whitespace() -> None:
    words = " ".join(["word"] * 30)  # 149 chars, no punctuation
    clauses = split_clauses(words, max_chars=50)
    assert "".join(clauses) == words
    assert all(len(c) <= 50 for c in clauses)
    assert clauses[0] == " ".join(["word"] * 10)  # 49 chars; "word" would end at 54


def test_max_chars_prefers_a_late_pause() -> None:
    text = "alpha beta gamma delta epsilon, zeta eta theta iota kappa lambda mu nu xi"
    clauses = split_clauses(text, max_chars=50, min_clause_chars=100)
    assert clauses[0] == "alpha beta gamma delta epsilon,"


def test_max_chars_without_whitespace_cuts_at_the_limit() -> None:
    text = "x" * 120
    assert split_clauses(text, max_chars=50) == ["x" * 50, "x" * 50, "x" * 20]


def test_max_chars_is_reached_as_tokens_arrive() -> None:
    seg = ClauseSegmenter(max_chars=20)
    assert seg.push("one two three ") == []
    assert seg.push("four") == []
    assert seg.push(" f") == []  # 20 chars: still fits
    # The 21st character shows the clause cannot end within 20: cut at the last word end.
    assert seg.push("i") == ["one two three four"]
    assert seg.buffered == " fi"


def test_speakable() -> None:
    assert speakable("Hi")
    assert speakable(" 42 ")
    assert not speakable("  \n")
    assert not speakable(" ... !")
    assert not speakable("")


# Property tests ---------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("abcXYZ019 .,;:!?\n'\"()-…$%@/") + ["Dr.", "etc.", "e.g.", "U.S.", "。", "，", "é"]
)
_TEXT = st.lists(_ALPHABET, max_size=120).map("".join)


def _split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


def _boundaries(clauses: list[str]) -> list[int]:
    out, pos = [], 0
    for clause in clauses[:-1]:
        pos += len(clause)
        out.append(pos)
    return out


@settings(max_examples=300, deadline=None)
@given(text=_TEXT, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_property_same_clauses_whatever_the_split(text: str, cuts: list[int]) -> None:
    for kw in ({}, {"min_sentence_chars": 3, "min_clause_chars": 5, "max_chars": 30}):
        clauses = _stream(_split_at(text, cuts), **kw)
        assert "".join(clauses) == text
        assert clauses == split_clauses(text, **kw)
        assert all(clause for clause in clauses)


@settings(max_examples=300, deadline=None)
@given(text=_TEXT, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_property_never_splits_inside_a_word(text: str, cuts: list[int]) -> None:
    clauses = _stream(
        _split_at(text, cuts), min_sentence_chars=2, min_clause_chars=2, max_chars=10_000
    )
    for b in _boundaries(clauses):
        assert not (text[b - 1].isalnum() and text[b].isalnum()), (text, b)
        # A boundary always follows a word: the text before it does not end in whitespace.
        assert not text[b - 1].isspace()


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXT,
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    idle=st.lists(st.booleans(), max_size=20),
)
def test_property_flush_idle_keeps_text_exact(text: str, cuts: list[int], idle: list[bool]) -> None:
    seg = ClauseSegmenter(min_sentence_chars=5, min_clause_chars=8, max_chars=40)
    clauses: list[str] = []
    for i, token in enumerate(_split_at(text, cuts)):
        clauses += seg.push(token)
        if i < len(idle) and idle[i]:
            spoken = seg.flush_idle()
            # Up to the last whitespace: what stays is whitespace plus at most one word.
            assert len(seg.buffered.split()) <= 1
            assert all(not c[-1].isspace() for c in spoken)
            clauses += spoken
    clauses += seg.flush()
    assert "".join(clauses) == text
    for b in _boundaries(clauses):
        assert not (text[b - 1].isalnum() and text[b].isalnum())


@settings(max_examples=200, deadline=None)
@given(text=_TEXT, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_property_clauses_respect_max_chars(text: str, cuts: list[int]) -> None:
    clauses = _stream(_split_at(text, cuts), max_chars=12)
    assert all(len(c.rstrip()) <= 12 for c in clauses)
