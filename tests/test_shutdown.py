"""Graceful shutdown of a real ``python -m app`` process on SIGTERM, and its JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import websockets

from tests.servers import free_port
from tests.wsclient import WSClient, is_audio

KEY = "shutdown-test-key"
SECRET_TEXT = "Marguerite, your account number is 4417 and the balance is low."
# What must not reach the logs: words of the text, not its digits, which a client's port
# (127.0.0.1:44174) or a timestamp can contain by chance.
SECRET_WORDS = ("Marguerite", "account number", "balance is low")


def start(port: int, grace: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TTS_ENGINE": "synthetic", "SYNTHETIC_RTF": "1.0",
           "SYNTHETIC_CHUNK_MS": "100", "PORT": str(port), "API_KEYS": KEY,
           "SHUTDOWN_GRACE_SECONDS": str(grace), "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.mark.slow
async def test_sigterm_lets_the_reply_finish_then_closes_1001() -> None:
    port = free_port()
    proc = start(port, grace=15)
    url = f"ws://127.0.0.1:{port}/ws/synthesize-stream?api_key={KEY}"
    try:
        async with await WSClient.connect(url) as ws:
            await ws.send({"type": "init", "voice_id": "default"})
            ready = await ws.recv()
            await ws.send({"type": "text", "content": SECRET_TEXT})
            await ws.send({"type": "end"})
            first = await ws.until(is_audio)
            proc.send_signal(signal.SIGTERM)
            sent_at = time.monotonic()
            await asyncio.sleep(0.2)
            with pytest.raises(httpx.TransportError):  # no longer accepting connections
                async with httpx.AsyncClient() as c:
                    await c.get(f"http://127.0.0.1:{port}/health", timeout=2)
            messages = await ws.until(lambda m: m.get("type") in ("complete", "error"), 20)
            assert messages[-1]["type"] == "complete"  # the reply was not cut
            spoken = "".join(m["text"] for m in messages if m.get("type") == "sentence_complete")
            assert spoken == SECRET_TEXT
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv(5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
            assert time.monotonic() - sent_at > 1.0  # it waited for the audio (real time)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first and ready["type"] == "ready"
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(x) for x in lines)
    assert any(x.get("request_id") == ready["request_id"] for x in lines)
    assert any("draining" in x["message"] for x in lines)
    assert KEY not in stderr
    assert not [word for word in SECRET_WORDS if word in stderr]


@pytest.mark.slow
async def test_grace_period_bounds_the_wait() -> None:
    port = free_port()
    proc = start(port, grace=1.0)
    url = f"ws://127.0.0.1:{port}/ws/synthesize-stream?api_key={KEY}"
    try:
        async with await WSClient.connect(url) as ws:
            await ws.send({"type": "init", "voice_id": "default"})
            await ws.recv()
            await ws.send({"type": "text", "content": "A very long reply. " * 30})
            await ws.send({"type": "end"})
            await ws.until(is_audio)
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    await ws.recv(10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
            assert time.monotonic() - started < 4
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
