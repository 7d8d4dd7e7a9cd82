"""WS multi-stream-input (ElevenLabs' contexts) and the per-chunk timing of both sockets.

A client written from the message shapes pipecat and LiveKit send (``app.protocol.elevenlabs_ws``
has the notes): contexts opened by ``{"text": " ", "context_id"}``, text, ``flush``,
``close_context``, keepalives, ``close_socket``. The synthetic engine makes 200 ms chunks;
where a test is about timing it runs at half real time, so a clause of a few seconds is
still being synthesized when its first audio must already have arrived.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import av
import pytest
import websockets

from tests.servers import LiveServer, live_server, make_settings

KEY = "xi-multi-key"
LONG = "This clause is long enough to take the engine a couple of seconds to synthesize. "


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = make_settings(synthetic_rtf=0.0, api_keys=KEY, clause_idle_flush_ms=5000)
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LiveServer]:
    """Half real time: a 4 s clause takes 2 s to synthesize, in 200 ms chunks."""
    settings = make_settings(synthetic_rtf=0.5, synthetic_chunk_ms=200, api_keys=KEY)
    with live_server(settings) as s:
        yield s


async def connect(server: LiveServer, query: str = "output_format=pcm_16000",
                  path: str = "multi-stream-input") -> Any:
    url = f"{server.ws}/v1/text-to-speech/default/{path}?model_id=eleven_flash_v2_5&{query}"
    return await websockets.connect(url, additional_headers={"xi-api-key": KEY},
                                    max_size=2**24)


async def send(ws: Any, **message: Any) -> None:
    await ws.send(json.dumps(message))


async def recv(ws: Any, within: float = 20.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), within))  # type: ignore[no-any-return]


async def until_final(ws: Any, context_ids: set[str]) -> list[dict[str, Any]]:
    """Every message until each of ``context_ids`` has had its isFinal."""
    out: list[dict[str, Any]] = []
    waiting = set(context_ids)
    while waiting:
        message = await recv(ws)
        out.append(message)
        assert "error" not in message, message
        if message.get("isFinal") is True:
            waiting.discard(message["contextId"])
    return out


def text_of(messages: list[dict[str, Any]], ctx: str) -> str:
    return "".join("".join(m["alignment"]["chars"]) for m in messages
                   if m.get("contextId") == ctx and m.get("alignment"))


async def test_contexts_carry_their_id_text_and_final(server: LiveServer) -> None:
    ws = await connect(server)
    texts = {"a": "Hello from the first context. It says two things.",
             "b": "And the second context speaks too!"}
    for ctx in texts:
        await send(ws, text=" ", context_id=ctx, voice_settings={"stability": 0.5})
    for ctx, text in texts.items():
        await send(ws, text=text, context_id=ctx)
        await send(ws, text="")  # a keepalive changes nothing
        await send(ws, context_id=ctx, flush=True)
        await send(ws, context_id=ctx, close_context=True)
    messages = await until_final(ws, set(texts))
    for ctx, text in texts.items():
        assert text_of(messages, ctx) == text  # every character, in order, once
        finals = [m for m in messages if m.get("isFinal") and m["contextId"] == ctx]
        assert finals == [{"isFinal": True, "contextId": ctx}]
    audio = defaultdict(int)
    for m in messages:
        if m.get("audio"):
            audio[m["contextId"]] += len(base64.b64decode(m["audio"]))
    assert all(audio[ctx] / 2 / 16000 > 1.5 for ctx in texts)
    await send(ws, close_socket=True)
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws, within=5)
    assert ws.close_code == 1000


async def test_close_context_speaks_what_is_buffered_then_final(server: LiveServer) -> None:
    ws = await connect(server)
    await send(ws, text=" ", context_id="c1")
    await send(ws, text="no punctuation and no flush", context_id="c1")
    await send(ws, context_id="c1", close_context=True)
    messages = await until_final(ws, {"c1"})
    assert text_of(messages, "c1") == "no punctuation and no flush"
    await send(ws, text="more", context_id="c1")  # a closed context takes no more text
    error = await recv(ws)
    assert error["code"] == "invalid_state" and error["contextId"] == "c1"
    await ws.close()


async def test_barge_in_abandons_the_closed_context_for_the_new_one(
    slow_server: LiveServer,
) -> None:
    ws = await connect(slow_server)
    await send(ws, text=" ", context_id="old")
    await send(ws, text=LONG * 3, context_id="old")
    await send(ws, context_id="old", flush=True)
    await send(ws, context_id="old", close_context=True)
    first = await recv(ws)
    assert first["contextId"] == "old" and first["audio"]
    await send(ws, text=" ", context_id="new")  # the caller spoke: pipecat's next turn
    await send(ws, text="Sure, go ahead.", context_id="new")
    await send(ws, context_id="new", close_context=True)
    messages = await until_final(ws, {"old", "new"})
    finals = [m["contextId"] for m in messages if m.get("isFinal")]
    assert finals[0] == "old"  # released at once, long before its 12 s of speech
    old_audio = sum(len(base64.b64decode(m["audio"])) for m in messages
                    if m.get("contextId") == "old" and m.get("audio"))
    assert old_audio / 2 / 16000 < 6.0
    assert text_of(messages, "new") == "Sure, go ahead."
    await ws.close()


async def test_too_many_contexts_is_an_error_for_that_context(server: LiveServer) -> None:
    ws = await connect(server)
    for i in range(5):
        await send(ws, text=" ", context_id=f"c{i}")
    await send(ws, text=" ", context_id="c5")
    error = await recv(ws)
    assert error["code"] == "max_active_conversations" and error["contextId"] == "c5"
    await send(ws, text="Still fine here.", context_id="c0")
    await send(ws, context_id="c0", close_context=True)
    assert text_of(await until_final(ws, {"c0"}), "c0") == "Still fine here."
    await ws.close()


async def test_inactivity_timeout_closes_an_idle_socket(server: LiveServer) -> None:
    ws = await connect(server, "output_format=pcm_16000&inactivity_timeout=1")
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws, within=10)
    assert ws.close_code == 1000


async def test_auto_mode_speaks_a_sentence_without_waiting_for_more(server: LiveServer) -> None:
    ws = await connect(server, "output_format=pcm_16000&auto_mode=true")
    await send(ws, text=" ", context_id="x")
    await send(ws, text="A whole sentence from the LLM.", context_id="x")
    first = await recv(ws, within=3)  # no whitespace after the period, no flush
    assert first["contextId"] == "x" and first["audio"]
    await ws.close()


@pytest.mark.parametrize("path", ["multi-stream-input", "stream-input"])
async def test_first_audio_follows_the_first_engine_chunk_not_the_clause(
    slow_server: LiveServer, path: str
) -> None:
    ws = await connect(slow_server, path=path)
    engine = slow_server.runtime.engine
    ctx: dict[str, Any] = {"context_id": "t"} if path == "multi-stream-input" else {}
    await send(ws, text=" ", **ctx)
    await send(ws, text=LONG, **ctx)  # one clause, about 5 s of audio
    first = await recv(ws)
    assert first["audio"]
    # The clause is still being synthesized (2.5 s of compute) when its first audio is here.
    assert engine.active_generations == 1
    messages = [first]
    while engine.active_generations:
        messages.append(await recv(ws))
    assert len([m for m in messages if m.get("audio")]) >= 5
    await ws.close()


async def test_mp3_on_a_socket_is_one_stream_per_context_and_starts_early(
    slow_server: LiveServer,
) -> None:
    ws = await connect(slow_server, "output_format=mp3_22050_32")
    engine = slow_server.runtime.engine
    await send(ws, text=" ", context_id="m")
    await send(ws, text=LONG, context_id="m")
    await send(ws, context_id="m", close_context=True)
    first = await recv(ws)
    assert first["audio"] and engine.active_generations == 1  # mp3 before synthesis ends
    messages = [first, *await until_final(ws, {"m"})]
    data = b"".join(base64.b64decode(m["audio"]) for m in messages if m.get("audio"))
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(stream))
        assert stream.codec_context.sample_rate == 22050
    assert samples / 22050 > 3.0
    await ws.close()
