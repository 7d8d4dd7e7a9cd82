"""Memory and disk kept by the voice caches for many long voices (issue 11, item 8).

Loads N voices of 59 s each (16 kHz WAV from a loopback bucket) through the real
``VoiceManager`` with the real Piper engine, each mode in a fresh process, and reports
resident memory growth (RSS after minus RSS before, after a warm-up voice) and the bytes
left in the disk cache:

- ``now``: the code as it is (Piper keeps no decoded clip; disk bounded);
- ``baseline``: the same run with decoded clips kept as before this change (the manager's
  clip level forced on), measured in the same run for comparison.

    .venv/bin/python benchmarks/voice_memory.py [--voices 100] [--disk-bound-mb 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


async def measure(mode: str, voices: int, disk_bound: int) -> dict[str, float]:
    import httpx
    import psutil

    from app.config import Settings
    from app.engines.registry import build_engine
    from app.voices import PublicUrlStore, VoiceManager
    from tests.voice_servers import Clip, ClipServer, make_clip

    wav = make_clip(59.0, rate=16_000)
    process = psutil.Process()
    with ClipServer() as bucket, tempfile.TemporaryDirectory() as cache:
        for n in range(voices + 1):
            bucket.serve(f"v{n}", Clip(wav))
        settings = Settings(_env_file=None, tts_engine="piper",  # type: ignore[call-arg]
                            voice_cache_dir=Path(cache), voice_cache_max_bytes=disk_bound)
        engine = build_engine("piper", settings)
        await engine.load()
        async with httpx.AsyncClient() as client:
            store = PublicUrlStore(bucket.url, client, max_bytes=5_000_000, timeout=10.0,
                                   retries=0)
            manager = VoiceManager(settings, engine, store)
            if mode == "baseline":
                manager._keep_clips = True  # the behaviour before this change, for comparison
            await manager.get("v0")
            gc.collect()
            before = process.memory_info().rss
            for n in range(1, voices + 1):
                await manager.get(f"v{n}")
            gc.collect()
            after = process.memory_info().rss
            disk = await asyncio.to_thread(folder_bytes, Path(cache))
            await manager.aclose()
        await engine.aclose()
    return {"rss_growth_mb": (after - before) / 1e6, "disk_mb": disk / 1e6,
            "clip_mb": len(wav) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", type=int, default=100)
    parser.add_argument("--disk-bound-mb", type=float, default=50.0)
    parser.add_argument("--mode", choices=["now", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    bound = int(args.disk_bound_mb * 1e6)
    if args.mode:  # one measurement, in this (fresh) process
        print(json.dumps(asyncio.run(measure(args.mode, args.voices, bound))))
        return
    results = {}
    for mode in ("baseline", "now"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--voices",
                              str(args.voices), "--disk-bound-mb", str(args.disk_bound_mb)],
                             check=True, capture_output=True, text=True, cwd=ROOT).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    summary = {"voices": args.voices, "clip_seconds": 59, "engine": "piper",
               "disk_bound_mb": args.disk_bound_mb, **results}
    for mode, r in results.items():
        print(f"{mode:9s} RSS +{r['rss_growth_mb']:7.1f} MB   disk {r['disk_mb']:6.1f} MB "
              f"(bound {args.disk_bound_mb:g} MB; {args.voices} clips of "
              f"{r['clip_mb']:.2f} MB would be {args.voices * r['clip_mb']:.0f} MB)")
    out_path = ROOT / "benchmarks" / "results" / "voice_memory.json"
    out_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
