"""POST /v1/audio/speech over a real socket, driven by the official ``openai`` client."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from app.audio.files import available_file_formats
from tests.servers import LiveServer, live_server, make_settings

TEXT = "Thanks for calling the clinic. How can I help you today?"
KEY = "sk-test-openai-compat"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings(tts_engine="piper", max_text_length=300)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.http + "/v1", api_key="unused", max_retries=0) as c:
        yield c


def pcm_seconds(data: bytes, rate: int = 24_000) -> float:
    return len(data) / 2 / rate


def test_openai_client_gets_24khz_pcm_and_wav_of_the_same_speech(client: openai.OpenAI) -> None:
    pcm = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
    ).content
    wav = client.audio.speech.create(
        model="tts-1", voice="default", input=TEXT, response_format="wav"
    ).content
    assert 1.5 < pcm_seconds(pcm) < 10
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
        frames = w.readframes(w.getnframes())
    # Piper samples its noise afresh per run, so compare durations, not bytes.
    assert abs(pcm_seconds(frames) - pcm_seconds(pcm)) < 0.15 * pcm_seconds(pcm)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence


def test_openai_streaming_response_reports_model_and_format(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="nova", input=TEXT, response_format="pcm"
    ) as response:
        assert response.headers["x-model"] == "gpt-4o-mini-tts"
        assert response.headers["x-sample-rate"] == "24000"
        assert response.headers["x-backend"] == "piper"
        data = b"".join(response.iter_bytes())
    assert pcm_seconds(data) > 1.5


COMPRESSED = [f for f in ("mp3", "opus", "flac") if f in available_file_formats()]


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_compressed_formats_decode_to_the_same_duration(client: openai.OpenAI, fmt: str) -> None:
    pcm = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
    ).content
    data = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt  # type: ignore[arg-type]
    ).content
    samples, rate = sf.read(io.BytesIO(data))
    # Piper draws phoneme durations with noise per run: durations agree only roughly.
    assert abs(len(samples) / rate - pcm_seconds(pcm)) < 0.15 * pcm_seconds(pcm)


def test_available_formats_include_the_compressed_ones_with_this_libsndfile() -> None:
    # soundfile's wheel bundles libsndfile with FLAC, Opus and MP3: all should be offered.
    assert set(available_file_formats()) == {"wav", "mp3", "opus", "flac"}


def test_speed_changes_the_duration_on_piper(client: openai.OpenAI) -> None:
    normal = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                        response_format="pcm").content
    fast = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                      response_format="pcm", speed=1.5).content
    assert pcm_seconds(fast) < 0.85 * pcm_seconds(normal)


def test_unknown_voice_is_an_openai_shaped_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    body = err.value.body
    assert isinstance(body, dict)
    assert body["code"] == "voice_not_found"
    assert body["type"] == "not_found_error"
    assert "nobody" in body["message"]


def test_unsupported_format_is_a_400_listing_the_supported(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/audio/speech", timeout=30,
                   json={"model": "tts-1", "voice": "alloy", "input": TEXT,
                         "response_format": "aac"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "unsupported_response_format"
    assert error["type"] == "invalid_request_error"
    for name in ("pcm", *available_file_formats()):
        assert name in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tts-1", "voice": "alloy"}, "input"),
        ({"model": "tts-1", "voice": "alloy", "input": TEXT, "speed": 9}, "speed"),
        ({"model": "tts-1", "voice": "alloy", "input": 5}, "input"),
    ],
)
def test_invalid_bodies_get_openai_errors_naming_the_field(
    server: LiveServer, body: dict[str, object], param: str
) -> None:
    r = httpx.post(server.http + "/v1/audio/speech", json=body, timeout=30)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_request"


def test_text_limit_and_bad_voice_id_are_400s(server: LiveServer) -> None:
    url = server.http + "/v1/audio/speech"
    long = httpx.post(url, json={"voice": "alloy", "input": "word " * 100}, timeout=30)
    assert long.status_code == 400 and long.json()["error"]["code"] == "text_too_long"
    bad = httpx.post(url, json={"voice": "../etc", "input": TEXT}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_voice_id"


def test_a_full_replica_answers_503_with_retry_after() -> None:
    settings = make_settings(max_concurrent_streams=1, synthetic_rtf=1.0,
                             synthetic_chunk_ms=100)
    with live_server(settings) as s, httpx.Client(base_url=s.http, timeout=30) as c:
        body = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm"}
        with c.stream("POST", "/v1/audio/speech", json=body) as first:
            assert first.status_code == 200
            chunks = first.iter_raw()  # kept: dropping the iterator hangs up
            next(chunks)
            second = c.post("/v1/audio/speech", json=body)
            assert second.status_code == 503
            assert second.headers["retry-after"]
            assert second.json()["error"]["code"] == "busy"
        # The first client hung up mid-stream: its slot comes back.
        deadline = time.monotonic() + 5
        while s.runtime.capacity.in_use and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.runtime.capacity.in_use == 0


def test_api_key_is_required_when_configured() -> None:
    with live_server(make_settings(api_keys=KEY)) as s:
        with openai.OpenAI(base_url=s.http + "/v1", api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as err:
                bad.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
            assert isinstance(err.value.body, dict)
            assert err.value.body["code"] == "unauthorized"
        r = httpx.post(s.http + "/v1/audio/speech", json={"voice": "alloy", "input": TEXT})
        assert r.status_code == 401
        with openai.OpenAI(base_url=s.http + "/v1", api_key=KEY, max_retries=0) as good:
            audio = good.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                             response_format="pcm").content
        assert len(audio) > 0
