"""Limits and overload over real sockets: rates, sizes, idle, connections, slow readers."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
import websockets

from app.connections import RateLimiter
from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio

LONG = "This is a long reply that keeps the engine busy for a while. " * 4


def closed_code(exc: websockets.ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


async def closed_with(ws: WSClient, within: float = 10.0) -> int | None:
    try:
        while True:
            await ws.recv(within)
    except websockets.ConnectionClosed as exc:
        return closed_code(exc)


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    assert sum(limiter.allow() for _ in range(50)) == 20  # burst of twice the rate
    now[0] += 1.0
    assert sum(limiter.allow() for _ in range(50)) == 10


async def test_message_flood_is_refused_with_rate_limited_and_the_socket_stays_open() -> None:
    with live_server(make_settings(ws_messages_per_second=20)) as s:
        async with await WSClient.connect(s.ws + "/ws/synthesize-stream") as ws:
            for _ in range(100):
                await ws.send({"type": "bogus"})
            codes = [(await ws.recv())["code"] for _ in range(100)]
            assert codes.count("rate_limited") >= 50
            assert codes.count("unknown_type") <= 45
            await asyncio.sleep(1.0)
            await ws.send({"type": "init", "voice_id": "default"})
            assert (await ws.recv())["type"] == "ready"


async def test_session_text_limit_and_message_size_limit() -> None:
    settings = make_settings(max_session_text_length=100, ws_max_message_bytes=2048)
    with live_server(settings) as s:
        async with await WSClient.connect(s.ws + "/ws/synthesize") as ws:
            await ws.send({"text": "a" * 60, "voice_id": "default"})
            await ws.until(lambda m: m.get("is_final") is True or "error" in m)
            await ws.send({"text": "b" * 60, "voice_id": "default"})
            error = await ws.until(lambda m: "error" in m)
            assert error[-1]["code"] == "text_too_long"
        async with await WSClient.connect(s.ws + "/ws/synthesize-stream") as ws:
            await ws.send({"type": "init", "voice_id": "default"})
            await ws.recv()
            await ws.send({"type": "text", "content": "x" * 101})
            assert (await ws.recv())["code"] == "text_too_long"
            await ws.send("{" + " " * 4096 + "}")
            assert await closed_with(ws) == 1009


async def test_idle_session_is_closed_after_the_timeout() -> None:
    with live_server(make_settings(session_idle_timeout_s=0.5)) as s:
        async with await WSClient.connect(s.ws + "/ws/synthesize-stream") as ws:
            started = time.monotonic()
            error = await ws.recv(5)
            assert error["code"] == "idle_timeout"
            assert await closed_with(ws) == 1000
            assert 0.4 < time.monotonic() - started < 3
        assert s.runtime.connections.count() == 0


async def test_connection_and_per_key_limits_close_with_1013() -> None:
    settings = make_settings(max_connections=2, api_keys="k1,k2", max_sessions_per_key=1)
    with live_server(settings) as s:
        url = s.ws + "/ws/synthesize-stream?api_key="
        async with await WSClient.connect(url + "k1") as a:
            second = await WSClient.connect(url + "k1")
            assert await closed_with(second) == 1013  # same key
            async with await WSClient.connect(url + "k2") as b:
                third = await WSClient.connect(url + "k2")
                assert await closed_with(third) == 1013  # replica full
                await a.send({"type": "init", "voice_id": "default"})
                assert (await a.recv())["type"] == "ready"
                await b.send({"type": "init", "voice_id": "default"})
                assert (await b.recv())["type"] == "ready"
        async with httpx.AsyncClient() as c:
            health = (await c.get(s.http + "/health")).json()
        assert health["connections"] == 0 and health["capacity"]["in_use"] == 0


async def test_slow_reader_is_closed_with_1008_and_frees_its_slot() -> None:
    settings = make_settings(ws_send_buffer_seconds=0.5, max_concurrent_streams=1,
                             max_text_length=100_000)
    with live_server(settings) as s:
        # A client that stops reading: a tiny receive buffer so the server sees it at once.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", s.port))
        sock.setblocking(False)
        ws = await websockets.connect(s.ws + "/ws/synthesize-stream", max_size=2**24,
                                      max_queue=1, sock=sock)
        await ws.send('{"type": "init", "voice_id": "default"}')
        assert '"ready"' in await ws.recv()
        assert s.runtime.capacity.in_use == 1
        for _ in range(40):
            await ws.send('{"type": "text", "content": "' + LONG + '"}')
        await ws.send('{"type": "end"}')
        # Stop reading; the server must give the slot back by itself.
        deadline = time.monotonic() + 120  # synthesis is slower on a loaded machine
        while time.monotonic() < deadline:
            if not s.runtime.capacity.in_use:
                break
            await asyncio.sleep(0.1)
        assert s.runtime.capacity.in_use == 0
        errors = []
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                raw = await asyncio.wait_for(ws.recv(), 10)
                if '"error"' in raw:
                    errors.append(raw)
        assert closed_code(info.value) == 1008
        assert info.value.rcvd is not None and info.value.rcvd.reason == "slow_consumer"
        assert len(errors) == 1 and json.loads(errors[0])["code"] == "slow_consumer"
        async with await WSClient.connect(s.ws + "/ws/synthesize-stream") as fresh:
            await fresh.send({"type": "init", "voice_id": "default"})
            assert (await fresh.recv())["type"] == "ready"


@pytest.fixture
def gpu_like() -> LiveServer:
    """Real-time synthetic engine with a 150 ms first chunk and 4 slots."""
    return LiveServer(make_settings(synthetic_rtf=0.3, synthetic_first_chunk_ms=150,
                                    synthetic_chunk_ms=100, max_concurrent_streams=4))


async def first_audio_ms(server: LiveServer) -> tuple[float | None, str | None, WSClient]:
    ws = await WSClient.connect(server.ws + "/ws/synthesize-stream")
    await ws.send({"type": "init", "voice_id": "default"})
    ready = await ws.recv()
    if ready.get("type") != "ready":
        return None, ready.get("code"), ws
    sent = time.perf_counter()
    await ws.send({"type": "text", "content": "Hello, this is your pharmacy calling. "})
    messages = await ws.until(lambda m: is_audio(m) or "error" in m)
    return (messages[-1]["_t"] - sent) * 1000, None, ws


async def test_overload_refuses_the_excess_at_once_and_keeps_admitted_ttfa(
    gpu_like: LiveServer,
) -> None:
    gpu_like.start()
    try:
        alone, _, ws = await first_audio_ms(gpu_like)
        await ws.close()
        assert alone is not None
        started = time.perf_counter()
        results = await asyncio.gather(*(first_audio_ms(gpu_like) for _ in range(12)))
        admitted = [r[0] for r in results if r[0] is not None]
        refused = [r[1] for r in results if r[0] is None]
        assert len(admitted) == 4 and refused == ["busy"] * 8
        assert max(admitted) < alone + 150, (alone, admitted)
        assert time.perf_counter() - started < 3
        # Full: HTTP answers 503 with Retry-After, /ready says full, /health shows it.
        async with httpx.AsyncClient(base_url=gpu_like.http) as c:
            r = await c.post("/synthesize", json={"text": "Hi.", "voice_id": "default"})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["code"] == "busy"
            assert (await c.get("/ready")).status_code == 503
            health = (await c.get("/health")).json()
        assert health["capacity"] == {"in_use": 4, "max": 4}
        for _, _, ws in results:
            await ws.close()
    finally:
        gpu_like.stop()
