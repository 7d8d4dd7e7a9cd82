"""The server with TTS_ENGINE=chatterbox on a tiny random-weight Turbo checkpoint, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chatterbox_fixtures import tiny_turbo_dir  # noqa: F401  (fixture)
from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio

pytestmark = pytest.mark.chatterbox


@pytest.fixture(scope="module")
def server(tiny_turbo_dir: Path) -> Iterator[LiveServer]:  # noqa: F811
    settings = make_settings(
        tts_engine="chatterbox",
        chatterbox_model="turbo",
        chatterbox_ckpt_dir=tiny_turbo_dir,
        chatterbox_device="cpu",
        max_concurrent_streams=2,
        chatterbox_stream_budget=2,  # fixed: a measured budget follows the machine's speed
    )
    with live_server(settings) as s:
        yield s


def test_health_reports_chatterbox(server: LiveServer) -> None:
    body = httpx.get(server.http + "/health").json()
    assert body["backend"] == "chatterbox" and body["model_loaded"] is True
    assert body["sample_rate"] == 24000
    caps = body["capabilities"]
    assert caps["cloning"] is True and caps["streaming"] == "token"
    assert "chunk_size" in caps["preset_fields"] and "cfg_weight" not in caps["preset_fields"]
    # The batched engine's admission: streams running, its limit and the headroom left.
    streams = body["engine_streams"]
    assert streams["active_streams"] == 0 and streams["capacity"] == 2
    assert streams["headroom"] == streams["capacity"]
    assert streams["budget"]["source"] == "CHATTERBOX_STREAM_BUDGET"


async def test_ws_synthesize_end_to_end(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "Hello there.", "voice_id": "default", "preset": "realtime"})
        messages = await ws.until(lambda m: m.get("is_final") is True or "error" in m,
                                  within=240)
    final = messages[-1]
    assert final.get("is_final") is True, final
    frames = [m for m in messages if is_audio(m)]
    assert final["backend"] == "chatterbox" and final["total_chunks"] == len(frames) > 10
    # Streaming: frames of the first engine chunk arrive before the last chunk is made.
    assert final["latency"]["engine_first_chunk_ms"] < final["total_ms"]


async def test_ws_synthesize_stream_end_to_end(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default", "preset": "adaptive"})
        ready = await ws.recv(within=60)
        assert ready["type"] == "ready" and ready["backend"] == "chatterbox"
        for token in ["Hi", " there", ",", " friend", "."]:
            await ws.send({"type": "text", "content": token})
        await ws.send({"type": "end"})
        messages = await ws.until(lambda m: m.get("type") in ("complete", "error"), within=240)
    assert messages[-1]["type"] == "complete", messages[-1]
    clauses = [m["text"] for m in messages if m.get("type") == "sentence_complete"]
    assert "".join(clauses) == "Hi there, friend."
    assert sum(1 for m in messages if is_audio(m)) > 10
