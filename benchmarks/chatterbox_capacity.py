"""Chatterbox capacity: N concurrent streams, batched (the step scheduler) or interleaved.

Two modes, each for N in ``--streams`` (default 1, 2, 4, 8; 16 and 32 added on a GPU):

- ``batched``: the service's own path (``ChatterboxEngine.stream``): one step scheduler
  runs every stream's token step in one forward; chunks decode on the decode worker.
- ``interleaved``: the baseline it replaced: one worker thread runs one stream's whole
  chunk at a time (its token steps at batch one, then the decode and watermark), streams
  taking turns chunk by chunk.

Per mode and N, two measurements:

1. A burst: N streams of ``--tokens`` tokens admitted together. ``aggregate_tokens_per_s``
   is every token generated over the time from admission to the last token, while chunks
   are decoded as in the service; ``per_stream_rtf`` is the median over streams of (time
   to the last chunk) / (audio seconds); ``ttfa_*`` is admission to first audio chunk.
2. Joins: with N - 1 streams running (long replies, decoded as they go), ``--probes`` new
   streams join one after another at random moments. ``first_token_*`` is a joining
   stream's time from admission to its first token with N - 1 others active (N = 1: alone).

Every stream has a fixed length (end-of-speech masked): random-weight checkpoints say
nothing about when speech ends. ``--tiny`` uses the tiny test checkpoints (CPU; S3Gen is
full size there, so decoding is far slower than on a GPU and TTFA is reported, not
judged); ``--full-size FAMILY`` random weights at the real size (built once under
``--cache``); ``--ckpt-dir`` real weights. Writes ``{mode: {N: {...}}}`` to ``--json`` and the
conditions, step times per batch size and decode times to ``<json>.details.json``.

``--prompt-cache`` (``on``, the service's default; ``off``; ``both``): the voices' prefix
cache (``CHATTERBOX_PROMPT_CACHE_MB``) for the modes; ``both`` also measures a stream's
first token alone (submission to the scheduler until its first token, fixed one-token
replies in the default voice) with the cache off and with a cache hit, in alternation on
the same engine, and writes both, the cache miss and their ratio to the details under
``prompt_cache``. ``--modes ""`` skips the modes (the cache comparison alone).

    python benchmarks/chatterbox_capacity.py --tiny --json benchmarks/results/capacity_tiny.json
    python benchmarks/chatterbox_capacity.py --full-size turbo --modes batched --tokens 48
    python benchmarks/chatterbox_capacity.py --full-size turbo --device cuda   # on a GPU
    python benchmarks/chatterbox_capacity.py --full-size turbo --modes "" --prompt-cache both
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TQDM_DISABLE", "1")

from app.config import Settings  # noqa: E402
from app.engines.base import AudioChunk, SynthesisParams, iterate_blocking  # noqa: E402
from app.presets import PRESETS  # noqa: E402

SR = 24000
TEXT = "Thanks for calling! Your appointment is confirmed for Tuesday at three thirty."
_TOKENS: contextvars.ContextVar[int] = contextvars.ContextVar("tokens")
_HANDLES: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("handles")


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


# --- the two ways of running a stream ---
class Runner:
    """Starts streams in one mode; every stream reports its token handle."""

    def __init__(self, engine: Any, voice: Any, preset: str, mode: str) -> None:
        self.engine, self.voice, self.mode = engine, voice, mode
        self.preset = preset
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interleaved")

    def stream(self, tokens: int, handles: list[Any], seed: int) -> Any:
        _TOKENS.set(tokens)
        _HANDLES.set(handles)
        params = SynthesisParams(preset=PRESETS[self.preset], seed=seed)
        if self.mode == "batched":
            return self.engine.stream(TEXT, self.voice, params)
        return iterate_blocking(
            lambda stop: self._interleaved(tokens, handles, params, stop), self.worker)

    def _interleaved(self, tokens: int, handles: list[Any], params: SynthesisParams,
                     stop: threading.Event) -> Iterator[AudioChunk]:
        """Today's turn-taking: one chunk's steps at batch one, then its decode."""
        from app.engines.chatterbox import runtime
        from app.engines.chatterbox.scheduler import StepScheduler, TokenStream

        engine = self.engine
        model, family = engine._model, engine.family
        plan = runtime.Plan.build(family, params)
        request = runtime.token_request(model, family, TEXT, "en",
                                        runtime.request_cond(self.voice.data, plan), plan)
        handle = TokenStream(dataclasses.replace(request, fixed_tokens=tokens))
        handles.append(handle)
        solo = StepScheduler(model.t3, family)
        solo.run_once(handle)
        decoder = runtime.new_decoder(model, self.voice.data, plan)
        first, later = params.preset.chunk_sizes()
        next_at = first
        while not stop.is_set():
            while len(handle.tokens) < next_at and not handle.done and not stop.is_set():
                solo.run_once()
            if len(handle.tokens) < next_at:
                break
            chunk = engine._decode(decoder, handle.tokens[:next_at], False)
            next_at += later
            if chunk is not None:
                yield chunk
        if not stop.is_set():
            chunk = engine._decode(decoder, list(handle.tokens), True)
            if chunk is not None:
                yield chunk
        handle.cancel()


async def consume(agen: Any, t0: float, first_only: bool = False) -> dict[str, float]:
    first = None
    samples = 0
    try:
        async for chunk in agen:
            if first is None:
                first = time.perf_counter() - t0
                if first_only:
                    break
            samples += len(chunk.samples) - chunk.overlap
    finally:
        await agen.aclose()
    return {"ttfa_s": first or 0.0, "end_s": time.perf_counter() - t0, "audio_s": samples / SR}


async def burst(runner: Runner, n: int, tokens: int) -> dict[str, float]:
    handles: list[Any] = []
    t0 = time.perf_counter()
    results = await asyncio.gather(*[
        consume(runner.stream(tokens, handles, seed=i), t0) for i in range(n)])
    last = max(h.last_token_at for h in handles)
    total = sum(len(h.tokens) for h in handles)
    rtf = [r["end_s"] / r["audio_s"] for r in results if r["audio_s"]]
    ttfa = [1000 * r["ttfa_s"] for r in results]
    return {"aggregate_tokens_per_s": round(total / (last - t0), 2),
            "per_stream_rtf": round(statistics.median(rtf), 3),
            "ttfa_p50_ms": pct(ttfa, 50), "ttfa_p95_ms": pct(ttfa, 95)}


async def joins(runner: Runner, n: int, probes: int, tokens: int) -> dict[str, Any]:
    background: list[Any] = []
    tasks = [asyncio.ensure_future(consume(runner.stream(1 << 20, background, seed=100 + i),
                                           time.perf_counter())) for i in range(n - 1)]
    while len(background) < n - 1 or any(not h.tokens for h in background):  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # the handles come from other threads: polled
    rng = random.Random(n)
    first_token = []
    for k in range(probes):
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        handles: list[Any] = []
        t0 = time.perf_counter()
        agen = runner.stream(tokens, handles, seed=200 + k)
        task = asyncio.ensure_future(consume(agen, t0, first_only=True))
        while not handles or handles[0].first_token_at is None:  # noqa: ASYNC110
            await asyncio.sleep(0.002)  # set on the scheduler's thread: polled
        first_token.append(1000 * (handles[0].first_token_at - t0))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for h in background:
        h.cancel()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"first_token_p50_ms": pct(first_token, 50),
            "first_token_p95_ms": pct(first_token, 95)}


def instrument(engine: Any) -> list[float]:
    """Time every chunk decode; give every stream a fixed length and report its handle."""
    decode_s: list[float] = []
    real_decode = engine._decode

    def timed_decode(*args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_decode(*args)
        finally:
            decode_s.append(time.perf_counter() - t0)

    real_submit = engine._scheduler.submit

    def submit(request: Any) -> Any:
        handle = real_submit(dataclasses.replace(request, fixed_tokens=_TOKENS.get()))
        _HANDLES.get().append(handle)
        return handle

    engine._decode = timed_decode
    engine._scheduler.submit = submit
    return decode_s


def prompt_cache_probes(engine: Any, voice: Any, probes: int) -> dict[str, Any]:
    """First token alone with the prefix cache off and with a hit, alternating (the same
    engine, so the machine's load moves both alike); the first cached reply is the miss."""
    from app.engines.chatterbox import runtime
    from app.engines.chatterbox.prompt_cache import PromptCache

    sched = engine._scheduler
    while sched.streams:  # the modes' cancelled streams leave at the next step
        time.sleep(0.01)
    saved = sched.prompt_cache
    cache = PromptCache(saved.max_bytes if saved is not None and saved.enabled else 1 << 40)
    _TOKENS.set(1)

    def first_token_ms(seed: int) -> float:
        handles: list[Any] = []
        _HANDLES.set(handles)
        plan = runtime.Plan.build(engine.family, SynthesisParams(preset=PRESETS["balanced"],
                                                                 seed=seed))
        request = runtime.token_request(engine._model, engine.family, TEXT, "en",
                                        runtime.request_cond(voice.data, plan), plan)
        handle = sched.submit(request)
        handle.wait_for(1 << 30)
        return 1000 * (handle.first_token_at - handle.submitted_at)

    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        sched.prompt_cache = cache
        miss = first_token_ms(0)
        for k in range(probes):
            for state in ("off", "on"):
                sched.prompt_cache = cache if state == "on" else None
                times[state].append(first_token_ms(1 + k))
    finally:
        sched.prompt_cache = saved
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    return {"first_token_alone_ms": {
                "off_p50": round(off, 2), "on_hit_p50": round(on, 2), "on_miss": round(miss, 2),
                "off": [round(t, 2) for t in times["off"]],
                "on_hit": [round(t, 2) for t in times["on"]]},
            "off_over_on_p50": round(off / on, 2), "probes": probes,
            "entry_bytes": cache.nbytes, "stats": cache.stats()}


# --- checkpoints and the engine ---
def checkpoint(args: argparse.Namespace) -> tuple[str, Path]:
    if args.ckpt_dir:
        return args.family, Path(args.ckpt_dir)
    cache = Path(args.cache)
    if args.full_size:
        from app.engines.chatterbox.fullsize import build_fullsize_checkpoint

        out = cache / f"fullsize-{args.full_size}"
        if not (out / ".complete").exists():
            print(f"building a random-weight {args.full_size} checkpoint in {out} ...")
            build_fullsize_checkpoint(args.full_size, out)
            (out / ".complete").touch()
        return args.full_size, out
    from app.engines.chatterbox.tiny import build_tiny_checkpoint

    out = cache / f"tiny-{args.family}"
    if not (out / ".complete").exists():
        build_tiny_checkpoint(args.family, out, eos_after=48)
        (out / ".complete").touch()
    return args.family, out


def add_model_arguments(ap: argparse.ArgumentParser) -> None:
    """Which checkpoint, where and how it runs (shared with ``chatterbox_steps.py``)."""
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--tiny", action="store_true", help="tiny test checkpoints (default)")
    src.add_argument("--full-size", choices=("turbo", "standard", "nano"))
    src.add_argument("--ckpt-dir", help="real weights of --family")
    ap.add_argument("--family", default="turbo", choices=("turbo", "standard", "nano"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "chatterbox-capacity"),
                    help="where built checkpoints are kept")


def load_engine(family: str, ckpt: Path, args: argparse.Namespace, streams: int, *,
                watermark: bool, prompt_cache: bool = True) -> Any:
    from app.engines.chatterbox import ChatterboxEngine

    settings = Settings(_env_file=None, chatterbox_model=family, chatterbox_ckpt_dir=ckpt,
                        chatterbox_device=args.device, chatterbox_dtype=args.dtype,
                        max_concurrent_streams=streams, chatterbox_stream_budget=streams,
                        watermark=watermark,
                        **({} if prompt_cache else {"chatterbox_prompt_cache_mb": 0}))
    engine = ChatterboxEngine(settings)
    asyncio.run(engine.load())
    return engine


def conditions(args: argparse.Namespace, engine: Any, family: str, ckpt: Path
               ) -> dict[str, Any]:
    """What a result was measured on (the JSON's ``conditions``)."""
    return {"family": family, "checkpoint": "full-size random" if args.full_size else
            ("tiny random" if not args.ckpt_dir else str(ckpt)), "device": engine.device,
            "dtype": engine.stats()["dtype"], "torch_threads": args.threads,
            "cpu": platform.processor() or platform.machine(), "preset": args.preset}


def step_times(engine: Any) -> dict[str, float]:
    by_size: dict[int, list[float]] = {}
    for size, seconds in engine._scheduler.step_log:
        by_size.setdefault(size, []).append(seconds)
    return {str(n): round(1000 * statistics.median(v), 2) for n, v in sorted(by_size.items())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_model_arguments(ap)
    ap.add_argument("--streams", default=None, help="comma list (default 1,2,4,8; +16,32 on GPU)")
    ap.add_argument("--modes", default="batched,interleaved")
    ap.add_argument("--tokens", type=int, default=72, help="tokens per stream in the burst")
    ap.add_argument("--probes", type=int, default=8, help="joining streams per N")
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--no-watermark", action="store_true")
    ap.add_argument("--prompt-cache", default="on", choices=("on", "off", "both"),
                    help="the voices' prefix cache for the modes; both: also first token "
                    "alone with it off and on")
    ap.add_argument("--json", default="benchmarks/results/chatterbox_capacity.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    family, ckpt = checkpoint(args)
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    sizes = [int(s) for s in args.streams.split(",")] if args.streams else (
        [1, 2, 4, 8, 16, 32] if cuda else [1, 2, 4, 8])
    engine = load_engine(family, ckpt, args, max(sizes), watermark=not args.no_watermark,
                         prompt_cache=args.prompt_cache != "off")
    voice = asyncio.run(engine.prepare_voice(None))
    decode_s = instrument(engine)
    report: dict[str, Any] = {}
    details: dict[str, Any] = {"conditions": {
        **conditions(args, engine, family, ckpt), "tokens_per_stream": args.tokens,
        "probes": args.probes, "watermark": not args.no_watermark,
        "prompt_cache": args.prompt_cache}, "modes": {}}
    for mode in filter(None, args.modes.split(",")):
        runner = Runner(engine, voice, args.preset, mode)
        report[mode] = {}
        engine._scheduler.step_log.clear()
        for n in sizes:
            decode_s.clear()
            t = time.perf_counter()
            row = {**asyncio.run(burst(runner, n, args.tokens)),
                   **asyncio.run(joins(runner, n, args.probes, args.tokens))}
            report[mode][str(n)] = {k: row[k] for k in (
                "aggregate_tokens_per_s", "first_token_p50_ms", "first_token_p95_ms",
                "per_stream_rtf", "ttfa_p50_ms", "ttfa_p95_ms")}
            details["modes"].setdefault(mode, {})[str(n)] = {
                "decode_ms_p50": pct([1000 * s for s in decode_s], 50),
                "step_ms_at_n": step_times(engine).get(str(n)),
                "wall_s": round(time.perf_counter() - t, 1)}
            print(f"{mode:11s} N={n:2d}  {report[mode][str(n)]}  "
                  f"{details['modes'][mode][str(n)]}", flush=True)
        runner.worker.shutdown()
        if mode == "batched":
            details["step_ms_by_batch"] = step_times(engine)
    if args.prompt_cache == "both":
        details["prompt_cache"] = prompt_cache_probes(engine, voice, args.probes)
    asyncio.run(engine.aclose())
    summarize(report, details)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".details.json").write_text(json.dumps(details, indent=2))
    return report


def summarize(report: dict[str, Any], details: dict[str, Any]) -> None:
    print("conditions:", details["conditions"])
    print("step ms by batch size:", details.get("step_ms_by_batch"))
    b, i = report.get("batched", {}), report.get("interleaved", {})
    top = max((int(n) for n in b), default=0)
    if b and i and str(top) in i:
        ratio = b[str(top)]["aggregate_tokens_per_s"] / i[str(top)]["aggregate_tokens_per_s"]
        print(f"aggregate tokens/s at N={top}: batched/interleaved = {ratio:.2f}x")
    if b and "1" in b and str(top) in b:
        alone = b["1"]["first_token_p50_ms"]
        crowded = b[str(top)]["first_token_p95_ms"]
        print(f"first token: alone p50 {alone} ms, with {top - 1} others p95 {crowded} ms "
              f"({crowded / alone:.2f}x)")
    if "prompt_cache" in details:
        pc = details["prompt_cache"]
        ft = pc["first_token_alone_ms"]
        print(f"first token alone, prompt cache off p50 {ft['off_p50']} ms, hit p50 "
              f"{ft['on_hit_p50']} ms ({pc['off_over_on_p50']}x), miss {ft['on_miss']} ms; "
              f"{pc['entry_bytes'] / 2**20:.1f} MB per voice")


if __name__ == "__main__":
    main()
