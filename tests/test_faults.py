"""Faults: the engine failing mid-utterance, the voice store going down mid-run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.engines.base import AudioChunk
from tests.servers import LiveServer, live_server, make_settings
from tests.voice_servers import Clip, ClipServer, Status, make_clip
from tests.wsclient import WSClient, is_audio


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings(synthetic_rtf=0.0, synthetic_chunk_ms=100)) as s:
        engine = s.runtime.engine
        real_stream = engine.stream

        async def flaky(text: str, voice: Any, params: Any) -> AsyncIterator[AudioChunk]:
            """Fails after its second chunk when the text says EXPLODE.

            Not after the first: the level stage holds the first 200 ms back to measure the
            clause's loudness, so with 100 ms chunks nothing would have been sent yet.
            """
            async for i, chunk in _enumerate(real_stream(text, voice, params)):
                if i == 2 and "EXPLODE" in text:
                    # A transient failure; a sticky one (a CUDA error) ends the replica:
                    # tests/test_engine_fault.py.
                    raise RuntimeError("vocoder produced NaN in chunk 1 (internal detail)")
                yield chunk

        engine.stream = flaky
        yield s


async def _enumerate(it: AsyncIterator[Any]) -> AsyncIterator[tuple[int, Any]]:
    i = 0
    async for x in it:
        yield i, x
        i += 1


async def test_engine_error_mid_utterance_ends_it_cleanly_and_the_next_works(
    server: LiveServer,
) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "Please EXPLODE in the middle of this sentence.",
                       "voice_id": "default"})
        messages = await ws.until(lambda m: "error" in m or m.get("is_final") is True)
        assert any(is_audio(m) for m in messages)  # it had started
        assert messages[-1]["code"] == "engine_error"
        assert "internal detail" not in messages[-1]["error"]  # no internals to the client
        await ws.send({"text": "And now a normal sentence.", "voice_id": "default"})
        after = await ws.until(lambda m: "error" in m or m.get("is_final") is True)
        assert after[-1]["is_final"] is True
    assert server.runtime.capacity.in_use == 0


async def test_engine_error_in_a_stream_clause_keeps_the_call(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default"})
        await ws.recv()
        await ws.send({"type": "text", "content": "First we EXPLODE right here. "})
        await ws.send({"type": "text", "content": "Then we speak normally."})
        await ws.send({"type": "end"})
        messages = await ws.until(lambda m: m.get("type") == "complete")
    errors = [m for m in messages if m.get("type") == "error"]
    assert [e["code"] for e in errors] == ["engine_error"] and errors[0]["clause"] == 0
    done = [m for m in messages if m.get("type") == "sentence_complete"]
    assert [d["clause"] for d in done] == [1]


def test_engine_error_on_http_is_a_json_500_with_a_code(server: LiveServer) -> None:
    r = httpx.post(server.http + "/synthesize", json={"text": "EXPLODE now please.",
                                                      "voice_id": "default"})
    assert r.status_code == 500 and r.json()["code"] == "engine_error"
    ok = httpx.post(server.http + "/synthesize", json={"text": "Fine now.", "voice_id": "default"})
    assert ok.status_code == 200


def test_store_down_mid_run_affects_only_uncached_voices(tmp_path: Path) -> None:
    with ClipServer() as clips:
        clips.serve("alice", Clip(make_clip(6.0)))
        clips.serve("bob", Clip(make_clip(6.0, f0=140)))
        settings = make_settings(cloudflare_r2_public_url=clips.url, voice_cache_dir=tmp_path,
                                 voice_fetch_retries=0, voice_fetch_timeout_s=2)
        with live_server(settings) as s, httpx.Client(base_url=s.http, timeout=30) as c:
            assert c.post("/preload", json=["alice"]).json()["preloaded"] == {"alice": True}
            for vid in ("alice", "bob", "carol"):
                clips.serve(vid, Status(503))  # the bucket goes down
            for vid in ("alice", "default"):
                r = c.post("/synthesize", json={"text": "Still here.", "voice_id": vid})
                assert r.status_code == 200, (vid, r.text)
            down = c.post("/synthesize", json={"text": "Hello.", "voice_id": "bob"})
            assert down.status_code == 503 and down.json()["code"] == "storage_unavailable"
            assert down.headers["retry-after"] == "1"
            metrics = s.runtime.metrics.registry
            assert metrics.get_sample_value("tts_voice_cache_total",
                                            {"level": "prepared", "result": "hit"}) >= 1
            assert metrics.get_sample_value("tts_errors_total",
                                            {"kind": "storage_unavailable"}) == 1
            assert metrics.get_sample_value("tts_voice_store_seconds_count",
                                            {"result": "error"}) == 1
