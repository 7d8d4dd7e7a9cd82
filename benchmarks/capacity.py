"""Capacity: how many concurrent real-time calls one replica carries without a glitch.

Run: ``.venv/bin/python benchmarks/capacity.py --engine synthetic --n 50,100,200,300``
(``--engine piper --n 5,10,20,30`` for the CPU engine; ``--quick`` for a short sweep). On a
GPU with Chatterbox weights: ``--engine chatterbox --preset adaptive --n 1,4,8,16,32``
(``CHATTERBOX_MODEL`` and the decoder settings come from the environment): the end-to-end
figure for calls per GPU, where a first chunk too short to cover the wait for the second
shows as ``underruns_first_second``.

The service runs as its own process (``python -m app`` on loopback) and the calls run in a
separate load-generator process (this script re-executed with ``--worker``), so the
client's work is not counted in the server's process. For each N:

- N calls start staggered over ``--stagger`` seconds; each is one ``/ws/synthesize-stream``
  connection (one slot) with a duty cycle: stream a reply of 5-15 s of speech as 4-character
  tokens 30 ms apart, ``end``, wait until the caller has heard it, listen 2-4 s, reply again,
  for ``--seconds``.
- Every call plays its frames on a real-time clock behind a 60 ms jitter buffer: playback
  of a reply starts 60 ms after its first frame, frame k is due 20 ms later than frame
  k-1; a frame that arrives after it is due is an underrun (the player re-buffers 60 ms).
  Underruns in a reply's first second of audio are also counted apart: there the
  engine's first chunk must cover the time until its second one arrives.
- Time to first audio (TTFA) is measured from sending the token that completes the first
  clause (the space after its full stop) to the first audio frame of that reply.

The capacity is the largest N with zero underruns and p95 TTFA within 250 ms. Results:
``benchmarks/results/capacity_<engine>.json`` and ``capacity_<engine>.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
JITTER_S = 0.060
FRAME_S = 0.020
TTFA_LIMIT_MS = 250.0

WORDS = ("your appointment is confirmed for tomorrow morning and the doctor will see you "
         "at the front desk please bring your insurance card and a list of medicines").split()


def reply_text(rng: random.Random, seconds: float) -> str:
    """About ``seconds`` of speech (synthetic: ~12 characters a second), in sentences."""
    chars = int(seconds * 12)
    sentences, n = [], 0
    while n < chars:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 12))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        n += len(sentence) + 1
    return " ".join(sentences) + " "


async def one_call(url: str, seed: int, start_at: float, until: float,
                   out: dict[str, Any], preset: str | None = None) -> None:
    from websockets.asyncio.client import connect

    rng = random.Random(seed)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    try:
        async with connect(url, max_size=2**24, open_timeout=30) as ws:
            init = {"type": "init", "voice_id": "default"}
            if preset:
                init["preset"] = preset
            await ws.send(json.dumps(init))
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                out["refused"] += 1
                return
            while time.monotonic() < until:
                await one_reply(ws, rng, out)
                await asyncio.sleep(rng.uniform(2.0, 4.0))  # the caller talks
    except Exception as exc:  # noqa: BLE001 - counted, the run goes on
        out["failed"] += 1
        out["errors"].append(type(exc).__name__)


async def one_reply(ws: Any, rng: random.Random, out: dict[str, Any]) -> None:
    text = reply_text(rng, rng.uniform(5, 15))
    tokens = [text[i:i + 4] for i in range(0, len(text), 4)]
    clause_sent: list[float] = []

    async def sender() -> None:
        sent = ""
        for tok in tokens:
            await ws.send(json.dumps({"type": "text", "content": tok}))
            sent += tok
            if not clause_sent and ". " in sent:
                clause_sent.append(time.perf_counter())
            await asyncio.sleep(0.03)
        await ws.send(json.dumps({"type": "end"}))

    task = asyncio.create_task(sender())
    first: float | None = None
    playhead = 0.0  # when the next frame is due
    underruns = early = 0
    while True:
        msg = json.loads(await ws.recv())
        now = time.perf_counter()
        kind = msg.get("type")
        if kind == "audio":
            if first is None:
                first = now
                playhead = now + JITTER_S
            elif now > playhead:
                underruns += 1
                early += playhead - first < 1.0 + JITTER_S
                playhead = now + JITTER_S  # re-buffer
            playhead += FRAME_S
        elif kind == "complete":
            break
        elif kind == "error":
            out["errors"].append(msg.get("code"))
            break
    await task
    out["replies"] += 1
    out["underruns"] += underruns
    out["underruns_first_second"] += early
    if first is not None and clause_sent:
        out["ttfa_ms"].append((first - clause_sent[0]) * 1000)
    await asyncio.sleep(max(0.0, playhead - time.perf_counter()))  # until it was heard


async def worker(url: str, n: int, seconds: float, stagger: float,
                 preset: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"replies": 0, "underruns": 0, "underruns_first_second": 0,
                           "ttfa_ms": [], "refused": 0, "failed": 0, "errors": []}
    t0 = time.monotonic() + 0.5
    calls = [one_call(url, i, t0 + stagger * i / n, t0 + stagger + seconds, out, preset)
             for i in range(n)]
    await asyncio.gather(*calls)
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env_extra: dict[str, str], port: int, argv: list[str] | None = None,
                 timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """``python -m app`` (or ``argv``) on ``port``, once ``/ready`` answers 200."""
    env = {**os.environ, "PORT": str(port), "LOG_LEVEL": "warning", **env_extra}
    proc = subprocess.Popen(argv or [sys.executable, "-m", "app"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def run_point(engine_env: dict[str, str], n: int, seconds: float, stagger: float,
              preset: str | None = None, startup_s: float = 60.0) -> dict[str, Any]:
    port = free_port()
    env = {**engine_env, "MAX_CONCURRENT_STREAMS": str(n + 8), "MAX_CONNECTIONS": str(n + 64)}
    server = start_server(env, port, timeout=startup_s)
    try:
        cmd = [sys.executable, __file__, "--worker", f"ws://127.0.0.1:{port}/ws/synthesize-stream",
               "--n", str(n), "--seconds", str(seconds), "--stagger", str(stagger)]
        if preset:
            cmd += ["--preset", preset]
        raw = subprocess.run(cmd, capture_output=True, check=True, timeout=seconds + 300).stdout
        out = json.loads(raw)
    finally:
        server.terminate()
        server.wait(30)
    ttfa = out.pop("ttfa_ms")
    out["errors"] = sorted(set(out["errors"]))[:10]
    out.update(n=n, ttfa_p50_ms=pct(ttfa, 0.5), ttfa_p95_ms=pct(ttfa, 0.95),
               ttfa_max_ms=pct(ttfa, 1.0), samples=len(ttfa))
    out["ok"] = (out["underruns"] == 0 and out["failed"] == 0 and out["refused"] == 0
                 and out["ttfa_p95_ms"] is not None and out["ttfa_p95_ms"] <= TTFA_LIMIT_MS)
    return out


def plot(points: list[dict[str, Any]], engine: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [p["n"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ns, [p["ttfa_p95_ms"] or 0 for p in points], "o-", label="p95 TTFA (ms)")
    ax.axhline(TTFA_LIMIT_MS, color="grey", ls="--", lw=1)
    ax.set_xlabel("concurrent calls (N)")
    ax.set_ylabel("p95 time to first audio (ms)")
    ax2 = ax.twinx()
    ax2.bar(ns, [p["underruns"] for p in points], width=max(1, min(ns) * 0.3), alpha=0.3,
            color="red", label="underruns")
    ax2.set_ylabel("underruns (frames late)")
    ax.set_title(f"Capacity, {engine} engine (60 ms jitter buffer)")
    fig.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


ENGINES = {
    # The server's own capacity: an engine as fast as a big GPU with no model cost.
    "synthetic": {"TTS_ENGINE": "synthetic", "SYNTHETIC_RTF": "0.02",
                  "SYNTHETIC_FIRST_CHUNK_MS": "0", "SYNTHETIC_CHUNK_MS": "200"},
    "piper": {"TTS_ENGINE": "piper"},
    # Model, weights and decoder settings from the environment (CHATTERBOX_MODEL, ...).
    "chatterbox": {"TTS_ENGINE": "chatterbox"},
}
DEFAULT_N = {"synthetic": "50,100,200,300,400", "piper": "5,10,20,30,40",
             "chatterbox": "1,4,8,16,32"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=list(ENGINES), default="synthetic")
    ap.add_argument("--n", default=None, help="comma-separated N values")
    ap.add_argument("--seconds", type=float, default=30.0, help="load per N after the stagger")
    ap.add_argument("--stagger", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--preset", default=None, help="preset every call asks for in its init")
    ap.add_argument("--startup-timeout", type=float, default=None,
                    help="seconds for the server to become ready (default 60; chatterbox 900: "
                    "loading and measuring its budget)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        out = asyncio.run(worker(args.worker, int(args.n), args.seconds, args.stagger,
                                 args.preset))
        print(json.dumps(out))
        return
    ns = [int(x) for x in (args.n or DEFAULT_N[args.engine]).split(",")]
    startup_s = args.startup_timeout or (900.0 if args.engine == "chatterbox" else 60.0)
    seconds = 12.0 if args.quick else args.seconds
    points = []
    for n in ns:
        point = run_point(ENGINES[args.engine], n, seconds, args.stagger, args.preset,
                          startup_s)
        points.append(point)
        print(json.dumps(point), flush=True)
    capacity = max((p["n"] for p in points if p["ok"]), default=0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "engine": args.engine,
        "capacity": capacity,
        "criteria": {"underruns": 0, "ttfa_p95_ms_max": TTFA_LIMIT_MS, "jitter_buffer_ms": 60},
        "settings": {"server_env": ENGINES[args.engine], "preset": args.preset,
                     "seconds_per_n": seconds,
                     "stagger_s": args.stagger, "reply_s": "5-15", "listen_s": "2-4",
                     "token": "4 chars every 30 ms", "transport": "loopback",
                     "load_generator": "one separate process"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "points": points,
    }
    name = f"capacity_{args.engine}" + (f"_{args.preset}" if args.preset else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(points, args.engine, RESULTS / f"{name}.png")
    print(f"capacity ({args.engine}): {capacity} calls")


if __name__ == "__main__":
    main()
