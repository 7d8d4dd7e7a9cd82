"""Text normalization: written forms -> what the caller hears, and the character map.

The table is the specification of the English rules (every category of the issue); the
property tests check the map: every original character maps to exactly one spoken span,
the spans tile both texts in order, and untouched text is kept as it is.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.text.alignment import estimate_char_timings, map_timings_to_original
from app.text.normalize import normalize
from app.text.normalize_intl import supported_languages

# (category, written, spoken)
TABLE = [
    # money with symbols and codes
    ("money", "$25.50", "twenty-five dollars and fifty cents"),
    ("money", "$1", "one dollar"),
    ("money", "$1.00", "one dollar"),
    ("money", "$0.99", "ninety-nine cents"),
    ("money", "$0.01", "one cent"),
    ("money", "$1,200", "one thousand two hundred dollars"),
    ("money", "$3.5 million", "three point five million dollars"),
    ("money", "$5k", "five thousand dollars"),
    ("money", "$1.5M", "one point five million dollars"),
    ("money", "$2 billion", "two billion dollars"),
    ("money", "€10", "ten euros"),
    ("money", "€10.05", "ten euros and five cents"),
    ("money", "£5.20", "five pounds and twenty pence"),
    ("money", "£1", "one pound"),
    ("money", "¥500", "five hundred yen"),
    ("money", "₹100", "one hundred rupees"),
    ("money", "USD 100", "one hundred US dollars"),
    ("money", "100 USD", "one hundred US dollars"),
    ("money", "EUR 20", "twenty euros"),
    ("money", "CAD 1", "one Canadian dollar"),
    ("money", "-$5", "minus five dollars"),
    ("money", "$10-$20", "ten to twenty dollars"),
    ("money", "$10-20", "ten to twenty dollars"),
    ("money", "It costs $4.99 a month.", "It costs four dollars and ninety-nine cents a month."),
    ("money", "$19.999", "nineteen point nine nine nine dollars"),
    # numbers with separators and decimals
    ("number", "7", "seven"),
    ("number", "42", "forty-two"),
    ("number", "101", "one hundred one"),
    ("number", "1,000", "one thousand"),
    ("number", "1,234", "one thousand two hundred thirty-four"),
    ("number", "1,000,000", "one million"),
    ("number", "1,234,567",
     "one million two hundred thirty-four thousand five hundred sixty-seven"),
    ("number", "3.14", "three point one four"),
    ("number", "0.5", "zero point five"),
    ("number", ".5", "point five"),
    ("number", "-7", "minus seven"),
    ("number", "+5", "plus five"),
    ("number", "12345", "twelve thousand three hundred forty-five"),
    ("number", "007", "zero zero seven"),
    ("number", "1234567", "one two three four five six seven"),
    ("number", "We have 3 options.", "We have three options."),
    ("number", "about 2.5 hours", "about two point five hours"),
    # percentages
    ("percent", "45%", "forty-five percent"),
    ("percent", "3.5%", "three point five percent"),
    ("percent", "100 %", "one hundred percent"),
    ("percent", "10-20%", "ten to twenty percent"),
    ("percent", "-2%", "minus two percent"),
    ("percent", "1%", "one percent"),
    # times, 12 and 24 hour, a.m./p.m.
    ("time", "3:30 PM", "three thirty P M"),
    ("time", "3:30 pm", "three thirty P M"),
    ("time", "3:05", "three oh five"),
    ("time", "3:00 PM", "three P M"),
    ("time", "3pm", "three P M"),
    ("time", "10 a.m. tomorrow", "ten A M tomorrow"),
    ("time", "at 5 p.m.", "at five P M."),
    ("time", "11:45 AM", "eleven forty-five A M"),
    ("time", "12:00", "twelve o'clock"),
    ("time", "9:00", "nine o'clock"),
    ("time", "14:45", "fourteen forty-five"),
    ("time", "14:00", "fourteen hundred"),
    ("time", "00:30", "twelve thirty A M"),
    ("time", "23:59", "twenty-three fifty-nine"),
    ("time", "10:15:30", "ten fifteen and thirty seconds"),
    ("time", "9am-5pm", "nine A M to five P M"),
    ("time", "9:00 AM - 5:30 PM", "nine A M to five thirty P M"),
    ("time", "3-5 p.m.", "three to five P M."),
    # dates and months
    ("date", "Nov. 3rd", "November third"),
    ("date", "November 3, 2024", "November third, twenty twenty-four"),
    ("date", "Jan 5", "January fifth"),
    ("date", "Sept. 21", "September twenty-first"),
    ("date", "Dec 25th, 2025", "December twenty-fifth, twenty twenty-five"),
    ("date", "3 November 2024", "the third of November, twenty twenty-four"),
    ("date", "on the 3rd of May", "on the third of May"),
    ("date", "11/03/2024", "November third, twenty twenty-four"),
    ("date", "1/2/24", "January second, twenty twenty-four"),
    ("date", "2024-11-03", "November third, twenty twenty-four"),
    ("date", "03.11.2024", "November third, twenty twenty-four"),
    ("date", "12/25", "December twenty-fifth"),
    ("date", "due Nov.", "due November."),
    ("date", "Mon. and Fri.", "Monday and Friday."),
    ("date", "See you Tue. Thanks!", "See you Tuesday. Thanks!"),
    ("date", "in March", "in March"),
    # ordinals
    ("ordinal", "1st", "first"),
    ("ordinal", "2nd", "second"),
    ("ordinal", "3rd", "third"),
    ("ordinal", "4th", "fourth"),
    ("ordinal", "11th", "eleventh"),
    ("ordinal", "21st", "twenty-first"),
    ("ordinal", "22nd", "twenty-second"),
    ("ordinal", "101st", "one hundred first"),
    ("ordinal", "the 3rd floor", "the third floor"),
    # years and decades
    ("year", "1999", "nineteen ninety-nine"),
    ("year", "in 2024", "in twenty twenty-four"),
    ("year", "2005", "two thousand five"),
    ("year", "2010", "twenty ten"),
    ("year", "1905", "nineteen oh five"),
    ("year", "1900", "nineteen hundred"),
    ("year", "1990s", "nineteen nineties"),
    ("year", "the '90s", "the nineties"),
    ("year", "the 80s", "the eighties"),
    ("year", "2000s", "two thousands"),
    ("year", "1900s", "nineteen hundreds"),
    ("year", "1990-1995", "nineteen ninety to nineteen ninety-five"),
    # phone numbers in digit groups
    ("phone", "+1 (415) 555-0100", "plus one, four one five, five five five, zero one zero zero"),
    ("phone", "(415) 555-0100", "four one five, five five five, zero one zero zero"),
    ("phone", "415-555-0100", "four one five, five five five, zero one zero zero"),
    ("phone", "415.555.0100", "four one five, five five five, zero one zero zero"),
    ("phone", "555-0100", "five five five, zero one zero zero"),
    ("phone", "1-800-555-0199", "one, eight hundred, five five five, zero one nine nine"),
    ("phone", "+44 20 7946 0958",
     "plus four four, two zero, seven nine four six, zero nine five eight"),
    ("phone", "555-0100 ext. 42", "five five five, zero one zero zero, extension four two"),
    ("phone", "Call 415-555-0100.", "Call four one five, five five five, zero one zero zero."),
    ("phone", "4155550100", "four one five, five five five, zero one zero zero"),
    ("phone", "14155550100", "one, four one five, five five five, zero one zero zero"),
    # numeric ranges
    ("range", "3-5", "three to five"),
    ("range", "3–5 days", "three to five days"),
    ("range", "10 - 20", "ten to twenty"),
    ("range", "pages 7-9", "pages seven to nine"),
    ("range", "1.5-2.5", "one point five to two point five"),
    # units and temperatures
    ("unit", "5 km", "five kilometers"),
    ("unit", "1 km", "one kilometer"),
    ("unit", "5kg", "five kilograms"),
    ("unit", "10 lbs", "ten pounds"),
    ("unit", "1 lb", "one pound"),
    ("unit", "12 oz", "twelve ounces"),
    ("unit", "6 ft", "six feet"),
    ("unit", "65 mph", "sixty-five miles per hour"),
    ("unit", "100 km/h", "one hundred kilometers per hour"),
    ("unit", "5 GB", "five gigabytes"),
    ("unit", "2.5 L", "two point five liters"),
    ("unit", "30 min", "thirty minutes"),
    ("unit", "2 hrs", "two hours"),
    ("unit", "60 Hz", "sixty hertz"),
    ("unit", "3x", "three times"),
    ("unit", "18+", "eighteen plus"),
    ("unit", "50 m", "fifty meters"),
    ("unit", "5-10 km", "five to ten kilometers"),
    ("temperature", "72°F", "seventy-two degrees Fahrenheit"),
    ("temperature", "-5°C", "minus five degrees Celsius"),
    ("temperature", "98.6 °F", "ninety-eight point six degrees Fahrenheit"),
    ("temperature", "1°C", "one degree Celsius"),
    ("temperature", "20° C", "twenty degrees Celsius"),
    ("temperature", "90°", "ninety degrees"),
    # emails, URLs, domains
    ("email", "john.doe@example.com", "john dot doe at example dot com"),
    ("email", "support@acme.co.uk", "support at acme dot co dot uk"),
    ("email", "jane_smith99@mail.org", "jane underscore smith nine nine at mail dot org"),
    ("url", "https://www.example.com/help", "w w w dot example dot com slash help"),
    ("url", "www.example.com", "w w w dot example dot com"),
    ("url", "http://acme.io/a-b", "acme dot io slash a dash b"),
    ("url", "Visit example.com/pricing.", "Visit example dot com slash pricing."),
    ("domain", "google.com", "google dot com"),
    ("domain", "Go to acme.io.", "Go to acme dot io."),
    ("domain", "my-site.net", "my dash site dot net"),
    # abbreviations and titles
    ("abbreviation", "Dr. Smith", "Doctor Smith"),
    ("abbreviation", "Mr. Jones", "Mister Jones"),
    ("abbreviation", "Mrs. Lee", "Missus Lee"),
    ("abbreviation", "Ms. Park", "Miz Park"),
    ("abbreviation", "Prof. Xavier", "Professor Xavier"),
    ("abbreviation", "St. Louis", "Saint Louis"),
    ("abbreviation", "123 Main St.", "one hundred twenty-three Main Street."),
    ("abbreviation", "42 Oak Dr. is closed", "forty-two Oak Drive is closed"),
    ("abbreviation", "Martin Luther King Jr. was", "Martin Luther King Junior was"),
    ("abbreviation", "Acme Inc.", "Acme Incorporated."),
    ("abbreviation", "Apt. 4", "Apartment four"),
    ("abbreviation", "e.g. this", "for example this"),
    ("abbreviation", "i.e. that", "that is that"),
    ("abbreviation", "apples, pears, etc.", "apples, pears, et cetera."),
    ("abbreviation", "cats vs. dogs", "cats versus dogs"),
    ("abbreviation", "No. 5", "number five"),
    ("abbreviation", "the U.S. team", "the U S team"),
    ("abbreviation", "ASAP", "A S A P"),
    ("abbreviation", "your ID", "your I D"),
    ("abbreviation", "3 PM EST", "three P M E S T"),
    ("abbreviation", "OK, thanks", "okay, thanks"),
    ("abbreviation", "NASA", "NASA"),
    ("abbreviation", "w/ cheese", "with cheese"),
    # symbols
    ("symbol", "salt & pepper", "salt and pepper"),
    ("symbol", "AT&T", "A T and T"),
    ("symbol", "Q&A", "Q and A"),
    ("symbol", "me @ home", "me at home"),
    ("symbol", "#1", "number one"),
    ("symbol", "#support", "hashtag support"),
    ("symbol", "2 + 2 = 4", "two plus two equals four"),
    ("symbol", "and/or", "and or"),
    ("symbol", "24/7", "twenty-four seven"),
    ("symbol", "1/2", "one half"),
    ("symbol", "3/4", "three quarters"),
    ("symbol", "2/3", "two thirds"),
    ("symbol", "50/50", "fifty-fifty"),
    ("symbol", "~5 minutes", "about five minutes"),
    ("symbol", "$49/month", "forty-nine dollars per month"),
    ("symbol", "$5/mo", "five dollars per month"),
    ("symbol", "a 3:1 ratio", "a three to one ratio"),
    # codes read character by character
    ("code", "Order #A7X9K2", "Order number A seven X nine K two"),
    ("code", "order number 12345", "order number one two three four five"),
    ("code", "confirmation code XJ4-9K", "confirmation code X J four dash nine K"),
    ("code", "Flight UA123", "Flight U A one two three"),
    ("code", "flight 1234", "flight one two three four"),
    ("code", "gate B22", "gate B two two"),
    ("code", "tracking 1Z999AA1", "tracking one Z nine nine nine A A one"),
    ("code", "ZIP code 94105", "ZIP code nine four one zero five"),
    ("code", "account ending in 4321", "account ending in four three two one"),
    ("code", "#12345", "number one two three four five"),
    ("code", "model 3", "model three"),
    ("code", "COVID-19", "COVID nineteen"),
    ("code", "an MP3 file", "an M P three file"),
    # whole sentences, several categories at once
    ("sentence", "Your total is $25.50, due by Nov. 3rd.",
     "Your total is twenty-five dollars and fifty cents, due by November third."),
    ("sentence", "Dr. Smith will see you on Jan. 5, 2025 at 10:15 a.m.",
     "Doctor Smith will see you on January fifth, twenty twenty-five at ten fifteen A M."),
    ("sentence", "It's 72°F today, with a 40% chance of rain.",
     "It's seventy-two degrees Fahrenheit today, with a forty percent chance of rain."),
    ("sentence", "Okay.", "Okay."),
    ("sentence", "Hello, how can I help you today?", "Hello, how can I help you today?"),
]


def test_table_is_large_and_covers_every_category():
    assert len(TABLE) >= 150
    categories = {c for c, _, _ in TABLE}
    assert {"money", "number", "percent", "time", "date", "ordinal", "year", "phone", "range",
            "unit", "temperature", "email", "url", "domain", "abbreviation", "symbol",
            "code"} <= categories


@pytest.mark.parametrize(("category", "written", "spoken"), TABLE,
                         ids=[f"{c}:{w}" for c, w, _ in TABLE])
def test_written_form_is_read_as_expected(category, written, spoken):
    assert normalize(written).spoken == spoken


def _check_map(text: str, language: str) -> None:
    n = normalize(text, language)
    assert n.original == text
    # The spans tile the original and the spoken text, in order, without gaps or overlaps.
    pos = out = 0
    for s in n.spans:
        assert s.start == pos and s.spoken_start == out
        assert s.end > s.start
        if s.identity:
            assert text[s.start : s.end] == n.spoken[s.spoken_start : s.spoken_end]
        pos, out = s.end, s.spoken_end
    assert pos == len(text) and out == len(n.spoken)
    # Every original character maps to one spoken span, in order (none dropped, none twice).
    char_map = n.char_map()
    assert len(char_map) == len(text)
    for (a, b), (c, _) in zip(char_map, char_map[1:], strict=False):
        assert 0 <= a <= b <= len(n.spoken) and c >= a


_ALPHABET = st.sampled_from(
    list("abcXYZ0123456789 .,:;-–/+#@&%$€£°'\"()!?~=_") + ["Dr.", "St. ", "p.m.", "km", "°F",
                                                          "USD", ".com", "www.", "1st", "Nov "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_no_character_is_dropped_or_duplicated_english(text):
    _check_map(text, "en")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["en", "de", "fr", "tr", "ja", "zh", "sw"]))
def test_no_character_is_dropped_or_duplicated_any_text(text, language):
    _check_map(text, language)


def test_map_points_each_character_at_the_words_it_became():
    n = normalize("Pay $5 now")
    cm = n.char_map()
    assert n.spoken == "Pay five dollars now"
    for i in range(4, 6):  # "$5"
        a, b = cm[i]
        assert n.spoken[a:b] == "five dollars"
    assert n.spoken[slice(*cm[0])] == "P"
    assert n.original_span(4, 16) == (4, 6)


def test_code_characters_map_one_by_one():
    n = normalize("Order #A7")
    cm = n.char_map()
    assert [n.spoken[a:b].strip() for a, b in cm[-2:]] == ["A", "seven"]


@pytest.mark.parametrize(
    ("language", "written", "spoken"),
    [
        ("de", "Das kostet 1.234,50 €.", "Das kostet eintausendzweihundertvierunddreißig Euro "
         "und fünfzig Cent."),
        ("de", "Um 14:30 Uhr", "Um vierzehn Uhr dreißig"),
        ("de", "15 %", "fünfzehn Prozent"),
        ("fr", "12,50 € à 14:30", "douze euros et cinquante centimes à quatorze heures trente"),
        ("fr", "1 234 habitants", "mille deux cent trente-quatre habitants"),
        ("es", "3,5 %", "tres coma cinco por ciento"),
        ("it", "-3", "meno tre"),
        ("tr", "%15 ve 15%", "yüzde onbeş ve yüzde onbeş"),
        ("ja", "3.5", "三 点 五"),
    ],
)
def test_other_languages_through_num2words(language, written, spoken):
    n = normalize(written, language)
    assert n.supported
    assert n.spoken == spoken


@pytest.mark.parametrize("language", ["zh", "el", "hi", "ms", "sw", "xx"])
def test_languages_without_rules_pass_through_and_say_so(language):
    n = normalize("Price 25", language)
    assert n.spoken == "Price 25"
    assert not n.supported


def test_supported_languages_cover_most_chatterbox_languages():
    assert {"de", "fr", "es", "it", "pt", "nl", "pl", "ru", "sv", "da", "no", "fi", "tr",
            "ja", "ko", "he", "ar"} <= set(supported_languages())


@settings(max_examples=100, deadline=None)
@given(st.lists(_ALPHABET, min_size=1, max_size=30).map("".join), st.integers(0, 5000))
def test_original_timings_come_from_the_spoken_ones(text, duration_ms):
    # ElevenLabs' alignment (original text) is derived from normalizedAlignment (spoken):
    # same audio, start to end, every character of the original timed, in order.
    n = normalize(text)
    spoken = estimate_char_timings(n.spoken, duration_ms)
    timed = map_timings_to_original(n.original, n.char_map(), spoken)
    assert timed.chars == list(text)
    assert timed.start_ms[0] == 0 and min(timed.duration_ms) >= 0
    assert timed.start_ms[-1] + timed.duration_ms[-1] == (round(duration_ms) if n.spoken else 0)
    assert all(a <= b for a, b in zip(timed.start_ms, timed.start_ms[1:], strict=False))


def test_replaced_characters_share_the_time_of_what_they_became():
    n = normalize("Pay $5 now.")
    spoken = estimate_char_timings(n.spoken, 1000)
    timed = map_timings_to_original(n.original, n.char_map(), spoken)
    a, b = n.char_map()[4]  # "$" -> "five dollars"
    span_ms = spoken.start_ms[b - 1] + spoken.duration_ms[b - 1] - spoken.start_ms[a]
    assert timed.duration_ms[4] + timed.duration_ms[5] == pytest.approx(span_ms, abs=1)
    assert timed.start_ms[4] == spoken.start_ms[a]
