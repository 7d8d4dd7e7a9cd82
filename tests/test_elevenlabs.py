"""WS /v1/text-to-speech/{voice_id}/stream-input with a client written from ElevenLabs' docs.

The client only uses the documented message shapes: ``{"text": " ", "voice_settings",
"generation_config"}`` first, then ``{"text", "try_trigger_generation" | "flush"}``, then
``{"text": ""}``; it reads ``{"audio", "isFinal", "alignment": {"chars",
"charStartTimesMs", "charDurationsMs"}}`` until ``isFinal`` and expects the server to close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets

from app.audio.codecs import audioop
from app.text.alignment import estimate_char_timings
from tests.servers import LiveServer, live_server, make_settings

KEY = "xi-test-key"
CHUNKS = ["Hello! ", "Thanks for calling the ", "clinic, this is Joe. ", "How can I ",
          "help you today? "]
BYTES_PER_SAMPLE = {"ulaw_8000": 1}
RATES = {"ulaw_8000": 8000, "pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000,
         "pcm_44100": 44100}


@pytest.fixture(scope="module")
def piper_server() -> Iterator[LiveServer]:
    with live_server(make_settings(tts_engine="piper")) as s:
        yield s


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = make_settings(synthetic_rtf=0.0, api_keys=KEY, max_concurrent_streams=1,
                             clause_idle_flush_ms=5000)
    with live_server(settings) as s:
        yield s


class ElevenLabsClient:
    """What an ElevenLabs stream-input client does, from the documented shapes only."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, base: str, voice_id: str, output_format: str,
                      key: str | None = KEY, by: str = "header") -> ElevenLabsClient:
        url = f"{base}/v1/text-to-speech/{voice_id}/stream-input?model_id=eleven_flash_v2_5"
        url += f"&output_format={output_format}"
        headers = {}
        if key is not None and by == "header":
            headers["xi-api-key"] = key
        elif key is not None:
            url += f"&xi_api_key={key}"
        return cls(await websockets.connect(url, additional_headers=headers, max_size=2**24))

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def begin(self) -> None:
        await self.send({
            "text": " ",
            "voice_settings": {"stability": 0.5, "similarity_boost": 0.8},
            "generation_config": {"chunk_length_schedule": [120, 160, 250, 290]},
        })

    async def recv(self, within: float = 20.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), within))
        return message

    async def until_final(self) -> list[dict[str, Any]]:
        out = []
        while True:
            message = await self.recv()
            out.append(message)
            if message.get("isFinal") is True or "error" in message:
                return out

    async def closed_with(self, within: float = 5.0) -> int | None:
        try:
            await asyncio.wait_for(self.conn.recv(), within)
        except websockets.ConnectionClosed:
            pass
        return self.conn.close_code  # type: ignore[no-any-return]


def message_ms(message: dict[str, Any], output_format: str) -> float:
    audio = base64.b64decode(message["audio"])
    width = BYTES_PER_SAMPLE.get(output_format, 2)
    return len(audio) / width / RATES[output_format] * 1000.0


def check_alignment(message: dict[str, Any], output_format: str) -> str:
    """The alignment's text, after checking it spans exactly the message's audio.

    Audio goes out per engine chunk, so a chunk may cover no whole character (no alignment),
    and characters the estimate placed past the audio come last with no audio.
    """
    alignment = message["alignment"]
    if alignment is None:
        assert message["audio"]
        return ""
    chars, starts, durations = (alignment["chars"], alignment["charStartTimesMs"],
                                alignment["charDurationsMs"])
    assert len(chars) == len(starts) == len(durations) > 0
    assert starts[0] == 0
    for i in range(1, len(starts)):
        assert starts[i] == starts[i - 1] + durations[i - 1]
    assert abs(starts[-1] + durations[-1] - message_ms(message, output_format)) <= 1.0
    return "".join(chars)


async def test_documented_client_gets_speech_with_alignment_for_all_text(
    piper_server: LiveServer,
) -> None:
    client = await ElevenLabsClient.connect(piper_server.ws, "default", "ulaw_8000", key=None)
    await client.begin()
    for chunk in CHUNKS:
        await client.send({"text": chunk, "try_trigger_generation": True})
    await client.send({"text": ""})
    messages = await client.until_final()
    assert messages[-1] == {"isFinal": True}
    audio_messages = messages[:-1]
    assert len(audio_messages) >= 2  # per engine chunk, as each chunk is ready
    text = "".join(check_alignment(m, "ulaw_8000") for m in audio_messages)
    # Every character sent, as received, the trailing blank included (with no audio).
    assert text == "".join(CHUNKS)
    assert all(m["isFinal"] is False for m in audio_messages)
    pcm = audioop.ulaw2lin(b"".join(base64.b64decode(m["audio"]) for m in audio_messages), 2)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    assert len(samples) / 8000 > 2.0 and np.sqrt(np.mean(samples**2)) > 0.01
    assert await client.closed_with() == 1000  # the server ends the stream after isFinal


@pytest.mark.parametrize("output_format", list(RATES))
async def test_output_format_sets_rate_and_encoding(server: LiveServer, output_format: str) -> None:
    client = await ElevenLabsClient.connect(server.ws, "default", output_format)
    await client.begin()
    await client.send({"text": "Hello there, this is a short test of the output format. "})
    await client.send({"text": ""})
    messages = await client.until_final()
    assert messages[-1] == {"isFinal": True}
    total_ms = sum(message_ms(m, output_format) for m in messages[:-1])
    # The synthetic engine renders 65 ms per letter: the same duration at every rate.
    assert 2500 < total_ms < 6000
    for m in messages[:-1]:
        check_alignment(m, output_format)
    await client.conn.close()


