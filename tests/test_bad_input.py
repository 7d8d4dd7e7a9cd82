"""A bad-input battery against every endpoint and socket, then a health check of the server.

Every case gets its documented answer (HTTP status and ``code``, or a socket error message
with the connection left open, or the documented close code), never a 500 or a crash; and
after the whole battery a normal request works and no task or thread was left behind.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient

OK = {"text": "Hello there.", "voice_id": "default"}
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = make_settings(max_text_length=20_000, ws_max_message_bytes=200_000,
                             ws_messages_per_second=50, ws_send_buffer_seconds=0.5)
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def baseline(server: LiveServer) -> dict[str, int]:
    """Tasks and threads once the server has served one request of each kind."""
    httpx.post(server.http + "/synthesize", json=OK, timeout=30)
    asyncio.run(_ws_roundtrip(server))
    time.sleep(0.3)
    return {"tasks": _server_tasks(server), "threads": _threads()}


def _threads() -> int:
    """Threads other than pool workers (which are bounded and reused, not per request)."""
    pools = ("AnyIO worker thread", "asyncio_", "ThreadPoolExecutor")
    return sum(1 for t in threading.enumerate() if not t.name.startswith(pools))


def _server_tasks(server: LiveServer) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return int(server.call(count()))


async def _ws_roundtrip(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
        await ws.send(OK)
        final = await ws.until(lambda m: m.get("is_final") is True or "error" in m)
        assert final[-1]["is_final"] is True


# (method, path, body or raw bytes, expected status, expected code)
HTTP_CASES: list[tuple[str, str, Any, int, str | None]] = [
    ("POST", "/synthesize", b"{not json", 400, "invalid_request"),
    ("POST", "/synthesize", b"", 400, "invalid_request"),
    ("POST", "/synthesize", b"null", 400, "invalid_request"),
    ("POST", "/synthesize", b"[1, 2, 3]", 400, "invalid_request"),
    ("POST", "/synthesize", DEEP.encode(), 400, "invalid_request"),
    ("POST", "/synthesize", {"text": "x" * 20_001, "voice_id": "default"}, 400, "text_too_long"),
    # Over MAX_REQUEST_BYTES: refused as it streams in, before parsing (test_request_limits).
    ("POST", "/synthesize", {"text": "x" * 2_000_000}, 413, "request_too_large"),
    ("POST", "/synthesize", {"text": 12345, "voice_id": "default"}, 400, "invalid_request"),
    ("POST", "/synthesize", {"text": "hi", "voice_id": ["a"]}, 400, "invalid_request"),
    ("POST", "/synthesize", {"text": "", "voice_id": "default"}, 400, "invalid_request"),
    ("POST", "/synthesize", {"text": " \n\t ", "voice_id": "default"}, 400, "invalid_request"),
    ("POST", "/synthesize", {**OK, "speed": -1}, 400, "invalid_request"),
    ("POST", "/synthesize", b'{"text": "hi", "speed": NaN}', 400, "invalid_request"),
    ("POST", "/synthesize", b'{"text": "hi", "speed": Infinity}', 400, "invalid_request"),
    ("POST", "/synthesize", {**OK, "speed": "fast"}, 400, "invalid_request"),
    ("POST", "/synthesize", {**OK, "voice_id": "../../etc/passwd"}, 400, "invalid_voice_id"),
    ("POST", "/synthesize", {**OK, "voice_id": "a/b"}, 400, "invalid_voice_id"),
    ("POST", "/synthesize", {**OK, "voice_id": "%2e%2e"}, 400, "invalid_voice_id"),
    ("POST", "/synthesize", {**OK, "voice_id": "bob\u0000"}, 400, "invalid_voice_id"),
    ("POST", "/synthesize", {**OK, "voice_id": "v" * 10_000}, 400, "invalid_voice_id"),
    ("POST", "/synthesize", {**OK, "voice_id": "ａｌｉｃｅ"}, 400, "invalid_voice_id"),
    ("POST", "/synthesize", {**OK, "voice_id": "nobody"}, 404, "voice_not_found"),
    ("POST", "/synthesize", {**OK, "preset": "ludicrous"}, 400, "invalid_request"),
    ("POST", "/synthesize", {**OK, "output_format": "mp3"}, 400, "unsupported_output_format"),
    ("POST", "/synthesize", {**OK, "output_format": "MULAW"}, 400, "unsupported_output_format"),
    ("POST", "/synthesize", {**OK, "text": "\u202eevil \u200b\u200d👩‍👩‍👧 ﷽"}, 200, None),
    ("POST", "/synthesize", {**OK, "text": "\x00\x07\x1b[31m bell"}, 400, "invalid_text"),
    ("POST", "/synthesize", b'{"text": "lone \\ud800 surrogate", "voice_id": "default"}', 400,
     "invalid_text"),
    ("POST", "/preload", {"voice_ids": "alice"}, 400, "invalid_request"),
    ("POST", "/preload", ["v"] * 101, 400, "invalid_request"),
    ("POST", "/preload", b"[", 400, "invalid_request"),
    ("POST", "/warmup?voice_id=../x", None, 400, "invalid_voice_id"),
    ("POST", "/warmup?preset=nope", None, 400, "invalid_request"),
    ("POST", "/warmup?voice_id=" + "a" * 2000, None, 400, "invalid_request"),
    ("DELETE", "/voices/..%2F..%2Fetc/cache", None, 404, "not_found"),
    ("DELETE", "/voices/..%5C..%5Cetc/cache", None, 400, "invalid_voice_id"),
    ("GET", "/nowhere", None, 404, "not_found"),
    ("POST", "/health", None, 405, "method_not_allowed"),
    ("POST", "/twilio/voice", b"\xff\xfe", 404, "not_configured"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), HTTP_CASES,
                         ids=[f"{m} {p[:30]} #{i}" for i, (m, p, *_ ) in enumerate(HTTP_CASES)])
def test_http_bad_input(server: LiveServer, baseline: dict[str, int], method: str, path: str,
                        body: Any, status: int, code: str | None) -> None:
    kw: dict[str, Any] = {}
    if isinstance(body, bytes):
        kw = {"content": body, "headers": {"Content-Type": "application/json"}}
    elif body is not None:
        kw = {"json": body}
    r = httpx.request(method, server.http + path, timeout=30, **kw)
    assert r.status_code == status, r.text[:300]
    if code is not None:
        assert r.json()["code"] == code


# (route, message (dict, str or bytes), expected error code)
WS_CASES: list[tuple[str, Any, str]] = [
    ("/ws/synthesize", b"\x00\x01binary", "invalid_message"),
    ("/ws/synthesize", "{nope", "invalid_json"),
    ("/ws/synthesize", "[1, 2]", "invalid_message"),
    ("/ws/synthesize", "\"just a string\"", "invalid_message"),
    ("/ws/synthesize", DEEP[:150_000], "invalid_json"),
    ("/ws/synthesize", {"text": 5, "voice_id": "default"}, "invalid_request"),
    ("/ws/synthesize", {"text": "hi"}, "invalid_request"),
    ("/ws/synthesize", {**OK, "voice_id": "../../x"}, "invalid_voice_id"),
    ("/ws/synthesize", {**OK, "preset": "warp"}, "invalid_request"),
    ("/ws/synthesize", {**OK, "output_format": "flac"}, "unsupported_output_format"),
    ("/ws/synthesize", '{"text": "hi", "voice_id": "default", "speed": NaN}', "invalid_request"),
    ("/ws/synthesize", {**OK, "text": "y" * 20_001}, "text_too_long"),
    ("/ws/synthesize", {**OK, "type": "explode"}, "unknown_type"),
    ("/ws/synthesize-stream", {"type": "text", "content": "early"}, "not_initialized"),
    ("/ws/synthesize-stream", {"type": "end"}, "not_initialized"),
    ("/ws/synthesize-stream", {"type": "init"}, "invalid_request"),
    ("/ws/synthesize-stream", {"type": "init", "voice_id": 7}, "invalid_request"),
    ("/ws/synthesize-stream", {"type": "init", "voice_id": "a\\b"}, "invalid_voice_id"),
    ("/ws/synthesize-stream", {"type": "init", "voice_id": "default", "output_format": "wav"},
     "unsupported_output_format"),
    ("/ws/synthesize-stream", {"type": "init", "voice_id": "default", "preset": 3},
     "invalid_request"),
    ("/ws/synthesize-stream", {"type": {"nested": 1}}, "unknown_type"),
    ("/ws/synthesize-stream", {"no_type": True}, "unknown_type"),
]


@pytest.mark.parametrize(("route", "message", "code"), WS_CASES,
                         ids=[f"{r[4:]} #{i}" for i, (r, *_) in enumerate(WS_CASES)])
async def test_socket_bad_input_gets_an_error_and_the_socket_stays_open(
    server: LiveServer, baseline: dict[str, int], route: str, message: Any, code: str
) -> None:
    async with await WSClient.connect(server.ws + route) as ws:
        await ws.send(message)
        error = await ws.recv()
        assert error["code"] == code, error
        assert "error" in error
        if route == "/ws/synthesize":
            await ws.send(OK)
            final = await ws.until(lambda m: m.get("is_final") is True or "error" in m)
        else:
            await ws.send({"type": "init", "voice_id": "default"})
            final = [await ws.recv()]
        assert "error" not in final[-1], final[-1]


async def test_stream_text_of_the_wrong_type_after_init(
    server: LiveServer, baseline: dict[str, int]
) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default"})
        await ws.recv()
        for bad in ({"type": "text", "content": None}, {"type": "text", "content": ["a"]}):
            await ws.send(bad)
            assert (await ws.recv())["code"] == "invalid_request"
        await ws.send({"type": "cancel"})
        assert (await ws.recv())["type"] == "cancelled"


async def test_oversized_message_closes_with_1009(
    server: LiveServer, baseline: dict[str, int]
) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send(json.dumps({"type": "text", "content": "z" * 300_000}))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv(5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_message_flood(server: LiveServer, baseline: dict[str, int]) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        for _ in range(300):
            await ws.send({"type": "end"})
        codes = {(await ws.recv())["code"] for _ in range(300)}
    assert codes == {"not_initialized", "rate_limited"}


def _slow_consumers(server: LiveServer) -> float:
    return sum(s.value for m in server.runtime.metrics.registry.collect() for s in m.samples
               if s.name == "tts_errors_total" and s.labels.get("kind") == "slow_consumer")


async def test_slow_reading_client(server: LiveServer, baseline: dict[str, int]) -> None:
    """A client that stops reading is closed as a slow consumer (1008).

    The server's verdict is what is checked: on a loaded machine synthesis is slower, so the
    outbox fills later, and a close frame queued behind unread audio may never reach a
    client that is not reading (the server then drops the connection). So the test waits,
    not reading, until the server has counted the slow consumer, then reads: whatever close
    comes through is 1008, and the connection ends either way.
    """
    before = _slow_consumers(server)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    route = server.ws + "/ws/synthesize-stream"
    async with websockets.connect(route, sock=sock, max_queue=1) as ws:
        await ws.send(json.dumps({"type": "init", "voice_id": "default"}))
        for _ in range(40):
            await ws.send(json.dumps({"type": "text", "content": "Words and more words. " * 20}))
        await ws.send(json.dumps({"type": "end"}))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # not reading
            if _slow_consumers(server) > before:
                break
            await asyncio.sleep(0.1)
        assert _slow_consumers(server) == before + 1
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
    assert info.value.rcvd is None or info.value.rcvd.code == 1008


async def test_abrupt_disconnect_mid_utterance(
    server: LiveServer, baseline: dict[str, int]
) -> None:
    ws = await WSClient.connect(server.ws + "/ws/synthesize-stream")
    await ws.send({"type": "init", "voice_id": "default"})
    await ws.send({"type": "text", "content": "Talking and then gone. " * 10})
    ws.conn.transport.abort()  # no close handshake


def test_after_the_battery_the_server_is_healthy_and_nothing_leaked(
    server: LiveServer, baseline: dict[str, int]
) -> None:
    r = httpx.post(server.http + "/synthesize", json=OK, timeout=30)
    assert r.status_code == 200 and len(r.json()["audio"]) > 10
    asyncio.run(_ws_roundtrip(server))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        tasks, threads = _server_tasks(server), _threads()
        if tasks <= baseline["tasks"] and threads <= baseline["threads"]:
            break
        time.sleep(0.1)
    names = sorted(t.name for t in threading.enumerate())
    assert threads <= baseline["threads"], names
    assert tasks <= baseline["tasks"] and threads <= baseline["threads"]
    health = httpx.get(server.http + "/health").json()
    assert health["capacity"]["in_use"] == 0 and health["connections"] == 0
