"""English telephony normalization rules: how an agent's written reply is read on a call.

Hand-written because no maintained library covers the telephony cases (phone numbers in
digit groups, codes read character by character, "$25.50" as dollars and cents) while
giving a character map back to the original; number words come from num2words
(``app.text.numbers``). The rules are tried at each position in the order of ``RULES``; the
leftmost match wins and ties go to the earlier rule, so specific forms (a URL, a phone
number, a date) come before the generic ones (a number, a symbol).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.text import numbers as nw
from app.text.normalize_core import Normalized, Pieces, Rule, apply_rules
from app.text.normalize_tables import (
    ABBREVIATIONS,
    CODE_KEYWORDS,
    CURRENCY_CODES,
    CURRENCY_SYMBOLS,
    INITIALISMS,
    MONTH_NUMBER,
    MONTHS,
    SCALES,
    SYMBOLS,
    TITLE_WORDS,
    TITLES,
    TLDS,
    UNITS,
    URL_SYMBOLS,
    WEEKDAYS,
    Currency,
)

NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_DASH = r"\s?(?:-|–|—|to)\s?"


def _alt(words: Iterable[str]) -> str:
    """A regex alternation, longest first (so "km/h" wins over "km")."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SYM = _alt(CURRENCY_SYMBOLS)
_CODES = _alt(CURRENCY_CODES)
_SCALE = rf"(?:\s?(?P<scale>{_alt(SCALES)})(?![\w]))?"
_UNIT = rf"(?:\s?(?P<unit>{_alt(UNITS)}))?"
_MON = _alt(MONTH_NUMBER)
_AP = r"[AaPp]\.?\s?[Mm]\.?(?![A-Za-z])"
_TIME1 = rf"(?P<h>\d{{1,2}})(?::(?P<m>\d{{2}})(?::(?P<s>\d{{2}}))?)?(?:\s?(?P<ap>{_AP}))?"
_TIME2 = rf"(?P<h2>\d{{1,2}})(?::(?P<m2>\d{{2}}))?(?:\s?(?P<ap2>{_AP}))?"


def _ends_sentence(text: str, end: int) -> bool:
    """A period at ``end - 1`` also ends the sentence (nothing or a capital follows)."""
    rest = text[end:].lstrip()
    return text[end - 1 : end] == "." and (not rest or rest[0].isupper())


def _spell(code: str) -> str:
    """A code character by character: "A7X-9" -> "A seven X dash nine"."""
    out = []
    for c in code:
        if c.isdigit():
            out.append(nw.DIGITS[int(c)])
        elif c.isalpha():
            out.append(c.upper())
        elif c in URL_SYMBOLS:
            out.append(URL_SYMBOLS[c])
    return " ".join(out)


def _spell_pieces(code: str) -> list[tuple[int, str]]:
    return [(1, _spell(c) or c) for c in code]


# --- handlers -----------------------------------------------------------------------


def _url_words(s: str) -> str:
    """Host, path, email local part: words kept, digits read one by one, symbols named."""
    out = []
    for tok in re.findall(r"[A-Za-z]+|\d+|.", s):
        if tok.isdigit():
            out.append(nw.digits(tok))
        elif tok.isalpha():
            out.append("w w w" if tok.lower() == "www" else tok)
        elif tok in URL_SYMBOLS:
            out.append(URL_SYMBOLS[tok])
    return " ".join(out)


def _url(m: re.Match[str], text: str) -> Pieces:
    scheme = m.group("scheme") or ""
    rest = m.group(0)[len(scheme) :].rstrip("/")
    tail = len(m.group(0)) - len(scheme) - len(rest)
    pieces = [(len(scheme) + len(rest), _url_words(rest))]
    if tail:
        pieces.append((tail, "slash"))
    return pieces


def _email(m: re.Match[str], text: str) -> Pieces:
    user, domain = m.group("user"), m.group("domain")
    return [(len(user), _url_words(user)), (1, "at"), (len(domain), _url_words(domain))]


