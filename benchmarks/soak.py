"""Soak: mixed sessions for a long time; resources must stay flat and nothing may fail.

Run: ``.venv/bin/python benchmarks/soak.py --minutes 30`` (default 3 minutes; ``--minutes
0.5`` is a smoke run).

The service runs as its own process (``python -m app``, synthetic engine at 0.1 RTF, on
loopback); a separate load-generator process (this script with ``--worker``) keeps
``--calls`` clients busy with a random mix: token-streamed replies on
``/ws/synthesize-stream`` (a quarter of them cancelled mid-reply, barge-in), one-shot
requests on ``/ws/synthesize`` (some cancelled), ``POST /synthesize``, and connections
dropped without a close handshake in the middle of an utterance. Every 10 s the server
process's RSS, open file descriptors, threads and asyncio tasks are sampled (psutil and
``/health``). Growth is measured from the end of the warm-up (a sixth of the run, at least a
minute; ``--warmup-minutes``) to the end, and the RSS slope after the warm-up (least squares
over every sample, MB per minute) is reported: a leak is a steady slope, not the
allocator's early settling. ``--tracemalloc`` runs the server with tracemalloc on
(``benchmarks/traced_app.py``) and lists the allocation sites that grew after the warm-up.
A request "fails" when it gets an answer other than the one its protocol documents (cancels
and deliberate drops are not failures).

Results: ``benchmarks/results/soak.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity import RESULTS, free_port, reply_text, start_server  # noqa: E402

SERVER_ENV = {"TTS_ENGINE": "synthetic", "SYNTHETIC_RTF": "0.1", "SYNTHETIC_CHUNK_MS": "200",
              "MAX_CONCURRENT_STREAMS": "64", "SESSION_IDLE_TIMEOUT_S": "60"}


async def stream_session(base: str, rng: random.Random, out: dict[str, int]) -> None:
    from websockets.asyncio.client import connect

    async with connect(base + "/ws/synthesize-stream", max_size=2**24) as ws:
        await ws.send(json.dumps({"type": "init", "voice_id": "default"}))
        if json.loads(await ws.recv()).get("type") != "ready":
            out["failed"] += 1
            return
        for _ in range(rng.randint(1, 3)):
            text = reply_text(rng, rng.uniform(2, 6))
            cancel = rng.random() < 0.25
            drop = rng.random() < 0.05
            for i in range(0, len(text), 6):
                await ws.send(json.dumps({"type": "text", "content": text[i:i + 6]}))
            await ws.send(json.dumps({"type": "end"}))
            if drop:
                await asyncio.sleep(0.2)
                ws.transport.abort()
                out["dropped"] += 1
                return
            if cancel:
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                await ws.send(json.dumps({"type": "cancel"}))
            while True:
                msg = json.loads(await ws.recv())
                kind = msg.get("type")
                if kind == "error":
                    out["failed"] += 1
                    return
                if kind in ("complete", "cancelled"):
                    out["cancelled" if kind == "cancelled" else "ok"] += 1
                    break


async def request_session(base: str, rng: random.Random, out: dict[str, int]) -> None:
    from websockets.asyncio.client import connect

    async with connect(base + "/ws/synthesize", max_size=2**24) as ws:
        await ws.send(json.dumps({"text": reply_text(rng, rng.uniform(1, 4)),
                                  "voice_id": "default"}))
        if rng.random() < 0.2:
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            await ws.send(json.dumps({"type": "cancel"}))
        while True:
            msg = json.loads(await ws.recv())
            if "error" in msg:
                out["failed"] += 1
                return
            if msg.get("is_final") or msg.get("type") == "cancelled":
                out["ok"] += 1
                return


async def http_request(http: httpx.AsyncClient, rng: random.Random, out: dict[str, int]) -> None:
    r = await http.post("/synthesize", json={"text": reply_text(rng, 2), "voice_id": "default"})
    out["ok" if r.status_code == 200 else "failed"] += 1


async def client_loop(port: int, seed: int, until: float, out: dict[str, int]) -> None:
    rng = random.Random(seed)
    base = f"ws://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        while time.monotonic() < until:
            kind = rng.choices(["stream", "request", "http"], [5, 3, 2])[0]
            try:
                if kind == "stream":
                    await stream_session(base, rng, out)
                elif kind == "request":
                    await request_session(base, rng, out)
                else:
                    await http_request(http, rng, out)
            except Exception as exc:  # noqa: BLE001
                out["failed"] += 1
                out.setdefault("exceptions", 0)
                out["exceptions"] += 1
                print(repr(exc), file=sys.stderr)
            await asyncio.sleep(rng.uniform(0.1, 1.0))


async def worker(port: int, calls: int, seconds: float) -> dict[str, int]:
    out = {"ok": 0, "cancelled": 0, "dropped": 0, "failed": 0}
    until = time.monotonic() + seconds
    await asyncio.gather(*(client_loop(port, i, until, out) for i in range(calls)))
    return out


def sample(proc: psutil.Process, port: int) -> dict[str, Any]:
    """One sample; on a starved machine ``/health`` may be late: then its fields are None."""
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).json()
    except httpx.HTTPError as exc:
        print(f"sample: /health failed: {exc!r}", file=sys.stderr)
        health = {}
    return {"t": round(time.time(), 1), "rss_mb": round(proc.memory_info().rss / 2**20, 2),
            "fds": proc.num_fds(), "threads": proc.num_threads(),
            "tasks": health.get("tasks"), "connections": health.get("connections")}


def slope_mb_per_min(samples: list[dict[str, Any]]) -> float | None:
    """Least-squares slope of RSS over time (MB per minute): robust to one noisy sample."""
    if len(samples) < 3:
        return None
    ts = [(s["t"] - samples[0]["t"]) / 60 for s in samples]
    ys = [s["rss_mb"] for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return round(sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var, 4)


def snapshot(server: subprocess.Popen[bytes], folder: Path, n: int) -> Path:
    """Ask the traced server for tracemalloc snapshot ``n`` and wait until it is written."""
    path = folder / f"snapshot-{n}.pickle"
    server.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("no tracemalloc snapshot")
        time.sleep(0.2)
    return path


def grown_sites(before: Path, after: Path, top: int = 15) -> list[dict[str, Any]]:
    """The allocation sites (by traceback) whose live memory grew most between snapshots."""
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    stats = new.compare_to(old, "traceback")
    return [{"kb": round(st.size_diff / 1024, 1), "blocks": st.count_diff,
             "where": [f"{fr.filename}:{fr.lineno}" for fr in st.traceback][-6:]}
            for st in stats[:top] if st.size_diff > 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--warmup-minutes", type=float, default=None,
                    help="excluded from the slope; default a sixth of the run, at least 1 min")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="trace the server's allocations and name the sites that grew")
    ap.add_argument("--out", default=None, help="results file name under benchmarks/results")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    seconds = args.minutes * 60
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker, args.calls, seconds))))
        return
    warmup = 60 * (args.warmup_minutes if args.warmup_minutes is not None
                   else max(1.0, args.minutes / 6))
    port = free_port()
    env = dict(SERVER_ENV)
    argv = None
    trace_dir = Path(tempfile.mkdtemp(prefix="soak-trace-"))
    if args.tracemalloc:
        env["TRACEMALLOC_DIR"] = str(trace_dir)
        argv = [sys.executable, str(Path(__file__).with_name("traced_app.py"))]
    server = start_server(env, port, argv)
    proc = psutil.Process(server.pid)
    snaps: list[Path] = []
    try:
        cmd = [sys.executable, __file__, "--worker", str(port), "--calls", str(args.calls),
               "--minutes", str(args.minutes)]
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        samples = [sample(proc, port)]
        started = time.monotonic()
        while load.poll() is None:
            time.sleep(min(10.0, max(1.0, seconds / 20)))
            samples.append(sample(proc, port))
            if args.tracemalloc and not snaps and time.monotonic() - started >= warmup:
                snaps.append(snapshot(server, trace_dir, 0))
        out = json.loads(load.stdout.read() if load.stdout else b"{}")
        time.sleep(2.0)  # let closes settle
        end = sample(proc, port)
        if args.tracemalloc and snaps:
            snaps.append(snapshot(server, trace_dir, 1))
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    after_warmup = next((s for s in samples if s["t"] - samples[0]["t"] >= warmup), samples[-1])
    steady = [s for s in samples if s["t"] >= after_warmup["t"]]
    growth = {k: round(end[k] - after_warmup[k], 1) for k in ("rss_mb", "fds", "threads", "tasks")
              if end[k] is not None and after_warmup[k] is not None}
    result = {
        "minutes": args.minutes, "calls": args.calls, "server_env": SERVER_ENV,
        "warmup_minutes": round(warmup / 60, 2), "tracemalloc": args.tracemalloc,
        "requests": out, "failed": out.get("failed", 0),
        "start": samples[0], "after_warmup": after_warmup, "end": end, "growth": growth,
        "rss_slope_mb_per_min": slope_mb_per_min(steady),
        "rss_slope_whole_run_mb_per_min": slope_mb_per_min(samples),
        "grown_sites": grown_sites(*snaps) if len(snaps) == 2 else None,
        "samples": samples, "elapsed_s": round(time.monotonic() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.out or ("soak.json" if args.minutes >= 30 else "soak_short.json")
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("requests", "start", "after_warmup", "end",
                                              "growth", "rss_slope_mb_per_min",
                                              "grown_sites")}, indent=1))


if __name__ == "__main__":
    main()
