"""Time to first audio on ``/ws/synthesize-stream``, and whether playback starves between clauses.

Run: ``.venv/bin/python benchmarks/ttfa.py`` (``--quick`` for a short run).

The service runs as its own process (``python -m app``, over loopback); this script is the
load generator. Each run is one LLM reply streamed as tokens 20-40 ms apart (the pace of a
fast hosted LLM). Time to first audio (TTFA) is measured from sending the token that
completes the first clause (the one that brings the whitespace after its sentence end,
DESIGN.md "Clause texts") to receiving the first audio frame. Scenarios:

1. ``synthetic``: the synthetic engine with no model delay (``SYNTHETIC_RTF=0``, first chunk
   0 ms): what is left is the server's own overhead (segmenter, pipeline, JSON, socket).
2. ``piper``: the Piper CPU engine, one call at a time.
3. ``piper x N``: N concurrent calls (default 10) on one Piper server. Calls start staggered
   over a few seconds and follow a duty cycle: stream a reply (several clauses, ~8 s of
   speech), wait until the caller would have heard it, listen 2-4 s, reply again.

Underrun: for every reply a client that plays the frames in real time from the first one
(no jitter buffer) is simulated. It starves when a frame arrives after the moment it should
start playing; the report gives the longest stall, the stalls at clause boundaries, and the
smallest slack at a clause boundary (how far ahead of playback the next clause arrived).

Also, as a breakdown of where the TTFA goes, a few first clauses are sent on
``/ws/synthesize``, whose final message reports the engine's and the pipeline's share.

Results go to ``benchmarks/results/ttfa.json`` (``ttfa_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.text import ClauseSegmenter  # noqa: E402
from examples.llm_to_wav import llm_tokens  # noqa: E402

FRAME_S = 0.020
CLAUSE_MAX_CHARS = 250  # the server's default CLAUSE_MAX_CHARS: same clauses as the server
REPLIES = [
    "Sure, I can check that for you right now. Your next appointment is on Friday at "
    "3:30 p.m. with Dr. Patel, at the Main Street office. Would you like a reminder by text?",
    "Thanks for waiting, I have your account open. The balance due is $42.50, and autopay "
    "is turned on for the first of the month. Is there anything else I can help with?",
    "Okay, your order has shipped this morning. It should arrive by Tuesday afternoon, and "
    "you will get a tracking link by email. Is there anything else you need today?",
    "Got it, I moved your booking to next Monday. You will get a confirmation by text in a "
    "few minutes, with the new time and the address. Can I help with anything else?",
]
TARGETS = {  # scenario -> {statistic: max ms}
    "synthetic": {"p50": 5.0},
    "piper": {"p50": 60.0, "p95": 120.0},
    "piper_concurrent": {"p95": 250.0},
}


# --- the server under test ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str  # ws:// base
    pid: int


def _clock_s(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return _clock_s(int(fields[11]) + int(fields[12]))


def machine_busy_s() -> float:
    """CPU seconds spent busy by the whole machine (every process), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return _clock_s(sum(values[:8]) - idle)


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def meter(pid: int, out: dict[str, Any]) -> Iterator[None]:
    """Where the CPU went during a scenario: the server, this load generator, everyone else.

    Shares are of the whole machine (1.0 = every CPU busy for the whole run). Other
    processes on a shared machine compete with the server, so ``other_share`` says how
    clean a figure is.
    """
    nproc = len(os.sched_getaffinity(0))
    wall0, server0, self0, busy0 = time.perf_counter(), process_cpu_s(pid), self_cpu_s(), (
        machine_busy_s())
    load0 = os.getloadavg()
    yield
    wall = time.perf_counter() - wall0
    server, own = process_cpu_s(pid) - server0, self_cpu_s() - self0
    busy = machine_busy_s() - busy0
    out["cpu"] = {
        "wall_s": round(wall, 1),
        "server_share": round(server / wall / nproc, 3),
        "load_generator_share": round(own / wall / nproc, 3),
        "other_share": round(max(0.0, busy - server - own) / wall / nproc, 3),
        "loadavg_before": [round(x, 2) for x in load0],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


@contextlib.contextmanager
def server(env: dict[str, str], log_path: Path, timeout: float = 180.0) -> Iterator[Served]:
    """``python -m app`` in a clean directory (no ``.env``); yields its URL and pid."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HOST": "127.0.0.1",
                "PORT": str(port), "LOG_LEVEL": "warning", **env}
    with tempfile.TemporaryDirectory() as cwd, log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=cwd, env=full_env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited; see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server not ready; see {log_path}")
                time.sleep(0.1)
            yield Served(f"ws://127.0.0.1:{port}", proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- one reply ---------------------------------------------------------------------------


@dataclass
class Reply:
    ttfa_ms: float
    first_clause: str
    frames: list[tuple[float, int]] = field(repr=False)  # (arrival, clause) per audio frame
    audio_s: float = 0.0
    max_stall_ms: float = 0.0
    boundary_stall_ms: float = 0.0
    min_boundary_slack_ms: float | None = None
    max_boundary_gap_ms: float | None = None  # last frame of clause N -> first of N+1
    playback_end: float = 0.0
    cycle: int = 0  # the call's n-th reply
    stall_at: tuple[int, int] | None = None  # (clause, frame within it) of the longest stall


def first_clause_token(tokens: list[str]) -> tuple[int, str]:
    """The index of the token that completes the first clause, and that clause."""
    segmenter = ClauseSegmenter(max_chars=CLAUSE_MAX_CHARS)
    for i, token in enumerate(tokens):
        clauses = segmenter.push(token)
        if clauses:
            return i, clauses[0]
    raise ValueError("the reply has no clause boundary before its end")


def playback(reply: Reply) -> None:
    """Simulate real-time playback from the first frame; fill in the underrun figures."""
    frames = reply.frames
    play = frames[0][0]  # when the current frame started playing
    in_clause = 0
    for i in range(1, len(frames)):
        arrival, clause = frames[i]
        in_clause = 0 if clause != frames[i - 1][1] else in_clause + 1
        due = play + FRAME_S
        stall = max(0.0, arrival - due)
        play = max(arrival, due)
        if stall * 1000 > reply.max_stall_ms:
            reply.max_stall_ms = stall * 1000
            reply.stall_at = (clause, in_clause)
        if clause != frames[i - 1][1]:
            slack = (due - arrival) * 1000
            gap = (arrival - frames[i - 1][0]) * 1000
            reply.boundary_stall_ms = max(reply.boundary_stall_ms, stall * 1000)
            reply.min_boundary_slack_ms = (
                slack if reply.min_boundary_slack_ms is None
                else min(reply.min_boundary_slack_ms, slack)
            )
            reply.max_boundary_gap_ms = max(reply.max_boundary_gap_ms or 0.0, gap)
    reply.playback_end = play + FRAME_S
    reply.audio_s = len(frames) * FRAME_S


async def one_reply(ws: ClientConnection, text: str, rng: random.Random) -> Reply:
    """Stream ``text`` at LLM pace on an initialised session; time it until ``complete``."""
    tokens = llm_tokens(text)
    completing, expected = first_clause_token(tokens)
    marked: list[float] = []

    async def send() -> None:
        for i, token in enumerate(tokens):
            await asyncio.sleep(rng.uniform(0.020, 0.040))
            if i == completing:
                marked.append(time.perf_counter())
            await ws.send(json.dumps({"type": "text", "content": token}))
        await ws.send('{"type":"end"}')

    sender = asyncio.create_task(send())
    frames: list[tuple[float, int]] = []
    clause = 0
    first_clause = None
    try:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "audio":
                if not marked:
                    raise RuntimeError("audio before the first clause was complete")
                frames.append((now, clause))
            elif kind == "sentence_complete":
                if first_clause is None:
                    first_clause = message["text"]
                clause += 1
            elif kind == "complete":
                break
            elif "error" in message:
                raise RuntimeError(f"server error: {message}")
    finally:
        await sender
    if first_clause != expected:
        raise RuntimeError(f"first clause {first_clause!r}, expected {expected!r}")
    reply = Reply((frames[0][0] - marked[0]) * 1000, expected, frames)
    playback(reply)
    return reply


async def open_session(url: str, api_key: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    ws = await connect(url + "/ws/synthesize-stream", additional_headers=headers,
                       max_size=2**22, compression=None)
    await ws.send(json.dumps({"type": "init", "voice_id": "default", "preset": "adaptive"}))
    ready = json.loads(await ws.recv())
    if ready.get("type") != "ready":
        raise RuntimeError(f"init refused: {ready}")
    return ws


# --- scenarios ---------------------------------------------------------------------------


async def sequential(url: str, runs: int, warmup: int, seed: int, api_key: str | None,
                     ) -> list[Reply]:
    rng = random.Random(seed)
    out: list[Reply] = []
    async with await open_session(url, api_key) as ws:
        for i in range(warmup + runs):
            reply = await one_reply(ws, REPLIES[i % len(REPLIES)], rng)
            if i >= warmup:
                out.append(reply)
    return out


async def concurrent(url: str, calls: int, runs: int, stagger_s: float,
                     listen_s: tuple[float, float], seed: int, api_key: str | None,
                     ) -> list[Reply]:
    """``calls`` calls with a duty cycle, until ``runs`` replies are measured in all."""
    per_call = math.ceil(runs / calls)

    async def call(n: int) -> list[Reply]:
        rng = random.Random(seed * 1000 + n)
        await asyncio.sleep(stagger_s * n / calls)
        out = []
        async with await open_session(url, api_key) as ws:
            for i in range(per_call):
                reply = await one_reply(ws, REPLIES[(n + i) % len(REPLIES)], rng)
                reply.cycle = i
                out.append(reply)
                # The caller hears the rest of the reply, then speaks for a while.
                hear = max(0.0, reply.playback_end - time.perf_counter())
                await asyncio.sleep(hear + rng.uniform(*listen_s))
        return out

    results = await asyncio.gather(*(call(n) for n in range(calls)))
    return [r for replies in results for r in replies]


async def breakdown(url: str, probes: int) -> dict[str, float]:
    """Median server-side share of the first clause's latency, from ``/ws/synthesize``."""
    rows: list[dict[str, float]] = []
    async with connect(url + "/ws/synthesize", max_size=2**22) as ws:
        for i in range(probes):
            tokens = llm_tokens(REPLIES[i % len(REPLIES)])
            text = first_clause_token(tokens)[1].strip()
            sent = time.perf_counter()
            first = None
            await ws.send(json.dumps({"text": text, "voice_id": "default", "preset": "adaptive"}))
            async for raw in ws:
                message = json.loads(raw)
                if first is None and message.get("audio"):
                    first = (time.perf_counter() - sent) * 1000
                if message.get("is_final") or "error" in message:
                    break
            latency = message.get("latency", {})
            rows.append({
                "client_first_frame_ms": first or float("nan"),
                "server_first_chunk_ms": message.get("first_chunk_ms", float("nan")),
                **{k: float(v) for k, v in latency.items() if isinstance(v, int | float)},
            })
    keys = rows[0].keys()
    return {k: round(statistics.median(r[k] for r in rows if k in r), 3) for k in keys}


# --- reporting ---------------------------------------------------------------------------


def summarize(replies: list[Reply]) -> dict[str, Any]:
    ttfa = np.array([r.ttfa_ms for r in replies])
    slack = [r.min_boundary_slack_ms for r in replies if r.min_boundary_slack_ms is not None]
    gaps = [r.max_boundary_gap_ms for r in replies if r.max_boundary_gap_ms is not None]
    return {
        "n": len(replies),
        "ttfa_ms": {
            "p50": round(float(np.percentile(ttfa, 50)), 2),
            "p95": round(float(np.percentile(ttfa, 95)), 2),
            "p99": round(float(np.percentile(ttfa, 99)), 2),
            "mean": round(float(ttfa.mean()), 2),
            "min": round(float(ttfa.min()), 2),
            "max": round(float(ttfa.max()), 2),
        },
        "underrun": {
            "max_stall_ms": round(max(r.max_stall_ms for r in replies), 2),
            "max_stall_at_clause_boundary_ms": round(max(r.boundary_stall_ms for r in replies),
                                                     2),
            "replies_with_a_stall": sum(r.max_stall_ms > 0 for r in replies),
            "min_slack_at_clause_boundary_ms": round(min(slack), 1) if slack else None,
            "max_gap_between_clauses_ms": round(max(gaps), 1) if gaps else None,
        },
        "audio_s_per_reply": round(statistics.mean(r.audio_s for r in replies), 2),
        "first_clauses": sorted({r.first_clause for r in replies}),
        # Every reply: [the call's n-th reply, TTFA ms, longest stall ms, and where it was:
        # clause, frame within the clause] (the last two null without a stall).
        "samples": [[r.cycle, round(r.ttfa_ms, 2), round(r.max_stall_ms, 1),
                     *(r.stall_at or (None, None))] for r in replies],
    }


def verdict(name: str, summary: dict[str, Any]) -> tuple[str, bool]:
    targets = TARGETS[name]
    checks = [(f"{k}<={v:g}", summary["ttfa_ms"][k] <= v) for k, v in targets.items()]
    return ", ".join(c for c, _ in checks), all(ok for _, ok in checks)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run: 12 replies per scenario")
    ap.add_argument("--runs", type=int, default=50, help="measured replies per scenario")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured replies first")
    ap.add_argument("--concurrency", type=int, default=10, help="calls in the concurrent run")
    ap.add_argument("--stagger", type=float, default=3.0, help="seconds over which calls start")
    ap.add_argument("--listen", type=float, nargs=2, default=(2.0, 4.0), metavar=("MIN", "MAX"),
                    help="seconds a caller speaks between replies")
    ap.add_argument("--probes", type=int, default=20, help="/ws/synthesize breakdown requests")
    ap.add_argument("--piper-workers", type=int, help="PIPER_WORKERS for the server")
    ap.add_argument("--piper-threads", type=int, help="PIPER_THREADS for the server")
    ap.add_argument("--piper-scheduling", choices=["deadline", "fifo"],
                    help="PIPER_SCHEDULING for the server (fifo: the baseline)")
    ap.add_argument("--only", nargs="+", choices=list(TARGETS))
    ap.add_argument("--api-key", default=None, help="sent as a bearer token, if auth is on")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.runs, args.warmup, args.probes = min(args.runs, 12), 1, min(args.probes, 5)
    out_path = args.out or ROOT / "benchmarks/results" / (
        "ttfa_quick.json" if args.quick else "ttfa.json")
    only = set(args.only or TARGETS)
    logs = Path(tempfile.mkdtemp(prefix="ttfa-logs-"))

    piper_env = {"TTS_ENGINE": "piper",
                 "MAX_CONCURRENT_STREAMS": str(max(16, args.concurrency + 2))}
    if args.piper_workers:
        piper_env["PIPER_WORKERS"] = str(args.piper_workers)
    if args.piper_threads:
        piper_env["PIPER_THREADS"] = str(args.piper_threads)
    if args.piper_scheduling:
        piper_env["PIPER_SCHEDULING"] = args.piper_scheduling
    synthetic_env = {"TTS_ENGINE": "synthetic", "SYNTHETIC_RTF": "0",
                     "SYNTHETIC_FIRST_CHUNK_MS": "0"}
    results: dict[str, Any] = {
        "settings": {
            "runs": args.runs, "warmup": args.warmup, "concurrency": args.concurrency,
            "stagger_s": args.stagger, "listen_s": list(args.listen),
            "token_pace_ms": [20, 40], "preset": "adaptive", "voice_id": "default",
            "replies": REPLIES, "ttfa_from": "send of the token completing the first clause",
            "transport": "loopback; server is a separate `python -m app` process",
            "server_env": {"synthetic": synthetic_env, "piper": piper_env},
            "machine": machine(),
        },
        "targets_ms": TARGETS,
        "scenarios": {},
    }

    def record(name: str, replies: list[Reply], **extra: Any) -> None:
        summary = summarize(replies)
        summary.update(extra)
        targets, ok = verdict(name, summary)
        summary["targets"], summary["pass"] = targets, ok
        results["scenarios"][name] = summary
        cpu = summary.get("cpu", {})
        print(f"  {name}: n={summary['n']} p50={summary['ttfa_ms']['p50']} ms "
              f"p95={summary['ttfa_ms']['p95']} ms  [{'PASS' if ok else 'FAIL'}]  CPU share: "
              f"server {cpu.get('server_share')}, load generator "
              f"{cpu.get('load_generator_share')}, other processes {cpu.get('other_share')}",
              flush=True)

    if "synthetic" in only:
        print("synthetic engine, RTF 0 (server overhead)...", flush=True)
        with server(synthetic_env, logs / "synthetic.log") as srv:
            cpu: dict[str, Any] = {}
            with meter(srv.pid, cpu):
                replies = asyncio.run(
                    sequential(srv.url, args.runs, args.warmup, args.seed, args.api_key))
            parts = asyncio.run(breakdown(srv.url, args.probes))
            record("synthetic", replies, first_clause_breakdown_ms=parts, **cpu)
    if only & {"piper", "piper_concurrent"}:
        with server(piper_env, logs / "piper.log") as srv:
            if "piper" in only:
                print("piper, one call...", flush=True)
                cpu = {}
                with meter(srv.pid, cpu):
                    replies = asyncio.run(
                        sequential(srv.url, args.runs, args.warmup, args.seed, args.api_key))
                parts = asyncio.run(breakdown(srv.url, args.probes))
                record("piper", replies, first_clause_breakdown_ms=parts, **cpu)
            if "piper_concurrent" in only:
                print(f"piper, {args.concurrency} concurrent calls...", flush=True)
                cpu = {}
                with meter(srv.pid, cpu):
                    replies = asyncio.run(concurrent(
                        srv.url, args.concurrency, args.runs, args.stagger, tuple(args.listen),
                        args.seed, args.api_key))
                record("piper_concurrent", replies, calls=args.concurrency, **cpu)

    print_table(results)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out_path} (server logs in {logs})")


