"""Time to first audio by where the voice comes from: cold, disk, memory, built-in.

A real local HTTP server stands in for the R2 public bucket (loopback), the service runs
under uvicorn with the synthetic engine at zero model delay, so the figures are the voice
path's own cost. Each run sends one `/ws/synthesize` request and times the first frame.

- cold: a voice never seen (fetch + decode + resample + prepare), fresh id per run;
- disk: a voice on the disk cache but in no memory cache (memory LRUs of size 1 and the
  requests alternate between voices, so each request misses memory);
- memory: the same voice again (prepared conditioning in memory);
- default: the built-in voice (no voice layer work at all): the baseline.

    .venv/bin/python benchmarks/voices.py [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import live_server, make_settings  # noqa: E402
from tests.voice_servers import Clip, ClipServer, make_clip  # noqa: E402
from tests.wsclient import WSClient, is_audio  # noqa: E402


async def ttfa(url: str, voice_id: str) -> float:
    async with await WSClient.connect(url + "/ws/synthesize") as ws:
        start = time.perf_counter()
        await ws.send({"text": "Hello there.", "voice_id": voice_id})
        first = (await ws.until(lambda m: is_audio(m) or "error" in m))[-1]
        if "error" in first:
            raise RuntimeError(first)
        ms = (first["_t"] - start) * 1000
        await ws.until(lambda m: m.get("is_final") is True)
        return ms


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    clip = make_clip(8.0, rate=24_000)
    results: dict[str, list[float]] = {"cold": [], "disk": [], "memory": [], "default": []}
    with ClipServer() as bucket, tempfile.TemporaryDirectory() as cache:
        for i in range(args.runs + 2):
            bucket.serve(f"cold{i}", Clip(clip))
        bucket.serve("warm_a", Clip(clip))
        bucket.serve("warm_b", Clip(clip))
        settings = make_settings(
            synthetic_rtf=0.0,
            cloudflare_r2_public_url=bucket.url,
            voice_cache_dir=Path(cache),
            max_cached_voices=1,
            max_cached_clips=1,
        )
        with live_server(settings) as server:
            url = server.ws
            for voice in ("default", "warm_a", "warm_b"):  # warm up every path once
                await ttfa(url, voice)
            for i in range(args.runs):
                results["cold"].append(await ttfa(url, f"cold{i}"))
                # Alternating a/b with LRUs of one: each request misses memory, hits disk.
                results["disk"].append(await ttfa(url, "warm_a" if i % 2 else "warm_b"))
            for _ in range(args.runs):
                results["memory"].append(await ttfa(url, "warm_a"))
                results["default"].append(await ttfa(url, "default"))
            fetches = server.runtime.voices.stats()["store"]["fetches"]
    summary = {
        level: {
            "p50_ms": round(statistics.median(v), 2),
            "p95_ms": round(pct(v, 0.95), 2),
            "runs": len(v),
        }
        for level, v in results.items()
    }
    memory_overhead = summary["memory"]["p50_ms"] - summary["default"]["p50_ms"]
    return {
        "summary": summary,
        "memory_minus_default_p50_ms": round(memory_overhead, 3),
        "target_memory_overhead_ms": 1.0,
        "store_fetches": fetches,
        "settings": {"engine": "synthetic (rtf 0)", "clip_s": 8.0, "clip_rate": 24_000,
                     "runs": args.runs, "store": "local HTTP server on loopback",
                     "cpus": os.cpu_count()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/voices.json")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(f"{'level':<8} {'p50 ms':>8} {'p95 ms':>8}")
    for level, row in report["summary"].items():  # type: ignore[union-attr]
        print(f"{level:<8} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f}")
    overhead = report["memory_minus_default_p50_ms"]
    verdict = "PASS" if overhead < 1.0 else "FAIL"  # type: ignore[operator]
    print(f"memory path over default (p50): {overhead:.3f} ms (target < 1 ms): {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
