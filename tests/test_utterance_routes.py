"""Every route that synthesizes goes through one ``Utterance``: the properties it owns.

- metrics: a finished utterance (a reply, on the streaming sockets) adds one to the time to
  first audio and total-time histograms with its route's label, and errors are counted by
  code (``tts_errors_total``) and by outcome (``tts_utterances_total``);
- busy before voice: a full replica answers ``busy`` without one request to the voice store,
  and at once even when the store hangs;
- text cleaning: NUL and other control characters, lone surrogates and text with nothing to
  speak are ``invalid_text`` before any byte of a stream (sockets stay open).

The routes and their clients are in ``tests/route_drivers.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.route_drivers import METRIC_ROUTE, ROUTES, Outcome
from tests.servers import LiveServer, live_server, make_settings
from tests.voice_servers import Clip, ClipServer, Hang, make_clip
from tests.wsclient import WSClient

TEXT = "Thanks for calling, how can I help?"


def samples(server: LiveServer, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for metric in server.runtime.metrics.registry.collect():
        for s in metric.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def slots_freed(server: LiveServer, within: float = 10.0) -> bool:
    """Whether every slot is free within ``within`` s (a socket the client closed is
    released when the server has seen the close)."""
    deadline = time.monotonic() + within
    while server.runtime.capacity.in_use:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def clips() -> Iterator[ClipServer]:
    with ClipServer() as store:
        store.serve("alice", Clip(make_clip(6.0)))
        store.serve("stall", Hang(30.0))
        yield store


@pytest.fixture(scope="module")
def server(clips: ClipServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(
        max_concurrent_streams=1, cloudflare_r2_public_url=clips.url,
        voice_cache_dir=tmp_path_factory.mktemp("voices"), voice_fetch_timeout_s=60,
        max_text_length=1000,
    )
    with live_server(settings) as s:
        yield s


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_finished_utterance_is_in_both_histograms(server: LiveServer, route: str) -> None:
    label = METRIC_ROUTE[route]
    ttfa = samples(server, "tts_time_to_first_audio_seconds_count", route=label)
    total = samples(server, "tts_synthesis_seconds_count", route=label)
    done = samples(server, "tts_utterances_total", route=label, outcome="done")
    outcome = asyncio.run(ROUTES[route](server, TEXT, "default"))
    assert outcome.code is None, outcome
    assert samples(server, "tts_time_to_first_audio_seconds_count", route=label) == ttfa + 1
    assert samples(server, "tts_synthesis_seconds_count", route=label) == total + 1
    assert samples(server, "tts_utterances_total", route=label, outcome="done") == done + 1
    assert slots_freed(server)


@pytest.mark.parametrize("route", list(ROUTES))
def test_errors_are_counted_by_code(server: LiveServer, route: str) -> None:
    before = samples(server, "tts_errors_total", kind="voice_not_found")
    outcome = asyncio.run(ROUTES[route](server, TEXT, "nobody"))
    assert outcome.code == "voice_not_found", outcome
    assert samples(server, "tts_errors_total", kind="voice_not_found") == before + 1


async def _hold_the_only_slot(server: LiveServer) -> WSClient:
    assert slots_freed(server)  # the socket of the test before may still be closing
    ws = await WSClient.connect(server.ws + "/ws/synthesize-stream")
    await ws.send({"type": "init", "voice_id": "default"})
    assert (await ws.recv())["type"] == "ready"
    assert server.runtime.capacity.full
    return ws


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_full_replica_answers_busy_without_asking_the_voice_store(
    server: LiveServer, clips: ClipServer, route: str
) -> None:
    async def run() -> tuple[Outcome, Outcome, float]:
        holder = await _hold_the_only_slot(server)
        try:
            busy_before = samples(server, "tts_errors_total", kind="busy")
            cold = await ROUTES[route](server, TEXT, "alice", probe=False)
            started = time.perf_counter()
            hanging = await ROUTES[route](server, TEXT, "stall", probe=False)
            elapsed = time.perf_counter() - started
            assert samples(server, "tts_errors_total", kind="busy") == busy_before + 2
            return cold, hanging, elapsed
        finally:
            await holder.close()

    cold, hanging, elapsed = asyncio.run(run())
    assert cold.code == "busy" and hanging.code == "busy", (cold, hanging)
    assert clips.count("alice") == 0 and clips.count("stall") == 0
    assert elapsed < 5.0  # the store would hang for 30 s (5 s: a loaded CI machine)


BAD_TEXTS = {
    "nul": "Hello\x00 there",
    "escape": "\x1b[31m red alert",
    "lone_surrogate": "lone \ud800 surrogate",
    "zero_width_only": "\u200b\u200c\u200d\u2060",
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("kind", list(BAD_TEXTS))
def test_bad_text_is_invalid_text_before_any_audio(
    server: LiveServer, route: str, kind: str
) -> None:
    if route == "warmup":
        pytest.skip("warmup speaks its own text")
    if kind == "zero_width_only" and route in ("ws_stream", "elevenlabs", "elevenlabs_multi"):
        pytest.skip("token streams: a piece of text may be anything but controls/surrogates")
    outcome = asyncio.run(ROUTES[route](server, BAD_TEXTS[kind], "default"))
    assert outcome.code == "invalid_text", outcome
    assert outcome.audio_bytes == 0
    if outcome.status is not None:
        assert outcome.status == 400
    if outcome.open_after is not None:
        assert outcome.open_after, "the socket must stay open after invalid_text"
    assert slots_freed(server)


def test_newline_and_tab_are_fine(server: LiveServer) -> None:
    outcome = asyncio.run(ROUTES["synthesize"](server, "Line one,\n\tline two.", "default"))
    assert outcome.code is None


def test_health_after_the_battery(server: LiveServer, tmp_path: Path) -> None:
    assert slots_freed(server)
    assert not server.runtime.connections.live


@pytest.fixture(scope="module")
def quirky_server() -> Iterator[LiveServer]:
    """The synthetic engine, silent for texts with SILENT and slow for texts with SLOW."""
    settings = make_settings(synthetic_rtf=0.0, synthetic_chunk_ms=100)
    with live_server(settings) as s:
        engine = s.runtime.engine
        real_stream = engine.stream

        async def quirky(text: str, voice: object, params: object) -> AsyncIterator[Any]:
            if "SILENT" in text:
                return
            async for chunk in real_stream(text, voice, params):
                if "SLOW" in text:
                    await asyncio.sleep(0.2)
                yield chunk

        engine.stream = quirky
        yield s


def test_no_audio_for_speakable_text_is_an_engine_error_not_a_silent_success(
    quirky_server: LiveServer,
) -> None:
    before = samples(quirky_server, "tts_utterances_total", outcome="no_audio")
    outcome = asyncio.run(ROUTES["synthesize"](quirky_server, "Say nothing, SILENT.", "default"))
    assert outcome.code == "no_audio" and outcome.status == 500
    assert samples(quirky_server, "tts_utterances_total", outcome="no_audio") == before + 1
    assert slots_freed(quirky_server)


async def test_a_client_that_leaves_a_stream_frees_the_slot_once(
    quirky_server: LiveServer,
) -> None:
    server = quirky_server
    gone = samples(server, "tts_utterances_total", route="http_stream", outcome="client_gone")
    body = {"text": "A long and SLOW answer. " * 5, "format": "pcm_16000"}
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
        async with client.stream("POST", "/v1/audio/speech/stream", json=body) as r:
            assert r.status_code == 200
            async for _ in r.aiter_raw():
                break  # first bytes, then leave
    for _ in range(200):  # the server notices the client left (10 s at most)
        if not server.runtime.capacity.in_use:
            break
        await asyncio.sleep(0.05)
    assert server.runtime.capacity.in_use == 0
    await asyncio.sleep(0.3)
    assert server.runtime.capacity.in_use == 0  # released once, never below zero
    after = samples(server, "tts_utterances_total", route="http_stream", outcome="client_gone")
    assert after == gone + 1
