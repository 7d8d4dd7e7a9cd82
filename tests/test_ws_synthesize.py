"""/ws/synthesize over a real socket: streaming, final message, cancel, Twilio, bad input."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import wave
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio

TEXT = "Hello there, this is a longer reply that takes a few seconds to speak."


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LiveServer]:
    """Synthetic engine at real time with a 300 ms first-chunk delay, like a GPU model."""
    settings = make_settings(
        synthetic_rtf=1.0, synthetic_first_chunk_ms=300, synthetic_chunk_ms=200,
        ws_max_message_bytes=1_000_000,
    )
    with live_server(settings) as server:
        yield server


@pytest.fixture(scope="module")
def fast_server() -> Iterator[LiveServer]:
    with live_server(make_settings(synthetic_rtf=0.0)) as server:
        yield server


def is_final(m: dict[str, object]) -> bool:
    return m.get("is_final") is True or "error" in m or m.get("type") == "cancelled"


async def test_first_frame_arrives_before_engine_finishes(slow_server: LiveServer) -> None:
    async with await WSClient.connect(slow_server.ws + "/ws/synthesize") as ws:
        sent = time.perf_counter()
        await ws.send({"text": TEXT, "voice_id": "default"})
        messages = await ws.until(is_final)
    frames = [m for m in messages if is_audio(m)]
    final = messages[-1]
    first_ms = (frames[0]["_t"] - sent) * 1000
    last_ms = (frames[-1]["_t"] - sent) * 1000
    assert first_ms < 300 + 50, f"first frame after {first_ms:.0f} ms"
    audio_s = len(frames) * 0.02
    assert audio_s > 3
    # Real-time engine: the last frame can only come after about the whole duration.
    assert last_ms > 0.8 * audio_s * 1000
    assert final["total_chunks"] == len(frames) == final["chunk_index"]
    assert [m["chunk_index"] for m in frames] == list(range(len(frames)))
    assert {"first_chunk_ms", "total_ms", "latency", "backend"} <= set(final)
    assert final["backend"] == "synthetic"
    assert all(m["format"] == "mulaw" and m["sample_rate"] == 8000 for m in frames)
    assert all(len(base64.b64decode(m["audio"])) == 160 for m in frames)


async def test_requests_run_one_after_another(fast_server: LiveServer) -> None:
    async with await WSClient.connect(fast_server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "First one.", "voice_id": "default"})
        await ws.send({"text": "Second one, longer.", "voice_id": "default"})
        first = await ws.until(is_final)
        second = await ws.until(is_final)
    assert first[-1]["is_final"] and second[-1]["is_final"]
    assert second[-1]["total_chunks"] > first[-1]["total_chunks"]
    assert second[0]["chunk_index"] == 0


@pytest.mark.parametrize(("fmt", "frame_bytes", "rate"), [("alaw", 160, 8000),
                                                          ("pcm_16000", 640, 16000)])
async def test_other_frame_formats(
    fast_server: LiveServer, fmt: str, frame_bytes: int, rate: int
) -> None:
    async with await WSClient.connect(fast_server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "Hello there.", "voice_id": "default", "output_format": fmt})
        messages = await ws.until(is_final)
    frames = [m for m in messages if is_audio(m)]
    assert frames and all(m["format"] == fmt and m["sample_rate"] == rate for m in frames)
    assert all(len(base64.b64decode(m["audio"])) == frame_bytes for m in frames)


async def test_wav_messages_are_complete_files_at_engine_rate(fast_server: LiveServer) -> None:
    async with await WSClient.connect(fast_server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "Hello there.", "voice_id": "default", "output_format": "wav"})
        messages = await ws.until(is_final)
    chunks = [m for m in messages if is_audio(m)]
    assert chunks
    for m in chunks:
        with wave.open(io.BytesIO(base64.b64decode(m["audio"]))) as w:
            assert w.getframerate() == 24000 and w.getnframes() > 0


async def test_twilio_mode_sends_media_events(fast_server: LiveServer) -> None:
    async with await WSClient.connect(fast_server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "Hello there.", "voice_id": "default", "stream_sid": "MZ123"})
        messages = await ws.until(is_final)
    media = [m for m in messages if m.get("event") == "media"]
    assert media and all(m["streamSid"] == "MZ123" for m in media)
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)
    assert messages[-1]["is_final"] is True


async def test_cancel_stops_generation_and_nothing_follows_the_ack(
    slow_server: LiveServer,
) -> None:
    engine = slow_server.runtime.engine
    async with await WSClient.connect(slow_server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": TEXT, "voice_id": "default"})
        await ws.until(is_audio)
        await asyncio.sleep(0.5)
        assert engine.active_generations == 1
        cancel_sent = time.perf_counter()
        await ws.send({"type": "cancel"})
        before_ack = await ws.until(lambda m: m.get("type") == "cancelled")
        ack = before_ack[-1]
        assert (ack["_t"] - cancel_sent) * 1000 < 100
        assert engine.active_generations == 0
        assert ack["chunks_sent"] == len([m for m in before_ack if is_audio(m)]) + 1 or (
            ack["chunks_sent"] >= 1
        )
        assert TEXT.startswith(ack["text_spoken"])
        with pytest.raises(asyncio.TimeoutError):
            await ws.recv(within=0.6)
        # The connection still serves the next request.
        await ws.send({"text": "Next.", "voice_id": "default"})
        after = await ws.until(is_final)
        assert after[-1]["is_final"] is True


async def test_disconnect_mid_utterance_stops_generation(slow_server: LiveServer) -> None:
    engine = slow_server.runtime.engine
    ws = await WSClient.connect(slow_server.ws + "/ws/synthesize")
    await ws.send({"text": TEXT, "voice_id": "default"})
    await ws.until(is_audio)
    await ws.close()
    for _ in range(50):
        if engine.active_generations == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.active_generations == 0


BAD_MESSAGES: list[tuple[object, str]] = [
    ("{not json", "Malformed JSON"),
    (b"\x00\x01binary", "Binary frames"),
    ("[1, 2]", "Expected a JSON object"),
    ({"type": "dance"}, "Unknown message type"),
    ({"text": "Hi"}, "Missing text or voice_id"),
    ({"voice_id": "default"}, "Missing text or voice_id"),
    ({"text": 5, "voice_id": "default"}, "Invalid request"),
    ({"text": "Hi", "voice_id": "../x"}, "Invalid voice_id format: ../x"),
    ({"text": "Hi", "voice_id": "ghost"}, "Voice not found: ghost"),
    ({"text": "Hi", "voice_id": "default", "preset": "nope"}, "Valid presets"),
    ({"text": "Hi", "voice_id": "default", "output_format": "ogg"},
     "Unsupported output_format: 'ogg'. Valid formats"),
]


async def test_bad_messages_get_errors_and_the_connection_stays_open(
    fast_server: LiveServer,
) -> None:
    async with await WSClient.connect(fast_server.ws + "/ws/synthesize") as ws:
        for message, needle in BAD_MESSAGES:
            await ws.send(message)  # type: ignore[arg-type]
            reply = await ws.recv()
            assert "error" in reply, (message, reply)
            assert needle.lower() in reply["error"].lower(), (message, reply)
            assert reply["code"]
        await ws.send({"text": "Still working.", "voice_id": "default"})
        assert (await ws.until(is_final))[-1]["is_final"] is True


async def test_oversized_message_closes_with_1009(slow_server: LiveServer) -> None:
    ws = await WSClient.connect(slow_server.ws + "/ws/synthesize")
    await ws.send({"text": "x" * 10_000_000, "voice_id": "default"})
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    await ws.close()
    async with httpx.AsyncClient() as client:
        assert (await client.get(slow_server.http + "/health")).status_code == 200
