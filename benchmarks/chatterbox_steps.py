"""The token loop alone: one batched step at N streams, without decoding beside it.

``chatterbox_capacity.py`` times steps while chunk decodes run on the other thread, as in
the service; on a 2-core CPU that figure moves with whatever the decode is doing at the
time (batch 8 came out faster than batch 4 there). This script runs the step scheduler on
the calling thread (``run_once``) with N streams of a fixed length and nothing else, so
the step's own cost at each batch size is measured in the same run, with the batch-1 rate
as the baseline. The batch sizes take turns over ``--rounds`` rounds and each figure is the
median over rounds (the range is kept), so a burst of outside load lands on every size
rather than on one. Each iteration is the scheduler's whole step: sampling every row (per-row
generators, the family's logits processors) and the batched forward; the forward alone is
reported beside it.

    python benchmarks/chatterbox_steps.py --tiny
    python benchmarks/chatterbox_steps.py --full-size turbo --json /tmp/steps_turbo.json
    python benchmarks/chatterbox_steps.py --full-size standard --streams 1,2,4,8 --iterations 20
    python benchmarks/chatterbox_steps.py --full-size turbo --device cuda --streams 1,8,16,32
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

# The checkpoints and the engine as the capacity benchmark builds them (same directory).
from chatterbox_capacity import TEXT, add_model_arguments, checkpoint, conditions, load_engine

from app.engines.base import SynthesisParams
from app.presets import PRESETS


def measure(engine: Any, voice: Any, preset: str, n: int, warmup: int, iterations: int
            ) -> dict[str, float]:
    """Median iteration and forward time with ``n`` streams in the batch."""
    from app.engines.chatterbox import runtime
    from app.engines.chatterbox.scheduler import StepScheduler, TokenStream

    model, family = engine._model, engine.family
    params = SynthesisParams(preset=PRESETS[preset], seed=0)
    plan = runtime.Plan.build(family, params)
    scheduler = StepScheduler(model.t3, family)
    limit = n + warmup + iterations + 2  # the first stream also steps while others join
    for i in range(n):
        request = runtime.token_request(model, family, TEXT, "en",
                                        runtime.request_cond(voice.data, plan), plan)
        request = dataclasses.replace(request, fixed_tokens=limit,
                                      generator=torch.Generator().manual_seed(i))
        scheduler.run_once(TokenStream(request))  # prefill, first token, splice
    for _ in range(warmup):
        scheduler.run_once()
    scheduler.step_log.clear()
    walls = []
    for _ in range(iterations):
        began = time.perf_counter()
        scheduler.run_once()
        walls.append(time.perf_counter() - began)
    sizes = {size for size, _ in scheduler.step_log}
    assert sizes == {n}, f"the batch changed size during the run: {sizes}"
    iteration = 1000 * statistics.median(walls)
    forward = 1000 * statistics.median(s for _, s in scheduler.step_log)
    return {"iteration_ms": round(iteration, 2), "forward_ms": round(forward, 2),
            "sampling_ms": round(iteration - forward, 2),
            "tokens_per_s": round(1000 * n / iteration, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_model_arguments(ap)
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--json", default="benchmarks/results/chatterbox_steps.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    family, ckpt = checkpoint(args)
    sizes = [int(s) for s in args.streams.split(",")]
    engine = load_engine(family, ckpt, args, max(sizes), watermark=False)  # nothing decodes
    voice = asyncio.run(engine.prepare_voice(None))
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    with torch.inference_mode():
        for r in range(args.rounds):
            for n in sizes:
                runs[n].append(measure(engine, voice, args.preset, n, args.warmup,
                                       args.iterations))
                print(f"round {r + 1} N={n:2d}  {runs[n][-1]}", flush=True)
    asyncio.run(engine.aclose())
    rows = {str(n): {**{key: round(statistics.median(m[key] for m in ms), 2)
                        for key in ms[0]},
                     "iteration_ms_range": [min(m["iteration_ms"] for m in ms),
                                            max(m["iteration_ms"] for m in ms)]}
            for n, ms in runs.items()}
    for n, row in rows.items():
        print(f"N={int(n):2d}  median over {args.rounds} rounds: {row}")
    base = rows[str(sizes[0])]["tokens_per_s"]
    report = {"conditions": {**conditions(args, engine, family, ckpt),
                             "iterations": args.iterations, "rounds": args.rounds},
        "steps": rows,
        "token_rate_vs_first": {n: round(r["tokens_per_s"] / base, 2) for n, r in rows.items()}}
    print("token rate against N =", sizes[0], ":", report["token_rate_vs_first"])
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