def _phone(m: re.Match[str], text: str) -> Pieces:
    body = m.group("num")
    groups = re.findall(r"\d+", body)
    if len(groups) == 1:  # unseparated: the North American 1 / 3 / 3 / 4 grouping
        g = groups[0]
        groups = ([g[0]] if len(g) == 11 else []) + [g[-10:-7], g[-7:-4], g[-4:]]
    count = sum(len(g) for g in groups)
    if not 7 <= count <= 15:
        return None
    pieces: list[tuple[int, str]] = []
    pos = 0
    for i, g in enumerate(groups):
        at = body.index(g, pos)
        end = at + len(g)
        if i == len(groups) - 1:
            end = len(body)  # a closing bracket or nothing
        lead = body[pos:at]
        words = "eight hundred" if g == "800" and i <= 1 else nw.digits(g)
        prefix = "plus " if "+" in lead else ""
        pieces.append((end - pos, (", " if i else "") + prefix + words))
        pos = end
    ext = m.group("ext")
    if ext:
        rest = len(m.group(0)) - len(body)
        pieces.append((rest, ", extension " + nw.digits(ext)))
    return pieces


def _money(m: re.Match[str], text: str) -> Pieces:
    sym, code = m.group("sym"), m.group("code")
    cur: Currency = CURRENCY_SYMBOLS[sym] if sym else CURRENCY_CODES[code]
    neg = "minus " if m.group("neg") else ""
    a, b = m.group("num"), m.group("num2")
    scale = SCALES.get(m.group("scale") or "")
    if b:
        scale2 = SCALES.get(m.group("scale2") or "") or scale
        hi = _amount(b, cur, scale2)
        lo = nw.number(a) + (f" {scale}" if scale and scale != scale2 else "")
        return f"{neg}{lo} to {hi}"
    return neg + _amount(a, cur, scale)


def _amount(num: str, cur: Currency, scale: str | None) -> str:
    one, many, minor1, minor_n = cur
    if scale:
        return f"{nw.number(num)} {scale} {many}"
    whole, _, frac = num.replace(",", "").partition(".")
    if len(frac) > 2 or (frac and minor1 is None):
        return f"{nw.number(num)} {many}"
    units = int(whole or 0)
    cents = int((frac + "00")[:2]) if frac else 0
    unit_words = f"{nw.cardinal(units)} {one if units == 1 else many}"
    if not cents:
        return unit_words
    cent_words = f"{nw.cardinal(cents)} {minor1 if cents == 1 else minor_n}"
    return f"{unit_words} and {cent_words}" if units else cent_words


