"""Word tables for English telephony normalization (what each written form is read as).

Kept apart from the rules so that adding a unit, a currency or an abbreviation is a one-line
change that needs no regular-expression work.
"""

from __future__ import annotations

from typing import Final

DIGITS: Final = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

MONTHS: Final = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
# Written month -> month number: full names and the usual abbreviations.
MONTH_NUMBER: Final = {
    **{m: i + 1 for i, m in enumerate(MONTHS)},
    **{m[:3]: i + 1 for i, m in enumerate(MONTHS)},
    "Sept": 9,
}
WEEKDAYS: Final = {
    "Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday",
    "Thu": "Thursday", "Thur": "Thursday", "Thurs": "Thursday", "Fri": "Friday",
    "Sat": "Saturday", "Sun": "Sunday",
}

# name: (singular, plural, minor singular, minor plural); minor None = no minor unit read.
Currency = tuple[str, str, str | None, str | None]
CURRENCY_SYMBOLS: Final[dict[str, Currency]] = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
    "₩": ("won", "won", None, None),
}
CURRENCY_CODES: Final[dict[str, Currency]] = {
    "USD": ("US dollar", "US dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("British pound", "British pounds", "penny", "pence"),
    "JPY": ("yen", "yen", None, None),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
    "CHF": ("Swiss franc", "Swiss francs", "centime", "centimes"),
    "MXN": ("Mexican peso", "Mexican pesos", "centavo", "centavos"),
    "CNY": ("yuan", "yuan", None, None),
}
SCALES: Final = {
    "k": "thousand", "K": "thousand", "thousand": "thousand",
    "m": "million", "M": "million", "mm": "million", "MM": "million", "million": "million",
    "b": "billion", "B": "billion", "bn": "billion", "billion": "billion",
    "trillion": "trillion", "T": "trillion",
}

# Unit after a number: (singular, plural). Case matters ("m" meters, "M" is a scale).
UNITS: Final[dict[str, tuple[str, str]]] = {
    "%": ("percent", "percent"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "° C": ("degree Celsius", "degrees Celsius"),
    "° F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "mL": ("milliliter", "milliliters"),
    "ml": ("milliliter", "milliliters"),
    "L": ("liter", "liters"),
    "gal": ("gallon", "gallons"),
    "TB": ("terabyte", "terabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "Gbps": ("gigabit per second", "gigabits per second"),
    "Mbps": ("megabit per second", "megabits per second"),
    "GHz": ("gigahertz", "gigahertz"),
    "MHz": ("megahertz", "megahertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "mAh": ("milliamp hour", "milliamp hours"),
    "hrs": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "mins": ("minute", "minutes"),
    "min": ("minute", "minutes"),
    "secs": ("second", "seconds"),
    "sec": ("second", "seconds"),
    "ms": ("millisecond", "milliseconds"),
    "sq ft": ("square foot", "square feet"),
    "x": ("times", "times"),
    "+": ("plus", "plus"),
}

# Abbreviations read as words (matched case-sensitively, as written, period included).
ABBREVIATIONS: Final = {
    "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor",
    "Jr.": "Junior", "Sr.": "Senior", "Capt.": "Captain", "Gen.": "General",
    "Sen.": "Senator", "Rep.": "Representative", "Gov.": "Governor", "Lt.": "Lieutenant",
    "Sgt.": "Sergeant", "Rev.": "Reverend", "Hon.": "Honorable", "Mt.": "Mount",
    "Ft.": "Fort", "Ave.": "Avenue", "Blvd.": "Boulevard", "Rd.": "Road", "Ln.": "Lane",
    "Ct.": "Court", "Hwy.": "Highway", "Pkwy.": "Parkway", "Apt.": "Apartment",
    "Ste.": "Suite", "Bldg.": "Building", "Inc.": "Incorporated", "Ltd.": "Limited",
    "Corp.": "Corporation", "Co.": "Company", "Dept.": "Department", "Univ.": "University",
    "Assn.": "Association", "Intl.": "International", "Natl.": "National",
    "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "vs.": "versus",
    "vs": "versus", "approx.": "approximately", "est.": "estimated", "a.k.a.": "also known as",
    "ext.": "extension", "Ext.": "extension", "Tel.": "telephone", "tel.": "telephone",
    "a.m.": "A M", "p.m.": "P M", "A.M.": "A M", "P.M.": "P M",
    "U.S.": "U S", "U.S.A.": "U S A", "U.K.": "U K", "E.U.": "E U", "D.C.": "D C",
    "w/": "with", "w/o": "without", "OK": "okay", "Ok": "okay",
}
# Titles: read as the title only before a name; the alternatives are for addresses.
TITLES: Final = {"Dr.": ("Doctor", "Drive"), "St.": ("Saint", "Street")}
# Abbreviations that are titles: their period never ends a sentence.
TITLE_WORDS: Final = frozenset(
    {"Mister", "Missus", "Miz", "Professor", "Captain", "General", "Senator",
     "Representative", "Governor", "Lieutenant", "Sergeant", "Reverend", "Honorable",
     "Mount", "Fort", "Doctor", "Saint"}
)
# Initialisms read letter by letter (words like NASA or PIN are left to the engine).
INITIALISMS: Final = frozenset(
    "ASAP FAQ ID ETA ATM SMS PDF URL CEO CFO CTO COO HR TV PC USA UK EU IRS FBI DMV ICU "
    "DNA API SSN DOB VIP RSVP HVAC ACH APR IRA LLC PST EST CST MST PDT EDT CDT MDT UTC GMT "
    "TBD FYI ER".split()
)

# Top-level domains that make "word.tld" a domain name.
TLDS: Final = (
    "com", "org", "net", "io", "ai", "co", "us", "uk", "gov", "edu", "dev", "app", "info",
    "biz", "me", "tv", "ca", "de", "fr", "ly", "gg", "xyz", "health", "shop",
)

# Symbols read as words where they stand between or beside words.
SYMBOLS: Final = {
    "&": "and", "@": "at", "+": "plus", "=": "equals", "/": "slash", "~": "about",
    "×": "times", "°": "degrees", "%": "percent", "#": "number", "^": "caret",
}
# In emails, URLs and domains.
URL_SYMBOLS: Final = {
    ".": "dot", "/": "slash", "-": "dash", "_": "underscore", "@": "at", ":": "colon",
    "?": "question mark", "=": "equals", "&": "and", "#": "hash", "~": "tilde",
    "%": "percent", "+": "plus",
}

# Words after which a number is an identifier, read character by character.
CODE_KEYWORDS: Final = (
    "order", "confirmation", "reference", "ref", "tracking", "booking", "ticket", "invoice",
    "case", "claim", "policy", "account", "acct", "member", "membership", "customer",
    "flight", "gate", "seat", "zip", "postal", "promo", "coupon", "pin", "serial", "model",
    "part", "transaction", "record", "reservation", "voucher", "routing", "ending in",
    "ending with",
)
