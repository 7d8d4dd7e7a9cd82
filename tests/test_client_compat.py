"""The real client libraries, unchanged but for base URL, key and voice, against a live server.

Each case runs a client's public API the way an application would and checks that it got at
least 1.5 s of speech (decoded where the client hands back a file or a compressed stream).
The server is the synthetic engine on 127.0.0.1 with API keys on and a local voice store
holding a voice ``alice``, so the key and voice plumbing is exercised too; ``VOICE_ALIASES``
maps OpenAI's ``alloy`` to it.

Covered here (in-process): the ElevenLabs SDK (``convert``, ``stream``,
``convert_with_timestamps``, ``stream_with_timestamps``, ``convert_realtime`` with its default
mp3), the openai SDK (``stream_format="sse"``, pcm and mp3), LiveKit's ``elevenlabs.TTS``
(``synthesize()`` with its default ``mp3_22050_32``, ``stream()`` over multi-stream-input)
and ``openai.TTS`` with its default settings (``gpt-4o-mini-tts``: SSE carrying mp3), and
twilio's ``RequestValidator`` signing our webhook. pipecat runs in its own environment:
``tests/test_client_compat_pipecat.py``.

``convert_realtime`` turns any base URL into ``wss://``, so its case runs against a TLS
server with a throwaway certificate that the client trusts through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import av
import httpx
import numpy as np
import openai
import pytest
from elevenlabs.client import ElevenLabs
from livekit.plugins import elevenlabs as lk_elevenlabs
from livekit.plugins import openai as lk_openai

from app.audio.wav import wav_bytes
from tests.servers import LiveServer, make_settings

KEY = "xi-test-compat-key"
VOICE = "alice"
TEXT = "Thanks for calling the clinic today. How can I help you with your appointment?"
MIN_SECONDS = 1.5


def write_voice(root: Path, voice_id: str) -> None:
    rng = np.random.default_rng(7)
    clip = (rng.standard_normal(24_000 * 6) * 3000).astype("<i2").tobytes()
    (root / voice_id).mkdir(parents=True)
    (root / voice_id / "sample.wav").write_bytes(wav_bytes(clip, 24_000))


def settings(tmp: Path):  # type: ignore[no-untyped-def]
    return make_settings(
        api_keys=KEY, voices_dir=tmp / "voices", voice_cache_dir=tmp / "cache",
        voice_aliases="alloy=alice,ash=alice", synthetic_chunk_ms=200,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("compat")
    write_voice(tmp / "voices", VOICE)
    s = LiveServer(settings(tmp)).start()
    try:
        yield s
    finally:
        s.stop()


def decoded_seconds(data: bytes) -> float:
    """Seconds of audio in a compressed file or stream (MP3, Ogg), decoded by FFmpeg."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def pcm_seconds(data: bytes, rate: int) -> float:
    return len(data) / 2 / rate


# --- the ElevenLabs SDK -------------------------------------------------------------------


@pytest.fixture(scope="module")
def eleven(server: LiveServer) -> ElevenLabs:
    return ElevenLabs(api_key=KEY, base_url=server.http)


def test_elevenlabs_sdk_convert_default_mp3(eleven: ElevenLabs) -> None:
    data = b"".join(eleven.text_to_speech.convert(VOICE, text=TEXT))
    assert decoded_seconds(data) >= MIN_SECONDS


def test_elevenlabs_sdk_stream_pcm(eleven: ElevenLabs) -> None:
    chunks = list(eleven.text_to_speech.stream(VOICE, text=TEXT, output_format="pcm_16000"))
    assert len(chunks) > 1
    assert pcm_seconds(b"".join(chunks), 16_000) >= MIN_SECONDS


def test_elevenlabs_sdk_convert_with_timestamps(eleven: ElevenLabs) -> None:
    out = eleven.text_to_speech.convert_with_timestamps(
        VOICE, text=TEXT, output_format="pcm_24000"
    )
    seconds = pcm_seconds(base64.b64decode(out.audio_base_64), 24_000)
    assert seconds >= MIN_SECONDS
    assert out.alignment is not None
    assert "".join(out.alignment.characters) == TEXT
    assert out.alignment.character_end_times_seconds[-1] == pytest.approx(seconds, abs=0.05)


def test_elevenlabs_sdk_stream_with_timestamps(eleven: ElevenLabs) -> None:
    parts = list(eleven.text_to_speech.stream_with_timestamps(
        VOICE, text=TEXT, output_format="pcm_22050"
    ))
    audio = b"".join(base64.b64decode(p.audio_base_64) for p in parts)
    assert pcm_seconds(audio, 22_050) >= MIN_SECONDS
    chars = "".join("".join(p.alignment.characters) for p in parts if p.alignment)
    assert chars == TEXT


