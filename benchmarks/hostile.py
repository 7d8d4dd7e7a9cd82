"""What each hostile input costs a replica now (the README's reliability figures).

Run: ``.venv/bin/python benchmarks/hostile.py`` (about a minute). Starts ``python -m app``
(synthetic engine, ``API_KEYS`` set, a local voice store holding the hostile clips, a
Twilio webhook configured) and measures from outside, with psutil and ``/proc``:

- a 1 GB body to ``/synthesize`` without a key, declared (Content-Length) and chunked:
  bytes the client got to send before the answer, the answer, seconds, RSS growth;
- a 200 MB request header line: the answer and RSS growth;
- 1,000 unfinished chunked bodies: ``/health`` latency while they are open, and how long
  until the server has answered them all (408) and closed them;
- the FLAC bomb (8 ch, 655,350 Hz, 60 s) and a 64-byte 1 Hz WAV as voices: the answer and
  the peak-RSS growth (``VmHWM``);
- 100 replays of one signed webhook: answers, warmups started, slots in use at most;
- ``?api%5Fkey=KEY``: lines of the log that contain the key.

Results: ``benchmarks/results/hostile.json``.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity import RESULTS, free_port, start_server  # noqa: E402

from app.api.twilio import twilio_signature  # noqa: E402
from tests.hostile_clips import flac_bomb, tiny_wav  # noqa: E402

KEY = "hostile-bench-key"
TOKEN = "hostile-token"
PUBLIC = "https://tts.example.com"
MB = 1 << 20


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """Highest RSS of a process while the block runs (sampled every 5 ms)."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.peak, self._stop = proc, 0.0, threading.Event()

    def __enter__(self) -> Peak:
        self.base = self.proc.memory_info().rss / MB
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss / MB)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> float:
        return round(max(0.0, self.peak - self.base), 1)


def send_until_answered(port: int, head: bytes, piece: bytes, total: int) -> dict[str, Any]:
    """Send ``head`` then up to ``total`` bytes of ``piece``s until the server answers."""
    sock = socket.create_connection(("127.0.0.1", port))
    sent, answer, started = 0, b"", time.perf_counter()
    sock.sendall(head)
    sock.setblocking(False)
    try:
        while sent < total:
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            try:
                sent += sock.send(piece)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
    return {"status": status, "sent_mb": round(sent / MB, 1),
            "seconds": round(time.perf_counter() - started, 3)}


def big_bodies(port: int, proc: psutil.Process) -> dict[str, Any]:
    out = {}
    for name, framing in (("declared", b"Content-Length: %d\r\n" % (1 << 30)),
                          ("chunked", b"Transfer-Encoding: chunked\r\n")):
        head = (b"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + framing + b"\r\n")
        piece = b"0" * MB if name == "declared" else b"100000\r\n" + b"0" * MB + b"\r\n"
        with Peak(proc) as peak:
            result = send_until_answered(port, head, piece, 1 << 30)
        out[name] = {**result, "rss_growth_mb": peak.growth}
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
    with Peak(proc) as peak:
        result = send_until_answered(port, head, b"a" * MB, 200 * MB)
    out["header_200mb"] = {**result, "rss_growth_mb": peak.growth}
    return out


def slow_bodies(port: int, proc: psutil.Process, timeout_s: float) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    head = (b"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tex")
    fds = proc.num_fds()
    socks = []
    started = time.monotonic()
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head)
        socks.append(s)
    while proc.num_fds() < fds + 990 and time.monotonic() - started < timeout_s:
        time.sleep(0.02)
    t = time.perf_counter()
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).status_code
    health_ms = round((time.perf_counter() - t) * 1000, 1)
    while proc.num_fds() > fds + 10 and time.monotonic() - started < timeout_s + 60:
        time.sleep(0.05)
    closed_after = round(time.monotonic() - started, 1)
    answers: dict[int, int] = {}
    for s in socks:
        s.settimeout(5)
        try:
            status = int(s.recv(100).split(b" ", 2)[1])
        except (OSError, IndexError, ValueError):
            status = 0
        answers[status] = answers.get(status, 0) + 1
        s.close()
    return {"health_status_while_open": health, "health_ms": health_ms,
            "all_closed_after_s": closed_after, "answers": answers,
            "body_timeout_s": timeout_s}


