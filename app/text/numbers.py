"""Number words for English, in the style a US phone agent reads them, over num2words.

num2words (pure Python, ~1.5 MB, 50+ languages) writes British English ("one hundred and
one", "one thousand, two hundred"); callers in the US hear "one hundred one", so the "and"
and the commas are taken out here. Chosen over inflect (English only, no year reading) and
NeMo text processing (700+ MB with pynini, 90 s grammar build, ~300 ms per clause): see
``benchmarks/number_words.py`` and the README.
"""

from __future__ import annotations

import functools

from num2words import num2words

from app.text.normalize_tables import DIGITS


def _us(words: str) -> str:
    return words.replace(",", "").replace(" and ", " ")


# Beyond this num2words has no scale words; such a number is read digit by digit.
_LARGEST = 10**15


@functools.lru_cache(maxsize=4096)
def cardinal(n: int) -> str:
    if abs(n) >= _LARGEST:
        return ("minus " if n < 0 else "") + digits(str(abs(n)))
    return _us(num2words(n, lang="en"))


@functools.lru_cache(maxsize=1024)
def ordinal(n: int) -> str:
    if n >= _LARGEST:
        return digits(str(n))
    return _us(num2words(n, lang="en", to="ordinal"))


def digits(s: str) -> str:
    """Each digit as a word: "0100" -> "zero one zero zero"."""
    return " ".join(DIGITS[int(c)] for c in s if c.isdigit())


def is_year(n: int) -> bool:
    return 1100 <= n <= 2099


@functools.lru_cache(maxsize=1024)
def year(n: int) -> str:
    """1999 -> nineteen ninety-nine, 1905 -> nineteen oh five, 2005 -> two thousand five."""
    if 2000 <= n <= 2009 or not is_year(n):
        return cardinal(n)
    return _us(num2words(n, lang="en", to="year")).replace("oh-", "oh ")


def number(s: str) -> str:
    """A written number: "1,234.5" -> one thousand two hundred thirty-four point five."""
    s = s.replace(",", "")
    whole, _, frac = s.partition(".")
    words = cardinal(int(whole)) if whole else ""
    if frac:
        words = (words + " point " if words else "point ") + digits(frac)
    return words


def number_value(s: str) -> float:
    return float(s.replace(",", "")) if s.strip(".,") else 0.0


def plural_ends(words: str) -> str:
    """The plural of a spoken number: "nineteen ninety" -> "nineteen nineties"."""
    head, _, last = words.rpartition(" ")
    if last.endswith("ty"):
        last = last[:-1] + "ies"
    elif last.endswith("x"):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last
