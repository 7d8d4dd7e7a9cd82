"""Normalization and loudness inside the utterance, over real sockets.

- The engine reads the normalized form, while every text sent back to the client
  (``sentence_complete.text``, ElevenLabs ``alignment``) stays in the client's own words;
  ElevenLabs ``normalizedAlignment`` is over the spoken form.
- ``normalize: false`` (and ElevenLabs' ``apply_text_normalization=off``, and
  ``TEXT_NORMALIZATION=false``) read the text as written.
- A reply of clauses of different kinds is at the loudness target, alike from clause to
  clause, with no clipped mu-law sample, on Piper and on the synthetic engine.

The synthetic engine renders each character, so its audio is longer for "twenty-five
dollars" than for "$25": that is how these tests see what the engine read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyloudnorm as pyln
import pytest
import websockets

from app.audio.codecs import audioop
from app.audio.formats import MULAW
from app.audio.level import LoudnessTracker
from app.engines.base import EngineCapabilities, SynthesisParams, VoiceHandle
from app.engines.piper import installed
from app.presets import get_preset
from app.sessions.utterance import Utterance, UtterancePlan, UtteranceSpec
from app.text.estimate import estimate_heard
from app.text.normalize import normalize
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
    server: LiveServer,
) -> None:
    on = await _stream(server, TEXT)
    off = await _stream(server, TEXT, normalize=False)
    for messages in (on, off):
        texts = [m["text"] for m in messages if m.get("type") == "sentence_complete"]
        assert "".join(texts) == TEXT  # exact slices of what was sent
    frames_on = sum(1 for m in on if is_audio(m))
    frames_off = sum(1 for m in off if is_audio(m))
    # "twenty-five dollars and fifty cents ... four one five, five five five, ..." is longer
    assert frames_on > frames_off * 1.5


def test_one_shot_routes_honour_normalize_false(
    server: LiveServer, plain_server: LiveServer
) -> None:
    def seconds(base: str, **body: Any) -> float:
        r = httpx.post(base + "/synthesize", json={"text": "Pay $25.50.", **body}, timeout=60)
        assert r.status_code == 200, r.text
        return float(r.json()["duration_seconds"])

    normalized = seconds(server.http)
    assert seconds(server.http, normalize=False) < normalized * 0.6
    assert seconds(plain_server.http) == pytest.approx(seconds(server.http, normalize=False))
    r = httpx.post(server.http + "/synthesize", json={"text": "x", "normalize": "no"})
    assert r.status_code == 400


async def _elevenlabs(server: LiveServer, text: str, query: str = "") -> list[dict[str, Any]]:
    url = (f"{server.ws}/v1/text-to-speech/default/stream-input?output_format=ulaw_8000"
           f"{query}")
    out = []
    async with websockets.connect(url) as conn:
        await conn.send(json.dumps({"text": " "}))
        await conn.send(json.dumps({"text": text}))
        await conn.send(json.dumps({"text": ""}))
        async for raw in conn:
            msg = json.loads(raw)
            out.append(msg)
            if msg.get("isFinal"):
                break
    return out


def _chars(messages: list[dict[str, Any]], key: str) -> str:
    return "".join("".join(m[key]["chars"]) for m in messages if m.get(key))


@pytest.mark.parametrize("query", ["", "&apply_text_normalization=on"])
async def test_elevenlabs_alignment_in_the_original_normalized_alignment_spoken(
    server: LiveServer, query: str
) -> None:
    """Audio leaves per engine chunk: each message carries the spoken characters its audio
    covers (``normalizedAlignment``) and the client's characters whose whole spoken form it
    has reached (``alignment``); joined, each gives its text back exactly, and every
    message's timings lie inside its own audio (8 kHz mu-law: 8 bytes per ms)."""
    text = "It costs $4.99 today. "
    messages = [m for m in await _elevenlabs(server, text, query) if "audio" in m]
    assert _chars(messages, "alignment").strip() == text.strip()
    assert _chars(messages, "normalizedAlignment").strip() == normalize(text.strip()).spoken
    assert "$" not in _chars(messages, "normalizedAlignment")
    for m in messages:
        audio_ms = len(base64.b64decode(m["audio"])) / 8
        for key in ("alignment", "normalizedAlignment"):
            if m.get(key):
                a = m[key]
                assert a["charStartTimesMs"][-1] + a["charDurationsMs"][-1] <= audio_ms + 1