def clips(port: int, proc: psutil.Process) -> dict[str, Any]:
    out = {}
    for voice in ("bomb", "hertz"):
        before = vm_hwm_mb(proc.pid)
        t = time.perf_counter()
        r = httpx.post(f"http://127.0.0.1:{port}/synthesize", headers={"X-API-Key": KEY},
                       json={"text": "Hello.", "voice_id": voice}, timeout=120)
        out[voice] = {"status": r.status_code, "error": r.json().get("error"),
                      "seconds": round(time.perf_counter() - t, 3),
                      "peak_rss_growth_mb": round(vm_hwm_mb(proc.pid) - before, 1)}
    return out


def replays(port: int) -> dict[str, Any]:
    params = {"CallSid": "CA1", "From": "+15550001111", "voice_id": "default"}
    sig = twilio_signature(TOKEN, PUBLIC + "/twilio/voice", list(params.items()))
    peak_slots = 0
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for _ in range(100):
            r = c.post("/twilio/voice", content=urlencode(params), headers={
                "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            health = c.get("/health", headers={"X-API-Key": KEY}).json()
            peak_slots = max(peak_slots, health["capacity"]["in_use"])
        time.sleep(1.0)
        warmups = c.get("/health", headers={"X-API-Key": KEY}).json()["warmups"]
    return {"answers": statuses, "warmups_started": warmups["started"],
            "slots_in_use_max": peak_slots}


def key_in_logs(port: int, log_path: Path) -> dict[str, Any]:
    r = httpx.post(f"http://127.0.0.1:{port}/synthesize?api%5Fkey={KEY}",
                   json={"text": "Hi.", "voice_id": "default"}, timeout=60)
    time.sleep(0.5)
    lines = log_path.read_text(errors="replace").splitlines()
    return {"status": r.status_code, "log_lines": len(lines),
            "lines_with_key": sum(KEY in line for line in lines)}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    voices = tmp / "voices"
    for name, data in (("bomb", flac_bomb()), ("hertz", tiny_wav())):
        (voices / name).mkdir(parents=True)
        (voices / name / "sample.wav").write_bytes(data)
    log_path = tmp / "server.log"
    body_timeout = 5.0
    env = {"TTS_ENGINE": "synthetic", "API_KEYS": KEY, "VOICES_DIR": str(voices),
           "VOICE_CACHE_DIR": str(tmp / "cache"), "TWILIO_AUTH_TOKEN": TOKEN,
           "TWILIO_STREAM_URL": "wss://bridge.example.com/media", "PUBLIC_BASE_URL": PUBLIC,
           "REQUEST_BODY_TIMEOUT_S": str(body_timeout), "LOG_LEVEL": "info",
           "LOG_FORMAT": "json"}
    port = free_port()
    os.environ["HOSTILE_LOG"] = str(log_path)
    server = start_server(env, port, [sys.executable, "-c", (
        "import os, sys; sys.stderr = open(os.environ['HOSTILE_LOG'], 'w', buffering=1); "
        "from app.__main__ import main; main()")])
    proc = psutil.Process(server.pid)
    try:
        result = {"rss_start_mb": round(proc.memory_info().rss / MB, 1),
                  "big_bodies": big_bodies(port, proc),
                  "slow_bodies": slow_bodies(port, proc, body_timeout),
                  "clips": clips(port, proc), "webhook_replays": replays(port),
                  "key_in_logs": key_in_logs(port, log_path)}
        result["rss_end_mb"] = round(proc.memory_info().rss / MB, 1)
    finally:
        server.terminate()
        server.wait(60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
