"""Text normalization for speech: the written form a client sent -> the form an engine reads.

An agent's replies are full of prices, times, dates, phone numbers and codes, and the
caller only hears how they are read. ``normalize(text, language)`` returns the spoken form
and a map from every character of the original to the span of spoken text it became, so
that client-facing texts (``sentence_complete.text``, ``text_spoken``, ElevenLabs
``alignment``) can stay in the original while the engine reads the spoken form.

English rules are in ``normalize_en``; the other languages in ``normalize_intl``; the span
machinery in ``normalize_core``.
"""

from __future__ import annotations

from app.text.normalize_core import Normalized, Span
from app.text.normalize_en import normalize_en
from app.text.normalize_intl import normalize_intl

__all__ = ["Normalized", "Span", "normalize"]


def normalize(text: str, language: str = "en") -> Normalized:
    """The spoken form of ``text`` in ``language`` (a code such as ``en`` or ``pt-BR``)."""
    lang = (language or "en").lower().replace("_", "-").split("-")[0]
    if lang == "en":
        return normalize_en(text)
    return normalize_intl(text, lang)
