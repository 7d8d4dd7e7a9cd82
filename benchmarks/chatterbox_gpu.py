"""Chatterbox streaming benchmark: time to first audio, real-time factor and GPU memory.

For each model family and preset: ``--warmup`` unmeasured runs, then ``--runs`` measured
ones (p50/p95), then the same with ``--concurrency`` streams at once. Time to first audio is
from the ``stream()`` call to the first chunk; RTF is wall time over audio seconds (the
stitched length: chunk samples minus declared overlaps). GPU memory is the peak allocated
by torch during the preset's runs (``null`` on CPU).

    python benchmarks/chatterbox_gpu.py                      # GPU: HF weights, all presets
    python benchmarks/chatterbox_gpu.py --ckpt-dir /models/turbo --families turbo
    python benchmarks/chatterbox_gpu.py --families turbo,standard \
        --ckpt-dir turbo=/models/turbo --ckpt-dir standard=/models/standard
    python benchmarks/chatterbox_gpu.py --tiny --runs 2      # CPU smoke run, random weights

Prints a summary and writes JSON (default ``benchmarks/results/chatterbox_gpu.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TQDM_DISABLE", "1")

from app.config import Settings  # noqa: E402
from app.engines.base import SynthesisParams  # noqa: E402
from app.presets import PRESETS  # noqa: E402

TEXT = "Thanks for calling! Your appointment is confirmed for Tuesday at three thirty."
SR = 24000


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


async def one_stream(engine: Any, voice: Any, preset: str, text: str) -> dict[str, float]:
    params = SynthesisParams(preset=PRESETS[preset])
    t0 = time.perf_counter()
    first = None
    samples = 0
    async for chunk in engine.stream(text, voice, params):
        if first is None:
            first = time.perf_counter() - t0
        samples += len(chunk.samples) - chunk.overlap
    total = time.perf_counter() - t0
    audio = samples / SR
    return {"ttfa_s": first or total, "total_s": total, "audio_s": audio,
            "rtf": total / audio if audio else float("inf")}


def summarize(runs: list[dict[str, float]]) -> dict[str, Any]:
    ttfa = [r["ttfa_s"] for r in runs]
    rtf = [r["rtf"] for r in runs]
    return {
        "n": len(runs),
        "ttfa_ms_p50": 1000 * pct(ttfa, 50), "ttfa_ms_p95": 1000 * pct(ttfa, 95),
        "rtf_p50": pct(rtf, 50), "rtf_p95": pct(rtf, 95),
        "audio_s_mean": float(np.mean([r["audio_s"] for r in runs])),
    }


def gpu_peak(reset: bool = False) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats()
        return None
    return torch.cuda.max_memory_allocated() / 2**30


async def bench_family(family: str, ckpt: Path | None, args: argparse.Namespace) -> dict:
    from app.engines.chatterbox import ChatterboxEngine

    settings = Settings(
        _env_file=None, chatterbox_model=family, chatterbox_ckpt_dir=ckpt,
        chatterbox_device=args.device, watermark=not args.no_watermark,
        max_concurrent_streams=max(args.concurrency, 1),
        # Admit the streams it measures; a budget measured at load would follow the machine.
        chatterbox_stream_budget=max(args.concurrency, 1),
    )
    engine = ChatterboxEngine(settings)
    t0 = time.perf_counter()
    await engine.load()
    result: dict[str, Any] = {"load_and_warmup_s": time.perf_counter() - t0,
                              "device": engine.device, "presets": {}}
    voice = await engine.prepare_voice(None)
    try:
        for preset in args.presets:
            for _ in range(args.warmup):
                await one_stream(engine, voice, preset, args.text)
            gpu_peak(reset=True)
            single = [await one_stream(engine, voice, preset, args.text)
                      for _ in range(args.runs)]
            entry = {"single": summarize(single), "gpu_mem_gib": gpu_peak()}
            if args.concurrency > 1:
                gpu_peak(reset=True)
                rounds = max(1, args.runs // args.concurrency)
                conc: list[dict[str, float]] = []
                for _ in range(rounds):
                    conc += await asyncio.gather(*(
                        one_stream(engine, voice, preset, args.text)
                        for _ in range(args.concurrency)
                    ))
                entry["concurrent"] = {"streams": args.concurrency, **summarize(conc),
                                       "gpu_mem_gib": gpu_peak()}
            result["presets"][preset] = entry
            print_row(family, preset, entry)
    finally:
        await engine.aclose()
    return result


def print_row(family: str, preset: str, entry: dict) -> None:
    def fmt(s: dict) -> str:
        return (f"TTFA p50 {s['ttfa_ms_p50']:7.0f} ms p95 {s['ttfa_ms_p95']:7.0f} ms  "
                f"RTF p50 {s['rtf_p50']:6.3f} p95 {s['rtf_p95']:6.3f}")

    mem = entry["gpu_mem_gib"]
    line = f"{family:12s} {preset:15s} x1  {fmt(entry['single'])}"
    line += f"  GPU {mem:.2f} GiB" if mem is not None else "  GPU n/a"
    print(line, flush=True)
    if "concurrent" in entry:
        c = entry["concurrent"]
        print(f"{'':12s} {'':15s} x{c['streams']:<2d} {fmt(c)}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="turbo,standard",
                   help="comma-separated: turbo, standard, multilingual")
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=4, help="streams at once (1 = skip)")
    p.add_argument("--ckpt-dir", action="append", default=[], metavar="[FAMILY=]DIR",
                   help="local checkpoint per family, e.g. turbo=/models/turbo (repeat for "
                   "each family); a bare DIR only with one family (default: HF download)")
    p.add_argument("--tiny", action="store_true",
                   help="build tiny random-weight checkpoints (CPU smoke test)")
    p.add_argument("--device", default="auto")
    p.add_argument("--text", default=TEXT)
    p.add_argument("--no-watermark", action="store_true")
    p.add_argument("--json", type=Path,
                   default=Path(__file__).parent / "results" / "chatterbox_gpu.json")
    args = p.parse_args(argv)
    args.families = [f for f in args.families.split(",") if f]
    args.presets = [x for x in args.presets.split(",") if x]
    args.ckpt_dirs = ckpt_dirs(p, args.ckpt_dir, args.families)
    return args


def ckpt_dirs(p: argparse.ArgumentParser, given: list[str], families: list[str]
              ) -> dict[str, Path]:
    """``FAMILY=DIR`` entries by family; a bare ``DIR`` is accepted for one family only (a
    Turbo directory cannot load the standard model, so one directory never serves two)."""
    out: dict[str, Path] = {}
    for entry in given:
        family, sep, path = entry.partition("=")
        if not sep:
            if len(families) != 1:
                p.error("--ckpt-dir DIR with several --families: write FAMILY=DIR per family")
            family, path = families[0], entry
        if family not in families:
            p.error(f"--ckpt-dir {entry}: {family} is not in --families")
        out[family] = Path(path)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(min(os.cpu_count() or 1, 4))
    report: dict[str, Any] = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                     if k != "ckpt_dirs"}
        | {"ckpt_dirs": {f: str(d) for f, d in args.ckpt_dirs.items()}},
        "host": platform.node(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "families": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            ckpt = args.ckpt_dirs.get(family)
            if args.tiny and ckpt is None:
                from app.engines.chatterbox.tiny import build_tiny_checkpoint

                ckpt = build_tiny_checkpoint(family, Path(tmp) / family)
            report["families"][family] = asyncio.run(bench_family(family, ckpt, args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
