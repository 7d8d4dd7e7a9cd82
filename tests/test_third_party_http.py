"""The ElevenLabs HTTP routes, OpenAI's streamed formats and SSE, and the seed-003 shapes.

Behaviour the compatibility tests do not pin down: compressed audio leaves before synthesis
ends, alignment times run on across NDJSON lines, errors come in each API's own shape,
``VOICE_ALIASES`` reaches the voice, ``/v1/audio/speech/stream`` defaults to 24 kHz and takes
``temperature``/``top_p``, and the binary socket ``/v1/audio/speech/stream/ws``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.servers import LiveServer, live_server, make_settings
from tests.test_client_compat import decoded_seconds, write_voice

KEY = "third-party-key"
TEXT = "Thanks for calling the clinic today. How can I help you with your appointment?"
HEADERS = {"xi-api-key": KEY}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("third")
    write_voice(tmp / "voices", "alice")
    settings = make_settings(api_keys=KEY, voices_dir=tmp / "voices",
                             voice_cache_dir=tmp / "cache", voice_aliases="alloy=alice")
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LiveServer]:
    """Half real time in 200 ms chunks: a 5 s utterance takes 2.5 s to synthesize."""
    with live_server(make_settings(api_keys=KEY, synthetic_rtf=0.5,
                                   synthetic_chunk_ms=200)) as s:
        yield s


def first_bytes_while_synthesizing(server: LiveServer, url: str, body: dict[str, object],
                                   headers: dict[str, str]) -> tuple[bool, bytes]:
    """(was the engine still generating when the first body bytes came, the whole body)."""
    engine = server.runtime.engine
    parts = []
    with httpx.stream("POST", server.http + url, json=body, headers=headers, timeout=60) as r:
        assert r.status_code == 200, r.read()
        still = None
        for chunk in r.iter_raw():
            if still is None:
                still = engine.active_generations == 1
            parts.append(chunk)
    return bool(still), b"".join(parts)


@pytest.mark.parametrize("fmt", ["mp3_44100_128", "opus_48000_64"])
def test_elevenlabs_stream_sends_compressed_audio_before_synthesis_ends(
    slow_server: LiveServer, fmt: str
) -> None:
    still, data = first_bytes_while_synthesizing(
        slow_server, f"/v1/text-to-speech/default/stream?output_format={fmt}",
        {"text": TEXT}, HEADERS)
    assert still
    assert decoded_seconds(data) > 3.0


def test_openai_mp3_streams_before_synthesis_ends(slow_server: LiveServer) -> None:
    still, data = first_bytes_while_synthesizing(
        slow_server, "/v1/audio/speech",
        {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "mp3"},
        {"authorization": f"Bearer {KEY}"})
    assert still
    assert decoded_seconds(data) > 3.0


def test_ndjson_alignment_runs_on_across_lines(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/text-to-speech/alice/stream/with-timestamps"
                   "?output_format=pcm_24000", json={"text": TEXT}, headers=HEADERS)
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.text.splitlines() if line]
    assert len(lines) > 3
    chars, starts, ends = [], [], []
    for line in lines:
        if "alignment" in line:
            a = line["alignment"]
            chars += a["characters"]
            starts += a["character_start_times_seconds"]
            ends += a["character_end_times_seconds"]
    assert "".join(chars) == TEXT
    assert starts == sorted(starts) and all(e >= s for s, e in zip(starts, ends, strict=True))
    audio_s = sum(len(base64.b64decode(x["audio_base64"])) for x in lines) / 48000
    assert ends[-1] == pytest.approx(audio_s, abs=0.05)


@pytest.mark.parametrize(("url", "headers", "status", "code"), [
    ("/v1/text-to-speech/nobody", HEADERS, 404, "voice_not_found"),
    ("/v1/text-to-speech/bad.voice", HEADERS, 400, "invalid_voice_id"),
    ("/v1/text-to-speech/alice?output_format=mp3_8000_8", HEADERS, 400,
     "unsupported_output_format"),
    ("/v1/text-to-speech/alice", {}, 401, "unauthorized"),
])
def test_elevenlabs_errors_in_their_shape(
    server: LiveServer, url: str, headers: dict[str, str], status: int, code: str
) -> None:
    r = httpx.post(server.http + url, json={"text": TEXT}, headers=headers)
    assert r.status_code == status
    detail = r.json()["detail"]
    assert detail["status"] == code and detail["message"]


def test_elevenlabs_validation_is_422_and_unknown_fields_pass(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/text-to-speech/alice", json={"model_id": "x"},
                   headers=HEADERS)
    assert r.status_code == 422 and r.json()["detail"]["status"] == "invalid_request"
    r = httpx.post(server.http + "/v1/text-to-speech/alice?output_format=pcm_16000",
                   json={"text": TEXT, "model_id": "eleven_flash_v2_5", "seed": 7,
                         "voice_settings": {"stability": 0.5, "speed": 1.1},
                         "apply_text_normalization": "auto", "something_new": [1, 2]},
                   headers=HEADERS)
    assert r.status_code == 200
    assert r.headers["x-model"] == "eleven_flash_v2_5"
    assert int(r.headers["content-length"]) / 2 / 16000 > 1.5


def test_voice_aliases_reach_the_cloned_voice(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/audio/speech", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "tts-1", "voice": "alloy", "input": TEXT,
                         "response_format": "pcm"})
    assert r.status_code == 200 and r.headers["x-voice-id"] == "alice"
    r = httpx.post(server.http + "/v1/audio/speech", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "tts-1", "voice": "nova", "input": TEXT,
                         "response_format": "pcm"})
    assert r.headers["x-voice-id"] == "default"  # an unmapped OpenAI name


def test_openai_rejects_an_unknown_stream_format_in_its_shape(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/audio/speech", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "tts-1", "voice": "alloy", "input": TEXT,
                         "stream_format": "carrier-pigeon"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


def test_seed003_stream_defaults_to_24khz_and_takes_sampling(server: LiveServer) -> None:
    r = httpx.post(server.http + "/v1/audio/speech/stream",
                   headers={"authorization": f"Bearer {KEY}"},
                   json={"text": TEXT, "temperature": 0.7, "top_p": 0.9})
    assert r.status_code == 200
    assert r.headers["x-sample-rate"] == "24000"
    assert len(r.content) / 2 / 24000 > 1.5
    bad = httpx.post(server.http + "/v1/audio/speech/stream",
                     headers={"authorization": f"Bearer {KEY}"},
                     json={"text": TEXT, "top_p": 1.5})
    assert bad.status_code == 400


async def test_seed003_socket_start_binary_end_and_cancel(slow_server: LiveServer) -> None:
    url = f"{slow_server.ws}/v1/audio/speech/stream/ws?api_key={KEY}"
    async with websockets.connect(url, max_size=2**24) as ws:
        await ws.send(json.dumps({"type": "start", "text": "Short and sweet.",
                                  "temperature": 0.6}))
        start = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert start["type"] == "start" and start["sample_rate"] == 24000
        assert start["encoding"] == "pcm_s16le"
        audio = b""
        while True:
            message = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(message, bytes):
                audio += message
                continue
            end = json.loads(message)
            break
        assert end["type"] == "end" and end["bytes"] == len(audio) and end["chunks"] > 1
        assert len(audio) / 2 / 24000 == pytest.approx(end["duration_s"], abs=0.01)
        # a bad request gets an error and the socket stays open
        await ws.send(json.dumps({"text": "", "format": "pcm_16000"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "error"
        # cancel stops a running request: nothing of it follows the acknowledgement
        await ws.send(json.dumps({"text": TEXT * 3}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "start"
        await asyncio.wait_for(ws.recv(), 10)  # some audio
        await ws.send(json.dumps({"type": "cancel"}))
        while True:
            message = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(message, str):
                assert json.loads(message)["type"] == "cancelled"
                break
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)


def test_settings_reject_a_malformed_alias(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_settings(voice_aliases="alloy=../etc", voice_cache_dir=tmp_path)