def _date_words(month: int, day: int, year: str | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    words = f"{MONTHS[month - 1]} {nw.ordinal(day)}"
    if year:
        y = int(year)
        if len(year) == 2:
            y += 2000
        words += ", " + nw.year(y)
    return words


def _date_iso(m: re.Match[str], text: str) -> Pieces:
    return _date_words(int(m.group("m")), int(m.group("d")), m.group("y"))


def _date_us(m: re.Match[str], text: str) -> Pieces:
    return _date_words(int(m.group("m")), int(m.group("d")), m.group("y"))


def _date_eu(m: re.Match[str], text: str) -> Pieces:
    return _date_words(int(m.group("m")), int(m.group("d")), m.group("y"))


def _date_month_day(m: re.Match[str], text: str) -> Pieces:
    mon = MONTH_NUMBER[m.group("mon")]
    return _date_words(mon, int(m.group("d")), m.group("y"))


def _date_day_month(m: re.Match[str], text: str) -> Pieces:
    mon = MONTH_NUMBER[m.group("mon")]
    day = int(m.group("d"))
    if not 1 <= day <= 31:
        return None
    the = "" if text[: m.start()].rstrip().lower().endswith("the") else "the "
    words = f"{the}{nw.ordinal(day)} of {MONTHS[mon - 1]}"
    if m.group("y"):
        words += ", " + nw.year(int(m.group("y")))
    return words


def _ap(s: str | None) -> str:
    return "" if not s else (" A M" if s[0] in "Aa" else " P M")


def _clock(h: int, mnt: str | None, sec: str | None, ap: str | None) -> str | None:
    m = int(mnt) if mnt else 0
    if h > 24 or m > 59 or (ap and not 1 <= h <= 12) or (sec and int(sec) > 59):
        return None
    if not ap and h == 0:
        h, ap = 12, "am"
    hours = nw.cardinal(h)
    if m == 0:
        if ap:
            words = hours
        elif h > 12 or (mnt and len(mnt) == 2 and h >= 13):
            words = f"{hours} hundred"
        else:
            words = f"{hours} o'clock"
    elif m < 10:
        words = f"{hours} oh {nw.cardinal(m)}"
    else:
        words = f"{hours} {nw.cardinal(m)}"
    if sec and int(sec):
        words += f" and {nw.cardinal(int(sec))} seconds"
    return words + _ap(ap)


def _time(m: re.Match[str], text: str) -> Pieces:
    if not (m.group("m") or m.group("ap")):
        return None
    first = _clock(int(m.group("h")), m.group("m"), m.group("s"), m.group("ap"))
    if first is None:
        return None
    if m.group("h2"):
        if not (m.group("m2") or m.group("ap2")):
            return None
        second = _clock(int(m.group("h2")), m.group("m2"), None, m.group("ap2"))
        if second is None:
            return None
        first = f"{first} to {second}"
    dot = m.group(0).endswith(".") and _ends_sentence(text, m.end())
    return first + ("." if dot else "")


def _decade(m: re.Match[str], text: str) -> Pieces:
    if m.group("y"):
        return nw.plural_ends(nw.year(int(m.group("y"))))
    return nw.plural_ends(nw.cardinal(int(m.group("d"))))


def _ordinal(m: re.Match[str], text: str) -> Pieces:
    return nw.ordinal(int(m.group("n").replace(",", "")))


def _fraction(m: re.Match[str], text: str) -> Pieces:
    a, b = int(m.group("a")), int(m.group("b"))
    if (a, b) == (24, 7):
        return "twenty-four seven"
    if a == b:
        return f"{nw.cardinal(a)}-{nw.cardinal(b)}"
    if 0 < a < b <= 10:
        den = "half" if b == 2 else ("quarter" if b == 4 else nw.ordinal(b))
        return f"{nw.cardinal(a)} {den}" + ("s" if a > 1 else "")
    return _date_words(a, b, None) or f"{nw.cardinal(a)} slash {nw.cardinal(b)}"


def _quantity(m: re.Match[str], text: str) -> Pieces:
    a, b, unit = m.group("a"), m.group("b"), m.group("unit")
    sign = {"-": "minus ", "−": "minus ", "+": "plus "}.get(m.group("neg") or "", "")
    plain = "," not in a and "." not in a
    if b is None and unit is None and plain:
        n = int(a)
        if len(a) >= 7 or (len(a) > 1 and a[0] == "0"):
            return sign + nw.digits(a)  # an identifier, not an amount
        if nw.is_year(n) and not sign and len(a) == 4:
            return nw.year(n)
    words = sign + _value(a, b)
    if unit:
        one, many = UNITS[unit]
        last = b or a
        words += " " + (one if nw.number_value(last) == 1 and not b else many)
    return words


def _value(a: str, b: str | None) -> str:
    if b is None:
        return nw.number(a)
    years = all(len(x) == 4 and x.isdigit() and nw.is_year(int(x)) for x in (a, b))
    if years:
        return f"{nw.year(int(a))} to {nw.year(int(b))}"
    return f"{nw.number(a)} to {nw.number(b)}"


_PER = {"mo": "month", "yr": "year", "wk": "week", "hr": "hour", "min": "minute"}


def _per(m: re.Match[str], text: str) -> Pieces:
    unit = m.group("u")
    return [(1, "per"), (len(unit), _PER.get(unit, unit))]


def _ratio(m: re.Match[str], text: str) -> Pieces:
    return f"{nw.cardinal(int(m.group('a')))} to {nw.cardinal(int(m.group('b')))}"


def _keyword_code(m: re.Match[str], text: str) -> Pieces:
    code = m.group("code")
    if code.isdigit() and len(code) < 4:
        return None
    head = len(m.group(0)) - len(code)
    said = re.sub(r"#|\b[Nn]o\.", "number", m.group(0)[:head])
    return [(head, said), *_spell_pieces(code)]


def _hash_code(m: re.Match[str], text: str) -> Pieces:
    code = m.group("code")
    if code.isalpha():
        return [(1, "hashtag"), (len(code), code)]
    if code.isdigit() and len(code) <= 3:
        return [(1, "number"), (len(code), nw.cardinal(int(code)))]
    return [(1, "number"), *_spell_pieces(code)]


def _mixed_code(m: re.Match[str], text: str) -> Pieces:
    word = m.group(0)
    parts = re.findall(r"[A-Za-z]{4,}|[A-Za-z]{1,3}|\d+|-", word)
    if len(parts) == 3 and parts[0].isalpha() and len(parts[0]) >= 4 and parts[1] == "-":
        return f"{parts[0]} {nw.cardinal(int(parts[2]))}"  # COVID-19
    return _spell_pieces(word)


def _abbreviation(m: re.Match[str], text: str) -> Pieces:
    word = m.group(0)
    if word == "No.":
        return "number" if re.match(r"\s*\d", text[m.end() :]) else None
    if word in TITLES:
        title, place = TITLES[word]
        after = text[m.end() :].lstrip()
        before = text[: m.start()].split()[-2:]
        address = any(any(c.isdigit() for c in w) for w in before)
        words = title if after[:1].isupper() and not address else place
    else:
        words = ABBREVIATIONS[word]
    if word.endswith(".") and words not in TITLE_WORDS and _ends_sentence(text, m.end()):
        words += "."
    return words


def _weekday(m: re.Match[str], text: str) -> Pieces:
    words = WEEKDAYS[m.group("day")]
    return words + ("." if _ends_sentence(text, m.end()) else "")


def _month_abbr(m: re.Match[str], text: str) -> Pieces:
    words = MONTHS[MONTH_NUMBER[m.group("mon")] - 1]
    return words + ("." if _ends_sentence(text, m.end()) else "")


def _initialism(m: re.Match[str], text: str) -> Pieces:
    word = m.group(0)
    return _spell_pieces(word) if word in INITIALISMS else None


def _letters_and(m: re.Match[str], text: str) -> Pieces:
    a, b = m.group("a"), m.group("b")
    return [(len(a), " ".join(a)), (1, "and"), (len(b), " ".join(b))]


def _symbol(m: re.Match[str], text: str) -> Pieces:
    sym = m.group(0)
    if sym == "~" and not re.match(r"\s?\d", text[m.end() :]):
        return "tilde"
    if sym == "/" and text[max(0, m.start() - 3) : m.start()] == "and":
        return " "  # and/or
    return SYMBOLS[sym]


_TLD = _alt(TLDS)
RULES: tuple[Rule, ...] = (
    Rule("url", re.compile(
        r"(?<![\w@.])(?P<scheme>https?://)?(?:www\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
        rf"\.(?:{_TLD})\b(?:/[^\s]*[^\s.,;:!?)\]'\"]|/)?"
    ), _url),
    Rule("email", re.compile(
        r"(?P<user>[A-Za-z0-9._%+-]*[A-Za-z0-9])@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
        r"\.[A-Za-z]{2,})\b"
    ), _email),
    Rule("phone", re.compile(
        r"(?P<num>(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{1,4}){1,4}"
        r"|(?<![\d-])(?:1[ .-])?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}"
        r"|(?<![\d-])\d{3}-\d{4}|(?<![\w.,+-])1?\d{10}(?![\w.,]\d))(?![\d-]))"
        r"(?:,?\s?(?:x|ext\.?|extension)\s?(?P<ext>\d{1,5}))?"
    ), _phone),
    Rule("money", re.compile(
        rf"(?<![\w.])(?P<neg>[-−])?(?:(?P<sym>{_SYM})|(?P<code>{_CODES})\s?)(?P<num>{NUM})"
        + _SCALE
        + rf"(?:\s?[-–]\s?(?:{_SYM})?(?P<num2>{NUM})(?:\s?(?P<scale2>{_alt(SCALES)})(?!\w))?)?"
    ), _money),
    Rule("money_code_after", re.compile(
        rf"(?<![\w.])(?P<neg>-)?(?P<num>{NUM}){_SCALE}\s?(?P<code>{_CODES})\b"
        r"(?P<sym>)?(?P<num2>)?(?P<scale2>)?"
    ), _money),
    Rule("date_iso", re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b"), _date_iso),
    Rule("date_us", re.compile(
        r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}|\d{2})\b"), _date_us),
    Rule("date_eu", re.compile(r"\b(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})\b"), _date_eu),
    Rule("date_month_day", re.compile(
        rf"\b(?P<mon>{_MON})\.?\s(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s(?P<y>\d{{4}})\b)?"
    ), _date_month_day),
    Rule("date_day_month", re.compile(
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?(?P<mon>{_MON})\b"
        r"(?:,?\s(?P<y>\d{4})\b)?"
    ), _date_day_month),
    Rule("time", re.compile(rf"(?<![\w.:]){_TIME1}(?:{_DASH}{_TIME2})?(?![\w:])"), _time),
    Rule("ratio", re.compile(r"(?<![\w.:])(?P<a>\d{1,3}):(?P<b>\d{1,3})(?![\w:])"), _ratio),
    Rule("decade", re.compile(r"(?:\b(?P<y>1\d[0-9]0|20[0-9]0)|(?:['’]|\b)(?P<d>[1-9]0))'?s\b"),
         _decade),
    Rule("ordinal", re.compile(r"\b(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)\b"), _ordinal),
    Rule("fraction", re.compile(r"(?<![\w/])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![\w/])"), _fraction),
    Rule("keyword_code", re.compile(
        rf"(?i:\b(?:{_alt(CODE_KEYWORDS)})\b)(?:\s+(?i:number|no\.|num|code|id|#))?"
        r"\s*[:#]?\s*(?P<code>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)\b"
    ), _keyword_code),
    Rule("hash_code", re.compile(r"#(?P<code>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)\b"), _hash_code),
    Rule("letters_and", re.compile(r"\b(?P<a>[A-Z]{1,3})&(?P<b>[A-Z]{1,3})\b"), _letters_and),
    Rule("quantity", re.compile(
        rf"(?<![\w.])(?P<neg>[-−+](?=\d|\.\d))?(?P<a>{NUM})(?:\s?[-–—]\s?(?P<b>{NUM}))?"
        rf"{_UNIT}(?![\w°])"
    ), _quantity),
    Rule("mixed_code", re.compile(
        r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b"
    ), _mixed_code),
    Rule("abbreviation", re.compile(
        rf"(?<![\w.])(?:{_alt([*ABBREVIATIONS, *TITLES, 'No.'])})(?![\w])"
    ), _abbreviation),
    Rule("weekday", re.compile(rf"\b(?P<day>{_alt(WEEKDAYS)})\.(?!\w)"), _weekday),
    Rule("month_abbr", re.compile(rf"\b(?P<mon>{_alt(k for k in MONTH_NUMBER if len(k) <= 4)})\."
                                  r"(?!\w)"), _month_abbr),
    Rule("initialism", re.compile(r"\b[A-Z]{2,5}\b"), _initialism),
    Rule("per", re.compile(r"(?<=[\d%])/(?P<u>[A-Za-z]+)\b"), _per),
    Rule("symbol", re.compile(r"[&@+=/~×°%#^]"), _symbol),
)


def normalize_en(text: str) -> Normalized:
    return apply_rules(text, RULES, "en")
