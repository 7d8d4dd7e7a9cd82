"""Choosing the number-words library for text normalization: num2words, inflect, NeMo.

Run: ``.venv/bin/python benchmarks/number_words.py`` (libraries that are not importable are
reported as missing; inflect and NeMo are not project dependencies: install them in a
scratch environment and put it on PYTHONPATH to compare).

For each library it reports the install size of the package and its dependencies that
the service does not already have (when importable), the wall time per number and per
clause, and correctness against US telephony readings (cardinals without "and", years,
ordinals). The service's own normalizer (``app.text.normalize``, rules over num2words)
is timed per clause on the same sentences. Results go to
``benchmarks/results/number_words.json``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.text.normalize import normalize  # noqa: E402

SENTENCES = [
    "Your total is $25.50, due by Nov. 3rd.",
    "Call us at +1 (415) 555-0100 between 9am and 5pm.",
    "The meeting is at 3:30 PM on 11/03/2024.",
    "Order #A7X9K2 ships in 3-5 business days.",
    "It's 72°F today, with a 40% chance of rain.",
    "Dr. Smith will see you on Jan. 5, 2025 at 10:15 a.m.",
    "Email support@example.com or visit www.example.com/help.",
    "We had 1,234,567 calls in the 1990s.",
    "Flight UA123 departs from gate B22 at 14:45.",
    "That costs €1,200 or about USD 1,300.",
]
CARDINALS = {
    7: "seven", 13: "thirteen", 21: "twenty-one", 101: "one hundred one",
    115: "one hundred fifteen", 1001: "one thousand one",
    1234: "one thousand two hundred thirty-four", 20000: "twenty thousand",
    1234567: "one million two hundred thirty-four thousand five hundred sixty-seven",
}
ORDINALS = {1: "first", 3: "third", 11: "eleventh", 22: "twenty-second",
            101: "one hundred first"}
YEARS = {1999: "nineteen ninety-nine", 2005: "two thousand five", 2010: "twenty ten",
         1905: "nineteen oh five", 1900: "nineteen hundred"}


def _size(dist: str, seen: set[str]) -> int:
    """Bytes of an installed distribution and of its requirements not in ``seen``."""
    if dist.lower() in seen:
        return 0
    seen.add(dist.lower())
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        return 0
    total = sum((p.size or 0) for p in d.files or [])
    for req in d.requires or []:
        if "extra ==" in req:
            continue
        name = req.split(";")[0].strip()
        for sep in "<>=!~[ (":
            name = name.split(sep)[0]
        total += _size(name, seen)
    return total


def _time_per_call(fn: Callable[[], object], n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000.0


def _score(got: dict[int, str], want: dict[int, str]) -> dict[str, object]:
    wrong = {k: got[k] for k in want if got.get(k) != want[k]}
    return {"correct": len(want) - len(wrong), "of": len(want), "wrong": wrong}


def bench_num2words() -> dict[str, object]:
    from num2words import num2words

    from app.text import numbers

    raw = {n: num2words(n, lang="en") for n in CARDINALS}
    return {
        "version": md.version("num2words"),
        "languages": "50+",
        "cardinal_raw": _score(raw, CARDINALS),
        "cardinal_as_used": _score({n: numbers.cardinal(n) for n in CARDINALS}, CARDINALS),
        "ordinal_as_used": _score({n: numbers.ordinal(n) for n in ORDINALS}, ORDINALS),
        "year_as_used": _score({n: numbers.year(n) for n in YEARS}, YEARS),
        "ms_per_number": round(_time_per_call(lambda: num2words(1234567, lang="en"), 2000), 4),
    }


def bench_inflect() -> dict[str, object]:
    import inflect

    p = inflect.engine()

    def card(n: int) -> str:
        return str(p.number_to_words(n, andword="", comma=""))

    return {
        "version": md.version("inflect"),
        "languages": "en only",
        "cardinal": _score({n: card(n) for n in CARDINALS}, CARDINALS),
        "ordinal": _score({n: str(p.ordinal(card(n))) for n in ORDINALS}, ORDINALS),
        "year (group=2)": _score(
            {n: str(p.number_to_words(n, group=2, comma="")).replace(",", "") for n in YEARS},
            YEARS,
        ),
        "ms_per_number": round(_time_per_call(lambda: card(1234567), 2000), 4),
    }


def bench_nemo(cache_dir: str | None) -> dict[str, object]:
    from nemo_text_processing.text_normalization.normalize import Normalizer

    t0 = time.perf_counter()
    nemo = Normalizer(input_case="cased", lang="en", cache_dir=cache_dir)
    build_s = time.perf_counter() - t0
    out = [nemo.normalize(s, punct_post_process=True) for s in SENTENCES]
    per = _time_per_call(lambda: [nemo.normalize(s) for s in SENTENCES], 3) / len(SENTENCES)
    return {"version": md.version("nemo_text_processing"), "grammar_build_s": round(build_s, 1),
            "ms_per_clause": round(per, 2), "spoken": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nemo-cache", default=None,
                    help="NeMo grammar cache directory (the first build takes minutes)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results/number_words.json")
    args = ap.parse_args()
    base = {"numpy", "pydantic", "regex", "typing-extensions", "transformers", "pandas",
            "setuptools", "tqdm", "joblib"}  # already in the service's environment
    results: dict[str, object] = {
        "settings": {"python": platform.python_version(), "machine": platform.machine()},
    }
    for name, dist, fn in (("num2words", "num2words", bench_num2words),
                           ("inflect", "inflect", bench_inflect),
                           ("nemo", "nemo_text_processing",
                            lambda: bench_nemo(args.nemo_cache))):
        try:
            importlib.import_module(dist)
        except ImportError:
            results[name] = {"missing": True}
            print(f"{name}: not importable (skipped)")
            continue
        row = fn()
        row["install_mb"] = round(_size(dist, set(base)) / 1e6, 1)
        results[name] = row
        print(f"{name}: {json.dumps(row, ensure_ascii=False)}")
    ours = _time_per_call(lambda: [normalize(s) for s in SENTENCES], 200) / len(SENTENCES)
    results["service_normalizer"] = {
        "ms_per_clause": round(ours, 4),
        "spoken": [normalize(s).spoken for s in SENTENCES],
    }
    print(f"service normalizer (rules over num2words): {ours:.3f} ms per clause")
    for s in SENTENCES:
        print(f"  {s}\n    -> {normalize(s).spoken}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
