"""``language`` on every API that synthesizes, checked against the engine's capabilities.

The tiny multilingual Chatterbox checkpoint speaks French through ``/ws/synthesize-stream``
with ``"language": "fr"`` (the engine is asked for ``fr``); a language the running engine
does not list is ``invalid_request`` naming the ones it does, on every route (the synthetic
engine lists only ``en``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chatterbox_fixtures import tiny_multilingual_dir  # noqa: F401  (fixture)
from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings()) as s:
        yield s


def _post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.http + path, json=body, timeout=30)


def _check(error: dict[str, Any]) -> None:
    assert error["code"] == "invalid_request", error
    assert "Unsupported language: 'klingon'" in error["error"] and "en" in error["error"]


def test_an_unsupported_language_is_invalid_request_on_every_http_route(
    server: LiveServer,
) -> None:
    r = _post(server, "/synthesize", {"text": "Hello.", "language": "klingon"})
    assert r.status_code == 400
    _check(r.json())
    r = _post(server, "/v1/audio/speech/stream", {"text": "Hello.", "language": "klingon"})
    assert r.status_code == 400
    _check(r.json())
    r = _post(server, "/v1/audio/speech", {"input": "Hello.", "voice": "alloy",
                                           "response_format": "pcm", "language": "klingon"})
    assert r.status_code == 400
    error = r.json()["error"]
    _check({"code": error["code"], "error": error["message"]})
    ok = _post(server, "/synthesize", {"text": "Hello.", "language": "EN"})
    assert ok.status_code == 200


async def test_an_unsupported_language_is_invalid_request_on_every_socket(
    server: LiveServer,
) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "Hello.", "voice_id": "default", "language": "klingon"})
        _check(await ws.recv())
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default", "language": "klingon"})
        _check(await ws.recv())
        await ws.send({"type": "init", "voice_id": "default", "language": "en"})
        ready = await ws.recv()
        assert ready["type"] == "ready" and ready["language"] == "en"
    url = server.ws + "/v1/text-to-speech/default/stream-input?language_code=klingon"
    async with await WSClient.connect(url) as ws:
        await ws.send({"text": " "})
        error = await ws.recv()
        assert error["code"] == "invalid_request" and "klingon" in error["message"]


@pytest.fixture(scope="module")
def multilingual_server(tiny_multilingual_dir: Path) -> Iterator[LiveServer]:  # noqa: F811
    settings = make_settings(tts_engine="chatterbox", chatterbox_model="multilingual",
                             chatterbox_ckpt_dir=tiny_multilingual_dir,
                             chatterbox_device="cpu", max_concurrent_streams=2)
    with live_server(settings) as s:
        engine = s.runtime.engine
        real_stream = engine.stream
        engine.languages_asked = []

        def recording(text: str, voice: Any, params: Any) -> Any:
            engine.languages_asked.append(params.language)
            return real_stream(text, voice, params)

        engine.stream = recording
        yield s


@pytest.mark.chatterbox
async def test_multilingual_speaks_french_through_the_stream_socket(
    multilingual_server: LiveServer,
) -> None:
    engine = multilingual_server.runtime.engine
    async with await WSClient.connect(multilingual_server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default", "preset": "realtime",
                       "language": "fr"})
        ready = await ws.recv(within=60)
        assert ready["type"] == "ready" and ready["language"] == "fr", ready
        await ws.send(json.dumps({"type": "text", "content": "Bonjour, ça va très bien."}))
        await ws.send({"type": "end"})
        messages = await ws.until(lambda m: m.get("type") in ("complete", "error"), within=240)
        assert messages[-1]["type"] == "complete", messages[-1]
        assert sum(1 for m in messages if is_audio(m)) > 5
        await ws.send({"type": "init", "voice_id": "default", "language": "tlh"})
        error = await ws.recv()
    assert engine.languages_asked and set(engine.languages_asked) == {"fr"}
    assert error["code"] == "invalid_request" and "fr" in error["error"]
