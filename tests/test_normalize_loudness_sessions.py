"""Normalization and loudness inside the utterance, over real sockets.

- The engine reads the normalized form, while every text sent back to the client
  (``sentence_complete.text``) stays in the client's own words.
- ``TEXT_NORMALIZATION=false`` reads the text as written.
- A reply of clauses of different kinds is at the loudness target, alike from clause to
  clause, with no clipped mu-law sample, on Piper and on the synthetic engine.

The synthetic engine renders each character, so its audio is longer for "twenty-five
dollars" than for "$25": that is how these tests see what the engine read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyloudnorm as pyln
import pytest

from app.audio.codecs import audioop
from app.engines.piper import installed
from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio

TEXT = "Your total is $25.50, due Nov. 3rd. Call 415-555-0100 now."
MULAW_MAX = 32124


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings(synthetic_rtf=0.0, clause_idle_flush_ms=5000)) as s:
        yield s


@pytest.fixture(scope="module")
def plain_server() -> Iterator[LiveServer]:
    settings = make_settings(synthetic_rtf=0.0, text_normalization=False,
                             loudness_normalization=False)
    with live_server(settings) as s:
        yield s


async def _stream(server: LiveServer, text: str, **init: Any) -> list[dict[str, Any]]:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default", **init})
        await ws.recv()
        for i in range(0, len(text), 5):
            await ws.send({"type": "text", "content": text[i : i + 5]})
        await ws.send({"type": "end"})
        return await ws.until(lambda m: m.get("type") == "complete" or "error" in m, within=60)


async def test_clause_texts_stay_as_sent_while_the_engine_reads_the_spoken_form(
    server: LiveServer, plain_server: LiveServer
) -> None:
    on = await _stream(server, TEXT)
    off = await _stream(plain_server, TEXT)
    for messages in (on, off):
        texts = [m["text"] for m in messages if m.get("type") == "sentence_complete"]
        assert "".join(texts) == TEXT  # exact slices of what was sent
    frames_on = sum(1 for m in on if is_audio(m))
    frames_off = sum(1 for m in off if is_audio(m))
    # "twenty-five dollars and fifty cents ... four one five, five five five, ..." is longer
    assert frames_on > frames_off * 1.5


def test_one_shot_routes_read_the_spoken_form(
    server: LiveServer, plain_server: LiveServer
) -> None:
    def seconds(base: str) -> float:
        r = httpx.post(base + "/synthesize", json={"text": "Pay $25.50."}, timeout=60)
        assert r.status_code == 200, r.text
        return float(r.json()["duration_seconds"])

    assert seconds(plain_server.http) < seconds(server.http) * 0.6


REPLY = ["Okay. ", "That's wonderful news! ",
         "Would you like me to book the appointment on Tuesday, Nov. 3rd at 3:30 PM, or "
         "would Thursday morning at 9am work better for you and your family? ", "Great. "]


async def _reply_pcm(server: LiveServer) -> list[np.ndarray]:
    """Each clause's decoded mu-law at 8 kHz, over /ws/synthesize-stream."""
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default", "preset": "balanced"})
        await ws.recv()
        for clause in REPLY:
            await ws.send({"type": "text", "content": clause})
        await ws.send({"type": "end"})
        messages = await ws.until(lambda m: m.get("type") == "complete" or "error" in m,
                                  within=240)
    clauses, current = [], bytearray()
    for m in messages:
        assert "error" not in m, m
        if is_audio(m):
            current += base64.b64decode(m["audio"])
        elif m.get("type") == "sentence_complete":
            pcm = np.frombuffer(audioop.ulaw2lin(bytes(current), 2), dtype=np.int16)
            clauses.append(pcm.astype(np.float64) / 32768.0)
            current = bytearray()
    assert len(clauses) == len(REPLY)
    return clauses


def _check_reply(clauses: list[np.ndarray]) -> None:
    meter = pyln.Meter(8000)
    each = [meter.integrated_loudness(c) for c in clauses]
    whole = meter.integrated_loudness(np.concatenate(clauses))
    assert abs(whole - -20.0) <= 2.0, (whole, each)
    assert max(each) - min(each) <= 3.0, each
    assert all(np.sum(np.abs(c) * 32768 >= MULAW_MAX) == 0 for c in clauses)


async def test_reply_loudness_on_the_synthetic_engine(
    server: LiveServer, plain_server: LiveServer
) -> None:
    _check_reply(await _reply_pcm(server))
    # Without the level stage the same reply is far too loud and clips on the line.
    raw = np.concatenate(await _reply_pcm(plain_server))
    assert pyln.Meter(8000).integrated_loudness(raw) > -16.0
    assert np.sum(np.abs(raw) * 32768 >= MULAW_MAX) > 0


@pytest.mark.skipif(not installed(), reason="piper not installed")
async def test_reply_loudness_on_piper() -> None:
    with live_server(make_settings(tts_engine="piper")) as piper:
        _check_reply(await _reply_pcm(piper))
