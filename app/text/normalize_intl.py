"""Normalization for the other Chatterbox languages, through num2words where it has them.

Less than English on purpose: numbers with the language's own separators ("1.234,5" in
German), decimals, negative numbers, percentages, money with € $ £ (num2words' currency
forms, which handle each language's plurals), and clock times. Dates, ordinals, phone
numbers and codes are left as written, since the written forms are ambiguous across
locales and a wrong reading is worse than the engine's own guess. Languages num2words does
not cover (Greek, Hindi, Malay, Swahili, Chinese) pass through unchanged, with
``supported`` false. num2words raises on a few inputs in some languages (negative numbers
in Polish); such a token is left as written.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from num2words import CONVERTER_CLASSES, num2words

from app.text.normalize_core import Normalized, Pieces, Rule, apply_rules, passthrough

# Decimal mark word, percent word (a leading "^" puts it before the number).
_WORDS: Final[dict[str, tuple[str, str]]] = {
    "de": ("Komma", "Prozent"), "fr": ("virgule", "pour cent"), "es": ("coma", "por ciento"),
    "it": ("virgola", "per cento"), "pt": ("vírgula", "por cento"), "nl": ("komma", "procent"),
    "pl": ("przecinek", "procent"), "ru": ("запятая", "процентов"), "sv": ("komma", "procent"),
    "da": ("komma", "procent"), "no": ("komma", "prosent"), "fi": ("pilkku", "prosenttia"),
    "tr": ("virgül", "^yüzde"), "ja": ("点", "パーセント"), "ko": ("점", "퍼센트"),
    "he": ("נקודה", "אחוז"), "ar": ("فاصلة", "بالمئة"),
}
# How a clock time is read: the hour word goes between hours and minutes.
_HOUR_WORD: Final = {"de": "Uhr", "fr": "heures", "nl": "uur"}
_DOT_DECIMAL: Final = frozenset({"ja", "ko", "he", "ar"})
_SPACE_GROUPS: Final = frozenset({"fr", "pl", "ru", "sv", "no", "fi"})
_CURRENCIES: Final = {"€": "EUR", "$": "USD", "£": "GBP", "EUR": "EUR", "USD": "USD",
                      "GBP": "GBP"}


def supported_languages() -> tuple[str, ...]:
    return tuple(sorted(k for k in _WORDS if k in CONVERTER_CLASSES))


class _Language:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.point, self.percent = _WORDS[lang]
        if lang in _DOT_DECIMAL:
            self.group, self.decimal = ",", "."
        else:
            self.group, self.decimal = ("[  ]" if lang in _SPACE_GROUPS else r"\."), ","
        g, d = self.group, re.escape(self.decimal)
        num = rf"(?:\d{{1,3}}(?:{g}\d{{3}})+(?:{d}\d+)?|\d+(?:{d}\d+)?)"
        cur = r"€|\$|£"
        self.rules = (
            Rule("money", re.compile(
                rf"(?<![\w.,])(?:(?P<sym>{cur})\s?(?P<a>{num})|(?P<b>{num})\s?"
                rf"(?P<sym2>{cur}|EUR|USD|GBP)(?!\w))"), self._money),
            Rule("time", re.compile(r"(?<![\w.:,])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)"
                                    r"(?P<hw>\s?(?:Uhr|uur|heures)\b)?(?![\w:])"), self._time),
            Rule("number", re.compile(
                rf"(?<![\w.,%])(?P<pre>%)?(?P<neg>[-−](?=\d))?(?P<n>{num})(?P<pct>\s?%)?(?![\w])"),
                 self._number),
        )

    def _words(self, n: int) -> str:
        return str(num2words(n, lang=self.lang))

    def _value(self, s: str) -> Decimal:
        s = re.sub(self.group, "", s) if self.group != "," else s.replace(",", "")
        return Decimal(s.replace(self.decimal, "."))

    def _number_words(self, s: str) -> str:
        s = re.sub(self.group, "", s) if self.group != "," else s.replace(",", "")
        whole, _, frac = s.partition(self.decimal)
        words = self._words(int(whole))
        if frac:
            words += f" {self.point} " + " ".join(self._words(int(c)) for c in frac)
        return words

    def _number(self, m: re.Match[str], text: str) -> Pieces:
        try:
            if m.group("neg"):
                value = self._value(m.group("n"))
                if value != int(value):
                    return None  # num2words reads negative decimals inconsistently
                words = str(num2words(-int(value), lang=self.lang))
            else:
                words = self._number_words(m.group("n"))
        except (NotImplementedError, ValueError, OverflowError, InvalidOperation):
            return None
        if m.group("pct") or m.group("pre"):
            pct = self.percent
            words = f"{pct[1:]} {words}" if pct.startswith("^") else f"{words} {pct}"
        return words

    def _money(self, m: re.Match[str], text: str) -> Pieces:
        code = _CURRENCIES[m.group("sym") or m.group("sym2")]
        try:
            value = self._value(m.group("a") or m.group("b"))
            return str(num2words(value, lang=self.lang, to="currency", currency=code))
        except (NotImplementedError, ValueError, OverflowError, InvalidOperation, KeyError):
            return None

    def _time(self, m: re.Match[str], text: str) -> Pieces:
        h, mins = int(m.group("h")), int(m.group("m"))
        try:
            parts = [self._words(h)]
            if self.lang in _HOUR_WORD or m.group("hw"):
                parts.append(_HOUR_WORD.get(self.lang) or m.group("hw").strip())
            if mins:
                parts.append(self._words(mins))
        except (NotImplementedError, ValueError):
            return None
        return " ".join(parts)


_LANGUAGES: dict[str, _Language] = {}


def normalize_intl(text: str, lang: str) -> Normalized:
    if lang not in _WORDS or lang not in CONVERTER_CLASSES:
        return passthrough(text, lang)
    rules = _LANGUAGES.get(lang)
    if rules is None:
        rules = _LANGUAGES[lang] = _Language(lang)  # compiled once per language
    return apply_rules(text, rules.rules, lang)