def test_elevenlabs_sdk_errors_are_api_errors(eleven: ElevenLabs) -> None:
    from elevenlabs.core.api_error import ApiError

    with pytest.raises(ApiError) as info:
        b"".join(eleven.text_to_speech.convert("nobody-here", text=TEXT))
    assert info.value.status_code == 404
    with pytest.raises(ApiError) as info:
        b"".join(eleven.text_to_speech.convert(VOICE, text=TEXT, output_format="mp3_8000_8"))
    assert info.value.status_code in (400, 422)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("output_format", [None, "pcm_16000"])
def test_elevenlabs_sdk_convert_realtime(
    tmp_path: Path, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
    output_format: str | None,
) -> None:
    cert, key = tls_files
    write_voice(tmp_path / "voices", VOICE)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = LiveServer(settings(tmp_path), ssl_certfile=cert, ssl_keyfile=key).start()
    try:
        client = ElevenLabs(api_key=KEY, base_url=f"https://127.0.0.1:{server.port}")

        def text() -> Iterator[str]:
            yield "Thanks for calling the clinic today. "
            yield "How can I help you with your appointment?"

        kwargs = {"output_format": output_format} if output_format else {}
        data = b"".join(client.text_to_speech.convert_realtime(VOICE, text=text(), **kwargs))
    finally:
        server.stop()
    if output_format is None:  # the SDK's default, mp3_44100_128
        assert decoded_seconds(data) >= MIN_SECONDS
    else:
        assert pcm_seconds(data, 16_000) >= MIN_SECONDS


# --- the openai SDK -----------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["pcm", "mp3"])
def test_openai_sdk_sse_stream(server: LiveServer, response_format: str) -> None:
    client = openai.OpenAI(base_url=f"{server.http}/v1", api_key=KEY, max_retries=0)
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT,
        response_format=response_format, stream_format="sse",  # type: ignore[arg-type]
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    import json

    parsed = [json.loads(line[6:]) for line in events]
    deltas = [e for e in parsed if e["type"] == "speech.audio.delta"]
    assert len(deltas) > 1
    assert parsed[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    if response_format == "pcm":
        assert pcm_seconds(audio, 24_000) >= MIN_SECONDS
    else:
        assert decoded_seconds(audio) >= MIN_SECONDS


# --- LiveKit Agents plugins ---------------------------------------------------------------


def run_async(coro):  # type: ignore[no-untyped-def]
    """LiveKit's plugins are asyncio code: run one case on a fresh loop in this thread."""
    return asyncio.run(coro)


async def _frames_seconds(frames: list) -> float:  # type: ignore[type-arg]
    return sum(f.samples_per_channel / f.sample_rate for f in frames)


def test_livekit_elevenlabs_synthesize(server: LiveServer) -> None:
    async def case() -> float:
        async with aiohttp.ClientSession() as session:
            tts = lk_elevenlabs.TTS(
                api_key=KEY, base_url=f"{server.http}/v1", voice_id=VOICE, http_session=session
            )
            frames = [ev.frame async for ev in tts.synthesize(TEXT)]
            await tts.aclose()
        return await _frames_seconds(frames)

    assert run_async(case()) >= MIN_SECONDS


def test_livekit_elevenlabs_stream(server: LiveServer) -> None:
    async def case() -> float:
        async with aiohttp.ClientSession() as session:
            tts = lk_elevenlabs.TTS(
                api_key=KEY, base_url=f"{server.http}/v1", voice_id=VOICE, http_session=session
            )
            stream = tts.stream()
            for word in TEXT.split(" "):
                stream.push_text(word + " ")
            stream.flush()
            stream.end_input()
            frames = [ev.frame async for ev in stream]
            await stream.aclose()
            await tts.aclose()
        return await _frames_seconds(frames)

    assert run_async(case()) >= MIN_SECONDS


def test_livekit_openai_default_settings(server: LiveServer) -> None:
    async def case() -> float:
        tts = lk_openai.TTS(api_key=KEY, base_url=f"{server.http}/v1")
        frames = [ev.frame async for ev in tts.synthesize(TEXT)]
        await tts.aclose()
        return await _frames_seconds(frames)

    assert run_async(case()) >= MIN_SECONDS


# --- twilio -------------------------------------------------------------------------------


def test_twilio_request_validator_signs_our_webhook(tmp_path: Path) -> None:
    from twilio.request_validator import RequestValidator

    token = "twilio-compat-token"
    s = LiveServer(make_settings(
        twilio_auth_token=token, twilio_stream_url="wss://example.test/stream",
        voice_cache_dir=tmp_path,
    )).start()
    try:
        url = f"{s.http}/twilio/voice"
        form = {"CallSid": "CA123", "From": "+15550001111", "voice_id": "default"}
        signature = RequestValidator(token).compute_signature(url, form)
        ok = httpx.post(url, data=form, headers={"X-Twilio-Signature": signature})
        bad = httpx.post(url, data=form, headers={"X-Twilio-Signature": "forged"})
    finally:
        s.stop()
    assert ok.status_code == 200 and "<Stream" in ok.text
    assert bad.status_code == 403
