"""RESAMPLER_QUALITY reaches every endpoint's audio chain, not just some of them."""

from __future__ import annotations

import base64

import httpx

from tests.servers import live_server, make_settings
from tests.wsclient import WSClient, audio_bytes

TEXT = "Quality check, one two three."


async def _all_paths(quality: str) -> tuple[bytes, bytes, bytes]:
    with live_server(make_settings(synthetic_rtf=0.0, resampler_quality=quality)) as server:
        async with httpx.AsyncClient(base_url=server.http) as client:
            body = (await client.post("/synthesize", json={"text": TEXT})).json()
        batch = b"".join(base64.b64decode(f) for f in body["audio"])
        async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
            await ws.send({"text": TEXT, "voice_id": "default"})
            oneshot = audio_bytes(await ws.until(lambda m: m.get("is_final") is True))
        async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
            await ws.send({"type": "init", "voice_id": "default"})
            await ws.recv()
            await ws.send({"type": "text", "content": TEXT})
            await ws.send({"type": "end"})
            stream = audio_bytes(await ws.until(lambda m: m.get("type") == "complete"))
    return batch, oneshot, stream


async def test_resampler_quality_applies_to_batch_and_both_sockets() -> None:
    low = await _all_paths("LQ")
    high = await _all_paths("HQ")
    # One chain per setting: every path gives the same bytes for the same text...
    assert low[0] == low[1] == low[2]
    assert high[0] == high[1] == high[2]
    # ...and the setting changes them on every path.
    assert all(a != b for a, b in zip(low, high, strict=True))
