"""Voice id validation: the only gate between client input and a URL, an object key or a path.

A ``voice_id`` is 1 to ``MAX_VOICE_ID_LENGTH`` characters of ``[a-zA-Z0-9_-]`` and nothing
else, so ``..``, ``/``, ``%2e``, NUL bytes, newlines and non-ASCII lookalikes never reach a
store or the disk cache. Every entry point of the voices layer calls ``validate_voice_id``
before any I/O.
"""

from __future__ import annotations

import re

from app.errors import InvalidVoiceId

MAX_VOICE_ID_LENGTH = 128

# fullmatch, not ``^...$``: ``$`` also matches before a trailing newline.
_VOICE_ID_RE = re.compile(r"[a-zA-Z0-9_-]+", re.ASCII)

# How much of a rejected value the error message echoes back.
_PREVIEW_CHARS = 64


def _preview(value: object) -> str:
    """A short, printable, single-line rendering of a rejected value for an error message."""
    if value == "":
        return "(empty)"
    if isinstance(value, str):
        parts: list[str] = []
        used = 0
        for ch in value:
            # Control and non-ASCII characters become visible escapes: one safe ASCII line.
            shown = ch if ch.isascii() and ch.isprintable() else ascii(ch)[1:-1]
            if used + len(shown) > _PREVIEW_CHARS:
                return "".join(parts) + f"... ({len(value)} characters)"
            parts.append(shown)
            used += len(shown)
        return "".join(parts)
    text = repr(value)
    if len(text) > _PREVIEW_CHARS:
        text = text[:_PREVIEW_CHARS] + "..."
    return f"{text} ({type(value).__name__}, expected a string)"


def validate_voice_id(voice_id: object) -> str:
    """Return ``voice_id`` unchanged if it is a valid id, else raise ``InvalidVoiceId``."""
    if (
        isinstance(voice_id, str)
        and 0 < len(voice_id) <= MAX_VOICE_ID_LENGTH
        and _VOICE_ID_RE.fullmatch(voice_id)
    ):
        return voice_id
    raise InvalidVoiceId(f"Invalid voice_id format: {_preview(voice_id)}")


def is_valid_voice_id(voice_id: object) -> bool:
    """True when ``validate_voice_id`` would accept ``voice_id``."""
    try:
        validate_voice_id(voice_id)
    except InvalidVoiceId:
        return False
    return True
