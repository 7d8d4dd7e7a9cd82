"""POST /v1/audio/speech/stream over a real socket: raw audio, chunked, as it is generated."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from app.audio.codecs import audioop
from tests.servers import LiveServer, live_server, make_settings

TEXT = ("Thanks for calling, this is Joe. Your appointment is on Friday at three. "
        "Is there anything else I can help you with today?")
KEY = "stream-test-key"


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LiveServer]:
    # Generation at real time: 100 ms chunks, each 100 ms apart.
    settings = make_settings(synthetic_rtf=1.0, synthetic_chunk_ms=100,
                             max_concurrent_streams=1, max_text_length=400)
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def piper_server() -> Iterator[LiveServer]:
    with live_server(make_settings(tts_engine="piper")) as s:
        yield s


def test_first_bytes_arrive_long_before_synthesis_ends(slow_server: LiveServer) -> None:
    arrivals: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    with httpx.stream("POST", slow_server.http + "/v1/audio/speech/stream",
                      json={"text": TEXT, "format": "pcm_16000"}, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["x-sample-rate"] == "16000"
        for chunk in r.iter_raw():
            arrivals.append((time.perf_counter() - t0, len(chunk)))
    total_bytes = sum(n for _, n in arrivals)
    audio_s = total_bytes / 2 / 16_000
    first_s, last_s = arrivals[0][0], arrivals[-1][0]
    assert audio_s > 4.0
    assert len(arrivals) > 10
    assert first_s < 0.5  # one engine chunk, not the whole utterance
    assert last_s - first_s > 0.5 * audio_s  # the rest came as it was generated


@pytest.mark.parametrize(("fmt", "rate", "width", "media"), [
    ("pcm_16000", 16_000, 2, "application/octet-stream"),
    ("pcm_24000", 24_000, 2, "application/octet-stream"),
    ("mulaw_8000", 8_000, 1, "audio/basic"),
])
def test_formats_give_the_same_speech_at_their_rate(
    piper_server: LiveServer, fmt: str, rate: int, width: int, media: str
) -> None:
    r = httpx.post(piper_server.http + "/v1/audio/speech/stream",
                   json={"text": TEXT, "format": fmt}, timeout=60)
    assert r.status_code == 200
    assert r.headers["content-type"] == media
    assert r.headers["x-audio-format"] == fmt and r.headers["x-sample-rate"] == str(rate)
    data = r.content
    assert len(data) % width == 0
    seconds = len(data) / width / rate
    assert 4.0 < seconds < 15.0
    pcm = audioop.ulaw2lin(data, 2) if fmt == "mulaw_8000" else data
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    assert np.sqrt(np.mean(samples**2)) > 0.01


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"text": TEXT, "voice_id": "nobody"}, 404, "voice_not_found"),
    ({"text": TEXT, "voice_id": "a/b"}, 400, "invalid_voice_id"),
    ({"text": TEXT, "format": "mp3"}, 400, "unsupported_format"),
    ({"text": "   "}, 400, "invalid_request"),
    ({"text": TEXT, "preset": "nope"}, 400, "invalid_request"),
    ({"text": "word " * 200}, 400, "text_too_long"),
    ({"voice_id": "default"}, 400, "invalid_request"),
])
def test_bad_requests_fail_before_the_first_byte(
    slow_server: LiveServer, body: dict[str, object], status: int, code: str
) -> None:
    r = httpx.post(slow_server.http + "/v1/audio/speech/stream", json=body, timeout=30)
    assert r.status_code == status
    assert r.json()["code"] == code
    assert "error" in r.json()
    assert slow_server.runtime.capacity.in_use == 0


def test_full_replica_is_503_and_a_client_that_leaves_frees_its_slot(
    slow_server: LiveServer,
) -> None:
    url = slow_server.http + "/v1/audio/speech/stream"
    with httpx.stream("POST", url, json={"text": TEXT}, timeout=30) as first:
        assert first.status_code == 200
        chunks = first.iter_raw()  # kept: dropping the iterator hangs up
        next(chunks)
        busy = httpx.post(url, json={"text": TEXT}, timeout=30)
        assert busy.status_code == 503 and busy.headers["retry-after"]
        assert busy.json()["code"] == "busy"
    # The first client hung up mid-stream: its slot must come back.
    deadline = time.monotonic() + 5
    while slow_server.runtime.capacity.in_use and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow_server.runtime.capacity.in_use == 0


def test_api_key_is_required_when_configured() -> None:
    with live_server(make_settings(api_keys=KEY)) as s:
        url = s.http + "/v1/audio/speech/stream"
        missing = httpx.post(url, json={"text": "Hello there."}, timeout=30)
        assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
        ok = httpx.post(url, json={"text": "Hello there."}, timeout=30,
                        headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and len(ok.content) > 0
