"""Text that no engine should see: checked before any synthesis, on every route.

Engines fail on some input in ways that look like server faults (a NUL or a lone surrogate
has crashed Piper's phonemizer and Chatterbox's tokenizer, as a 500), and text with
nothing to say (only zero-width characters, only punctuation) produces no audio at all. So
the utterance checks the text first and answers 400 ``invalid_text`` before a slot, a voice
or a byte of a stream. The text is never changed here: clause texts sent back to clients
must be exact slices of what they sent (normalization for speech comes later, with its own
character map).
"""

from __future__ import annotations

import unicodedata

from app.errors import InvalidText

ALLOWED_CONTROLS = frozenset("\n\t")


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def check_characters(text: str) -> None:
    """``InvalidText`` for control characters (other than newline and tab) and lone
    surrogates; a piece of a token stream may be anything else, even whitespace only."""
    for i, ch in enumerate(text):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise InvalidText(f"text has a lone surrogate ({_describe(ch)}) at index {i}")
        if ch not in ALLOWED_CONTROLS and unicodedata.category(ch) == "Cc":
            raise InvalidText(f"text has a control character ({_describe(ch)}) at index {i}")


def has_speech(text: str) -> bool:
    """Whether ``text`` has something to say: a letter or a digit, in any script."""
    return any(ch.isalnum() for ch in text)


def check_text(text: str) -> str:
    """``text`` unchanged if an engine may speak it, else ``InvalidText`` saying why."""
    check_characters(text)
    if not has_speech(text):
        raise InvalidText("text has nothing to speak (no letter or digit)")
    return text