async def test_elevenlabs_apply_text_normalization_off(server: LiveServer) -> None:
    text = "It costs $4.99 today. "
    messages = [m for m in await _elevenlabs(server, text, "&apply_text_normalization=off")
                if "audio" in m]
    assert _chars(messages, "normalizedAlignment").strip() == text.strip()
    assert _chars(messages, "alignment") == _chars(messages, "normalizedAlignment")


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


class _SelfNormalizingEngine:
    capabilities = EngineCapabilities(cloning=False, streaming="token", normalizes_text=True)


class _Runtime:
    """What ``Utterance.spoken_form`` reads of the runtime (a fake, not a mock)."""

    def __init__(self, engine: object, **settings: Any) -> None:
        self.engine = engine
        self.settings = make_settings(**settings)

    def loudness_tracker(self) -> LoudnessTracker:
        return LoudnessTracker(-23.0)


def _utterance(runtime: Any, *, normalize: bool = True) -> Utterance:
    spec = UtteranceSpec("x", normalize=normalize)
    plan = UtterancePlan(spec, SynthesisParams(preset=get_preset(None)),
                         VoiceHandle("default", builtin=True), MULAW)
    return Utterance(runtime, plan, None)


def test_who_decides_whether_the_text_is_normalized() -> None:
    plain_engine = type("E", (), {"capabilities": EngineCapabilities(False, "token")})()
    assert _utterance(_Runtime(plain_engine)).spoken_form("$5").spoken == "five dollars"
    assert _utterance(_Runtime(plain_engine), normalize=False).spoken_form("$5") is None
    assert _utterance(_Runtime(plain_engine, text_normalization=False)).spoken_form("$5") is None
    # An engine that reads numbers itself says so, and gets the text as sent.
    assert _utterance(_Runtime(_SelfNormalizingEngine())).spoken_form("$5") is None
    assert _utterance(_Runtime(plain_engine)).spoken_form("Hello.") is None  # nothing to do


def test_a_cut_clause_is_reported_in_the_clients_words() -> None:
    text = "Pay $25.50 by Friday please."
    spoken = normalize(text)
    # Half a second of "Pay twenty-five dollars and fifty cents by ...": the caller heard
    # "Pay" and part of the amount; the amount is only counted once heard in full.
    heard, estimated = estimate_heard(text, 0.5, spoken)
    assert estimated and text.startswith(heard) and "$" not in heard
    heard, _ = estimate_heard(text, 3.2, spoken)
    assert heard.startswith("Pay $25.50") and text.startswith(heard)


@pytest.mark.parametrize("setting", [None, "off"])
def test_elevenlabs_with_timestamps_aligns_the_text_and_what_the_engine_read(
    server: LiveServer, setting: str | None
) -> None:
    text = "Your total is $12.50."
    body: dict[str, Any] = {"text": text}
    if setting is not None:
        body["apply_text_normalization"] = setting
    r = httpx.post(server.http + "/v1/text-to-speech/default/with-timestamps"
                   "?output_format=pcm_16000", json=body, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()
    assert "".join(got["alignment"]["characters"]) == text
    said = "".join(got["normalized_alignment"]["characters"])
    assert said == (text if setting == "off" else normalize(text).spoken)
    ends = got["alignment"]["character_end_times_seconds"]
    assert ends[-1] == got["normalized_alignment"]["character_end_times_seconds"][-1]


def test_elevenlabs_apply_text_normalization_takes_only_its_values(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/text-to-speech/default",
                   json={"text": "Hi.", "apply_text_normalization": "sometimes"}, timeout=30)
    assert r.status_code in (400, 422)
    assert httpx.get(server.http + "/health", timeout=10).status_code == 200