def print_table(results: dict[str, Any]) -> None:
    m = results["settings"]["machine"]
    print(f"\nTTFA over loopback, {m['nproc']} CPUs ({m['cpu']}), "
          f"tokens every 20-40 ms, preset adaptive")
    head = (f"{'scenario':<24} {'n':>4} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} | "
            f"{'stall':>7} {'slack':>7} | {'CPU':>5} {'other':>5} | {'target':<20} result")
    print(head)
    print(f"{'':<24} {'':>4} {'ms':>8} {'ms':>8} {'ms':>8} {'ms':>8} | "
          f"{'max ms':>7} {'min ms':>7} | {'srv':>5} {'procs':>5} |")
    print("-" * len(head))
    for name, s in results["scenarios"].items():
        t, u, cpu = s["ttfa_ms"], s["underrun"], s.get("cpu", {})
        label = f"piper x{s['calls']}" if name == "piper_concurrent" else name
        slack = u["min_slack_at_clause_boundary_ms"]
        print(f"{label:<24} {s['n']:>4} {t['p50']:>8.1f} {t['p95']:>8.1f} {t['p99']:>8.1f} "
              f"{t['max']:>8.1f} | {u['max_stall_ms']:>7.1f} "
              f"{slack if slack is not None else float('nan'):>7.0f} | "
              f"{cpu.get('server_share', float('nan')):>5.0%} "
              f"{cpu.get('other_share', float('nan')):>5.0%} | "
              f"{s['targets']:<20} {'PASS' if s['pass'] else 'FAIL'}")
    print("stall: longest a real-time player (no jitter buffer) starved in any reply; "
          "slack: least\naudio buffered ahead of playback when a clause's first frame arrived. "
          "CPU: share of the\nmachine used by the server / by other processes (not this "
          "benchmark) during the run.")
    for name, s in results["scenarios"].items():
        if "first_clause_breakdown_ms" in s:
            print(f"{name}: first clause alone on /ws/synthesize (medians, ms): "
                  + ", ".join(f"{k}={v:g}" for k, v in s["first_clause_breakdown_ms"].items()))


if __name__ == "__main__":
    main()