async def test_flush_speaks_buffered_text_at_once(server: LiveServer) -> None:
    client = await ElevenLabsClient.connect(server.ws, "default", "pcm_16000", by="query")
    await client.begin()
    await client.send({"text": "and the copay is twenty five dollars", "flush": True})
    first = await client.recv(within=3.0)  # no punctuation, no end: only the flush speaks it
    assert first["audio"] and first["isFinal"] is False
    await client.send({"text": " Anything else?"})
    await client.send({"text": ""})
    rest = await client.until_final()
    text = "".join(check_alignment(m, "pcm_16000") for m in [first, *rest[:-1]])
    assert text == "and the copay is twenty five dollars Anything else?"
    assert rest[-1] == {"isFinal": True}
    await client.conn.close()


@pytest.mark.parametrize(("voice_id", "output_format", "code"), [
    ("nobody", "pcm_16000", "voice_not_found"),
    ("bad.voice", "pcm_16000", "invalid_voice_id"),
    ("default", "mp3_8000_8", "unsupported_output_format"),
])
async def test_a_connection_that_cannot_work_gets_an_error_then_a_policy_close(
    server: LiveServer, voice_id: str, output_format: str, code: str
) -> None:
    """Never 1000: the ElevenLabs SDK takes a normal close for a finished (empty) stream."""
    client = await ElevenLabsClient.connect(server.ws, voice_id, output_format)
    # Refused at connect, maybe before this opening message is sent.
    with contextlib.suppress(websockets.ConnectionClosed):
        await client.begin()
    error = await client.recv()
    assert error["code"] == code and error["message"] and error["error"]
    assert await client.closed_with() == 1008


async def test_bad_messages_get_errors_and_the_socket_stays_open(server: LiveServer) -> None:
    client = await ElevenLabsClient.connect(server.ws, "default", "pcm_16000")
    await client.begin()
    await client.conn.send("not json")
    assert (await client.recv())["code"] == "invalid_json"
    await client.send({"flush": True})
    assert (await client.recv())["code"] == "invalid_message"
    await client.send({"text": "Still working fine. "})
    await client.send({"text": ""})
    assert (await client.until_final())[-1] == {"isFinal": True}
    await client.conn.close()


async def test_missing_or_wrong_key_closes_with_1008(server: LiveServer) -> None:
    for key in (None, "wrong"):
        client = await ElevenLabsClient.connect(server.ws, "default", "pcm_16000", key=key)
        assert await client.closed_with() == 1008


async def test_a_full_replica_answers_busy_and_try_again_later(server: LiveServer) -> None:
    first = await ElevenLabsClient.connect(server.ws, "default", "pcm_16000")
    await first.begin()  # the connection holds the only slot until it closes
    await asyncio.sleep(0.1)
    second = await ElevenLabsClient.connect(server.ws, "default", "pcm_16000")
    with contextlib.suppress(websockets.ConnectionClosed):
        await second.begin()
    error = await second.recv()
    assert error["code"] == "busy"
    assert await second.closed_with() == 1013
    await first.conn.close()


def test_estimated_timings_are_exact_at_the_clause_boundaries() -> None:
    for text, ms in [("Hello, world.", 1234.4), (" a", 3.0), ("x" * 300, 900.0)]:
        t = estimate_char_timings(text, ms)
        assert t.chars == list(text)
        assert t.start_ms[0] == 0
        assert t.start_ms[-1] + t.duration_ms[-1] == round(ms)
        assert all(d >= 0 for d in t.duration_ms)
        assert all(b == a + d for a, b, d in zip(t.start_ms, t.start_ms[1:], t.duration_ms,
                                                  strict=False))
    letters = estimate_char_timings("ab, cd", 600.0)
    assert letters.duration_ms[0] > letters.duration_ms[2]  # a letter outlasts a comma


@pytest.mark.parametrize("text", [" It costs $4.99 today. ", "Plain words, no numbers."])
@pytest.mark.parametrize("pieces", [[0.1] * 40, [0.5, 0.05, 1.5, 0.3]])
def test_spoken_chunk_aligner_gives_both_texts_back_chunk_by_chunk(
    text: str, pieces: list[float]
) -> None:
    """Joined over a clause's chunks (and the rest the estimate left), the received
    characters give the text as sent and the spoken ones what the engine read; every
    chunk's timings lie inside its own audio; read as sent, both are one sequence."""
    from app.text.alignment import SpokenChunkAligner
    from app.text.normalize import normalize

    n = normalize(text.strip(), "en")
    spoken = n if n.changed else None
    aligner = SpokenChunkAligner(text, spoken)
    sent, said = "", ""
    for seconds in pieces:
        t, s = aligner.take(seconds)
        for timing in (t, s):
            if timing.chars:
                end = timing.start_ms[-1] + timing.duration_ms[-1]
                assert end <= seconds * 1000 + 1
        sent, said = sent + "".join(t.chars), said + "".join(s.chars)
    rest_sent, rest_said = aligner.rest
    assert sent + rest_sent == text
    assert said + rest_said == (n.spoken if spoken is not None else text)
    if spoken is None:
        assert sent == said


@pytest.mark.parametrize("path", ["stream-input", "multi-stream-input"])
@pytest.mark.parametrize("query", ["inactivity_timeout=500", "apply_text_normalization=bad",
                                   "seed=-1", "auto_mode=maybe"])
async def test_a_bad_query_value_is_refused_at_the_handshake(
    server: LiveServer, path: str, query: str
) -> None:
    """Out-of-range or unknown query values never open the socket (403 at the handshake:
    the close-before-accept of a policy violation); the replica stays healthy."""
    url = f"{server.ws}/v1/text-to-speech/default/{path}?{query}"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 403
    assert not server.runtime.connections.live
