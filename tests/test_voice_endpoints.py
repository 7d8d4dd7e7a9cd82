"""Voice routes over a real socket, with a real local HTTP server standing in for R2."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import LiveServer, live_server, make_settings
from tests.voice_servers import Clip, ClipServer, Status, make_clip
from tests.wsclient import WSClient, is_audio


@pytest.fixture(scope="module")
def bucket() -> Iterator[ClipServer]:
    with ClipServer() as server:
        server.serve("alice", Clip(make_clip(6.0)))
        server.serve("bob", Clip(make_clip(7.0, f0=120.0)))
        server.serve("short", Clip(make_clip(2.0)))
        server.serve("html", Clip(b"<html>nope</html>", content_type="text/html"))
        server.serve("broken", Status(500))
        yield server


@pytest.fixture(scope="module")
def server(bucket: ClipServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    cache: Path = tmp_path_factory.mktemp("voice-cache")
    settings = make_settings(
        tts_engine="piper",
        cloudflare_r2_public_url=bucket.url,
        voice_cache_dir=cache,
        voice_fetch_timeout_s=1.0,
        voice_fetch_retries=1,
    )
    with live_server(settings) as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http, timeout=60) as c:
        yield c


def test_preload_reports_each_voice_and_the_reason_for_failures(
    client: httpx.Client, bucket: ClipServer
) -> None:
    body = client.post("/preload", json=["alice", "ghost", "short", "html", "bad/id"]).json()
    assert body["preloaded"] == {
        "alice": True, "ghost": False, "short": False, "html": False, "bad/id": False,
    }
    assert body["errors"]["ghost"]["code"] == "voice_not_found"
    assert body["errors"]["short"]["code"] == "voice_invalid"
    assert body["errors"]["html"]["code"] == "voice_invalid"
    assert body["errors"]["bad/id"]["code"] == "invalid_voice_id"
    assert "alice" not in body["errors"]
    assert "conditioning" in body["cache_stats"]
    before = bucket.count("alice")
    # A preloaded voice is served from memory: no new request at the bucket.
    response = client.post("/synthesize", json={"text": "Hello.", "voice_id": "alice"})
    assert response.status_code == 200
    assert response.json()["builtin_voice"] is True  # piper has no cloning, and says so
    assert bucket.count("alice") == before


def test_preload_rejects_a_body_that_is_not_a_list(client: httpx.Client) -> None:
    assert client.post("/preload", json={"voice_ids": ["a"]}).status_code == 400


def test_warmup_prepares_the_voice_and_404s_unknown(
    client: httpx.Client, bucket: ClipServer
) -> None:
    response = client.post("/warmup", params={"voice_id": "bob", "preset": "realtime"})
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and body["voice_id"] == "bob" and body["warmup_ms"] > 0
    assert bucket.count("bob") == 1
    missing = client.post("/warmup", params={"voice_id": "nobody"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Voice not found: nobody", "code": "voice_not_found"}
    assert client.post("/warmup", params={"voice_id": "../x"}).status_code == 400
    assert client.post("/warmup", params={"voice_id": "bob", "preset": "zzz"}).status_code == 400


def test_voice_errors_map_to_their_statuses(client: httpx.Client) -> None:
    def status(voice: str) -> tuple[int, str]:
        r = client.post("/synthesize", json={"text": "Hi there.", "voice_id": voice})
        return r.status_code, r.json().get("code", "")

    assert status("ghost") == (404, "voice_not_found")
    assert status("short") == (422, "voice_invalid")
    assert status("html") == (422, "voice_invalid")
    broken = client.post("/synthesize", json={"text": "Hi.", "voice_id": "broken"})
    assert broken.status_code == 503 and broken.headers["retry-after"]
    assert broken.json()["code"] == "storage_unavailable"
    # The service keeps serving other voices.
    assert status("alice") == (200, "")


def test_evict_drops_every_level_and_the_next_request_refetches(
    client: httpx.Client, bucket: ClipServer
) -> None:
    client.post("/preload", json=["alice"])
    before = bucket.count("alice")
    response = client.delete("/voices/alice/cache")
    assert response.json() == {"voice_id": "alice", "evicted": True}
    client.post("/synthesize", json={"text": "Hello again.", "voice_id": "alice"})
    assert bucket.count("alice") == before + 1
    assert client.delete("/voices/..%2Fx/cache").status_code in (400, 404)


async def test_stream_session_with_a_stored_voice(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "alice"})
        ready = await ws.recv()
        assert ready["type"] == "ready" and ready["voice_id"] == "alice"
        await ws.send({"type": "text", "content": "Hello from a stored voice."})
        await ws.send({"type": "end"})
        messages = await ws.until(lambda m: m.get("type") == "complete", within=60)
    assert any(is_audio(m) for m in messages)


def test_health_reports_cache_levels(client: httpx.Client) -> None:
    client.post("/preload", json=["alice"])
    health = client.get("/health").json()
    assert health["cached_voices"] >= 1
    assert {"conditioning", "clips", "disk", "store"} <= set(health["cache"])
    assert asyncio  # keep import used for the async test above
