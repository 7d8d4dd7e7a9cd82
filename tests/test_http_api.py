"""HTTP API over a real socket: /health, /ready, /synthesize and its errors."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from app.audio.codecs import audioop
from app.presets import PRESETS
from tests.servers import LiveServer, live_server, make_settings


@pytest.fixture(scope="module")
def piper_server() -> Iterator[LiveServer]:
    with live_server(make_settings(tts_engine="piper", max_text_length=300)) as server:
        yield server


@pytest.fixture(scope="module")
def client(piper_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=piper_server.http, timeout=60) as c:
        yield c


def mulaw_frames_to_pcm(frames: list[str]) -> np.ndarray:
    raw = b"".join(base64.b64decode(f) for f in frames)
    return np.frombuffer(audioop.ulaw2lin(raw, 2), dtype="<i2").astype(np.float64) / 32768


def band_energy_ratio(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = spectrum[(freqs >= lo) & (freqs <= hi)].sum()
    return float(band / spectrum.sum())


def test_health_reports_engine_reason_capacity_and_presets(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True
    assert body["backend"] == "piper"
    assert body["engine_reason"] == "TTS_ENGINE=piper"
    assert body["device"] == "cpu"
    assert body["presets"] == list(PRESETS)
    assert body["capabilities"]["cloning"] is False
    assert body["capacity"]["max"] >= 1
    assert isinstance(body["cached_voices"], int)
    assert client.get("/ready").json() == {"ready": True}


def test_piper_speaks_two_sentences_as_telephone_speech(client: httpx.Client) -> None:
    text = (
        "Thanks for calling the Riverside dental clinic, this is Joe speaking. "
        "How can I help you with your appointment today?"
    )
    response = client.post("/synthesize", json={"text": text, "voice_id": "default"})
    assert response.status_code == 200
    body = response.json()
    assert body["format"] == "mulaw" and body["sample_rate"] == 8000
    assert body["backend"] == "piper" and body["builtin_voice"] is True
    frames = body["audio"]
    assert all(len(base64.b64decode(f)) == 160 for f in frames)
    pcm = mulaw_frames_to_pcm(frames)
    seconds = len(pcm) / 8000
    assert 3.0 <= seconds <= 12.0
    assert body["duration_seconds"] == pytest.approx(seconds, abs=0.02)
    rms = float(np.sqrt(np.mean(pcm**2)))
    assert rms > 0.01, "speech must not be silent"
    assert band_energy_ratio(pcm, 8000, 300, 3400) > 0.5
    assert set(body["latency"]) >= {"engine_first_chunk_ms", "resample_ms", "encode_ms"}


@pytest.mark.parametrize(
    ("fmt", "rate", "width"),
    [("pcm_8000", 8000, 2), ("pcm_16000", 16000, 2), ("pcm_24000", 24000, 2)],
)
def test_pcm_formats_return_whole_utterance(
    client: httpx.Client, fmt: str, rate: int, width: int
) -> None:
    body = client.post(
        "/synthesize", json={"text": "Hello there.", "output_format": fmt}
    ).json()
    raw = base64.b64decode(body["audio"])
    assert body["sample_rate"] == rate
    assert len(raw) % width == 0
    assert len(raw) / width / rate == pytest.approx(body["duration_seconds"], abs=0.01)
    pcm = np.frombuffer(raw, dtype="<i2")
    assert np.abs(pcm).max() > 1000


def test_wav_is_at_engine_rate(client: httpx.Client) -> None:
    body = client.post("/synthesize", json={"text": "Hello there.", "output_format": "wav"}).json()
    with wave.open(io.BytesIO(base64.b64decode(body["audio"]))) as w:
        assert w.getframerate() == 22050 == body["sample_rate"]
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert w.getnframes() / 22050 == pytest.approx(body["duration_seconds"], abs=0.01)


def test_alaw_returns_160_byte_frames(client: httpx.Client) -> None:
    body = client.post("/synthesize", json={"text": "Hello there.", "output_format": "alaw"}).json()
    assert body["format"] == "alaw"
    assert all(len(base64.b64decode(f)) == 160 for f in body["audio"])


@pytest.mark.parametrize(
    ("payload", "status", "code", "needle"),
    [
        ({"text": "Hi", "preset": "turbo-max"}, 400, "invalid_request", "Valid presets"),
        ({"text": "Hi", "output_format": "mp3"}, 400, "unsupported_output_format",
         "Valid formats"),
        ({"text": ""}, 400, "invalid_request", "empty"),
        ({"text": "   "}, 400, "invalid_request", "empty"),
        ({"text": "x" * 301}, 400, "text_too_long", "limit 300"),
        ({"text": 5}, 400, "invalid_request", "text"),
        ({"text": ["a"]}, 400, "invalid_request", "text"),
        ({"voice_id": "default"}, 400, "invalid_request", "text"),
        ({"text": "Hi", "voice_id": 7}, 400, "invalid_request", "voice_id"),
        ({"text": "Hi", "voice_id": "../x"}, 400, "invalid_voice_id", "Invalid voice_id format"),
        ({"text": "Hi", "voice_id": "a/b"}, 400, "invalid_voice_id", "Invalid voice_id format"),
        ({"text": "Hi", "voice_id": ""}, 400, "invalid_voice_id", "Invalid voice_id format"),
        ({"text": "Hi", "voice_id": "nobody"}, 404, "voice_not_found", "Voice not found: nobody"),
        ({"text": "Hi", "speed": -1}, 400, "invalid_request", "speed"),
    ],
)
def test_bad_requests_get_clear_errors(
    client: httpx.Client, payload: dict[str, object], status: int, code: str, needle: str
) -> None:
    response = client.post("/synthesize", json=payload)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert needle in body["error"]


def test_malformed_json_body_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/synthesize", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_service_stays_healthy_after_bad_input(client: httpx.Client) -> None:
    for payload in ({"text": 1}, {"text": "Hi", "voice_id": "../../etc"}, {"text": ""}):
        client.post("/synthesize", json=payload)
    response = client.post("/synthesize", json={"text": "Still here."})
    assert response.status_code == 200
    assert len(response.json()["audio"]) > 10


def test_synthetic_engine_is_never_the_default() -> None:
    from app.engines.registry import choose_engine

    choice = choose_engine(make_settings(tts_engine="auto"))
    assert choice.name in ("piper", "chatterbox")
    assert "auto" in choice.reason


def test_codec_bindings_are_probed_at_startup_not_on_the_first_request() -> None:
    """Every route resolves its format through ``offered``, whose first call loads and
    probes PyAV, LAME and libsndfile (about 0.35 s); the app does it while starting."""
    from app.audio.compressed import available_codecs
    from app.audio.files import available_file_formats

    available_codecs.cache_clear()
    available_file_formats.cache_clear()
    with live_server(make_settings()):
        assert available_codecs.cache_info().currsize == 1
        assert available_file_formats.cache_info().currsize == 1
