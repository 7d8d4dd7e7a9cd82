"""/ws/synthesize-stream over a real socket: LLM token streams, clauses, cancel, Twilio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio

REPLY = (
    "Sure, I can help with that. Your appointment with Dr. Smith is at 3:30 p.m. on "
    "Friday, and the copay is $25.50. Is there anything else"
)


def tokens(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = make_settings(
        synthetic_rtf=0.2, synthetic_chunk_ms=100, clause_idle_flush_ms=400,
        max_concurrent_streams=4, ws_max_message_bytes=1_000_000,
    )
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LiveServer]:
    settings = make_settings(synthetic_rtf=1.0, synthetic_first_chunk_ms=100,
                             synthetic_chunk_ms=100)
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def piper_server() -> Iterator[LiveServer]:
    with live_server(make_settings(tts_engine="piper")) as s:
        yield s


async def init(ws: WSClient, **extra: object) -> dict[str, object]:
    await ws.send({"type": "init", "voice_id": "default", **extra})
    return await ws.recv()


def done(m: dict[str, object]) -> bool:
    return m.get("type") in ("complete", "error", "cancelled")


async def test_token_stream_speaks_every_clause_once_in_order(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        ready = await init(ws, preset="adaptive")
        assert ready["type"] == "ready" and ready["voice_id"] == "default"
        assert ready["preset"] == "adaptive"
        for tok in tokens(REPLY):
            await ws.send({"type": "text", "content": tok})
        await ws.send({"type": "end"})
        messages = await ws.until(done)
    assert messages[-1]["type"] == "complete"
    clauses = [m for m in messages if m.get("type") == "sentence_complete"]
    assert "".join(c["text"] for c in clauses) == REPLY
    assert [c["clause"] for c in clauses] == list(range(len(clauses)))
    assert [c["text"].strip() for c in clauses] == [
        "Sure, I can help with that.",
        "Your appointment with Dr. Smith is at 3:30 p.m. on Friday,",
        "and the copay is $25.50.",
        "Is there anything else",
    ]
    audio = [m for m in messages if is_audio(m)]
    assert [m["chunk_index"] for m in audio] == list(range(len(audio)))
    assert sum(c["chunks_in_sentence"] for c in clauses) == len(audio)
    assert messages[-1]["total_chunks"] == len(audio)
    # Each clause's audio comes before its sentence_complete.
    seen = 0
    for m in messages:
        if is_audio(m):
            seen += 1
        elif m.get("type") == "sentence_complete":
            assert seen >= 1


async def test_speech_starts_at_the_first_clause_not_at_end(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await init(ws)
        await ws.send({"type": "text", "content": "Hello there, how are you"})
        await ws.send({"type": "text", "content": " doing today?"})
        with pytest.raises(asyncio.TimeoutError):
            await ws.recv(within=0.3)  # "?" without whitespace is not yet a boundary
        sent = time.perf_counter()
        await ws.send({"type": "text", "content": " I"})
        first = await ws.recv()
        assert is_audio(first)
        assert (first["_t"] - sent) < 0.5
        await ws.send({"type": "end"})
        messages = await ws.until(done)
    texts = [m["text"] for m in messages if m.get("type") == "sentence_complete"]
    assert texts == ["Hello there, how are you doing today?", " I"]


async def test_idle_flush_speaks_a_reply_without_punctuation(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await init(ws)
        await ws.send({"type": "text", "content": "okay so here is the thing"})
        sent = time.perf_counter()
        first = await ws.recv(within=3)
        assert is_audio(first)
        assert 0.35 < first["_t"] - sent < 1.5
        messages = await ws.until(lambda m: m.get("type") == "sentence_complete")
        # Up to the last whitespace: the partial word "thing" waits for more text.
        assert messages[-1]["text"] == "okay so here is the"
        await ws.send({"type": "end"})
        rest = await ws.until(done)
    assert [m["text"] for m in rest if m.get("type") == "sentence_complete"] == [" thing"]


async def test_cancel_barge_in(slow_server: LiveServer) -> None:
    engine = slow_server.runtime.engine
    async with await WSClient.connect(slow_server.ws + "/ws/synthesize-stream") as ws:
        await init(ws)
        await ws.send({"type": "text", "content": "This first sentence is quite long indeed. "})
        await ws.send({"type": "text", "content": "And this second one is queued behind it. "})
        await ws.until(is_audio)
        await asyncio.sleep(0.4)
        sent = time.perf_counter()
        await ws.send({"type": "cancel"})
        before = await ws.until(lambda m: m.get("type") == "cancelled")
        ack = before[-1]
        assert (ack["_t"] - sent) * 1000 < 100
        assert engine.active_generations == 0
        assert ack["chunks_sent"] >= 10
        assert "This first sentence".startswith(ack["text_spoken"][:19])
        assert ack["text_spoken_estimated"] is True
        with pytest.raises(asyncio.TimeoutError):
            await ws.recv(within=0.7)  # nothing after the acknowledgement
        # Still initialised: the next reply is spoken.
        await ws.send({"type": "text", "content": "New reply."})
        await ws.send({"type": "end"})
        messages = await ws.until(done)
    assert messages[-1]["type"] == "complete"
    assert [m["text"] for m in messages if m.get("type") == "sentence_complete"] == ["New reply."]


async def test_twilio_mode_media_and_marks(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await init(ws, stream_sid="MZabc")
        await ws.send({"type": "text", "content": "First clause is here. Second one too."})
        await ws.send({"type": "end"})
        messages = await ws.until(done)
    media = [m for m in messages if m.get("event") == "media"]
    marks = [m for m in messages if m.get("event") == "mark"]
    assert media and all(m["streamSid"] == "MZabc" and "payload" in m["media"] for m in media)
    assert [m["mark"]["name"] for m in marks] == ["clause-0", "clause-1"]
    assert all(set(m) - {"_t"} == {"event", "streamSid", "media"} for m in media)
    # Each mark follows its clause's sentence_complete.
    kinds = [m.get("type") or m.get("event") for m in messages if not is_audio(m)]
    assert kinds == ["sentence_complete", "mark", "sentence_complete", "mark", "complete"]


async def test_piper_stream_end_to_end(piper_server: LiveServer) -> None:
    async with await WSClient.connect(piper_server.ws + "/ws/synthesize-stream") as ws:
        ready = await init(ws)
        assert ready["backend"] == "piper"
        for tok in tokens("Hi! Thanks for calling, how can I help you today?", 3):
            await ws.send({"type": "text", "content": tok})
        await ws.send({"type": "end"})
        messages = await ws.until(done, within=60)
    audio = [m for m in messages if is_audio(m)]
    assert len(audio) > 50
    assert messages[-1]["type"] == "complete"


STREAM_BAD: list[tuple[object, str, str]] = [
    ({"type": "text", "content": "hi"}, "not_initialized", "Session not initialized"),
    ({"type": "end"}, "not_initialized", "Session not initialized"),
    ({"type": "init"}, "invalid_request", "Missing voice_id in init"),
    ({"type": "init", "voice_id": "../etc"}, "invalid_voice_id", "Invalid voice_id"),
    ({"type": "init", "voice_id": "ghost"}, "voice_not_found", "Voice not found: ghost"),
    ({"type": "init", "voice_id": "default", "preset": "x"}, "invalid_request", "Valid presets"),
    ({"type": "init", "voice_id": 5}, "invalid_request", "Invalid request"),
    ({"type": "jump"}, "unknown_type", "Unknown message type"),
    ({"content": "no type"}, "unknown_type", "Unknown message type"),
    ("not json at all", "invalid_json", "Malformed JSON"),
    (b"\x00\xff", "invalid_message", "Binary frames"),
    ("42", "invalid_message", "Expected a JSON object"),
]


async def test_bad_input_gets_errors_and_session_survives(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        for message, code, needle in STREAM_BAD:
            await ws.send(message)  # type: ignore[arg-type]
            reply = await ws.recv()
            assert reply.get("code") == code, (message, reply)
            assert needle in reply["error"], (message, reply)
        await init(ws)
        await ws.send({"type": "text", "content": 12})
        assert (await ws.recv())["code"] == "invalid_request"
        # A second init while a reply is in progress is refused; the reply goes on.
        await ws.send({"type": "text", "content": "A reply in progress"})
        await ws.send({"type": "init", "voice_id": "default"})
        refused = await ws.until(lambda m: m.get("type") == "error")
        assert refused[-1]["code"] == "invalid_state"
        await ws.send({"type": "end"})
        messages = await ws.until(done)
        assert messages[-1]["type"] == "complete"
        # After the reply, a new init is fine.
        assert (await init(ws, preset="fast"))["type"] == "ready"


async def test_oversized_message_closes_1009_and_server_stays_healthy(server: LiveServer) -> None:
    ws = await WSClient.connect(server.ws + "/ws/synthesize-stream")
    await init(ws)
    await ws.send({"type": "text", "content": "x" * 10_000_000})
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    await ws.close()
    async with httpx.AsyncClient() as client:
        health = (await client.get(server.http + "/health")).json()
    assert health["status"] == "ok"
    for _ in range(50):
        if server.runtime.capacity.in_use == 0:
            break
        await asyncio.sleep(0.02)
    assert server.runtime.capacity.in_use == 0


async def test_sessions_beyond_capacity_get_busy(server: LiveServer) -> None:
    clients = [await WSClient.connect(server.ws + "/ws/synthesize-stream") for _ in range(5)]
    try:
        replies = [await init(c) for c in clients]
        kinds = [r.get("type") for r in replies]
        assert kinds.count("ready") == 4
        assert replies[-1]["code"] == "busy"
    finally:
        for c in clients:
            await c.close()
