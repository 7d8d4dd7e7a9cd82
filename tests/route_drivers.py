"""One request on every route that synthesizes, each answered the same way: ``Outcome``.

Tests that must hold "on every route" (metrics, busy before voice, text cleaning) loop
over ``ROUTES`` instead of writing each route's client again. Each driver sends one
utterance (``text``, ``voice_id``) the way that route's clients do and reports whether it
finished, or the error code it got, and whether audio arrived before the error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.servers import LiveServer
from tests.wsclient import WSClient, is_audio


@dataclass
class Outcome:
    code: str | None  # None: finished with audio
    status: int | None = None  # HTTP status (HTTP routes)
    audio_bytes: int = 0  # audio received before the end or the error
    open_after: bool | None = None  # sockets: did the connection stay open after an error


Driver = Callable[..., Awaitable[Outcome]]
"""``driver(server, text, voice_id, probe=True)``; ``probe``: after an error on a socket,
check that the socket still works (``Outcome.open_after``)."""


def _json_body(text: str, **fields: Any) -> bytes:
    # json.dumps escapes lone surrogates (\ud800) instead of failing to encode them.
    return json.dumps({**fields, "text": text} if "input" not in fields
                      else {**fields, "input": text}).encode()


async def _http(server: LiveServer, path: str, body: bytes) -> Outcome:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        r = await client.post(path, content=body, headers={"content-type": "application/json"})
    if r.status_code != 200:
        data = r.json()
        if isinstance(data.get("error"), dict):  # OpenAI's envelope
            code = data["error"]["code"]
        elif isinstance(data.get("detail"), dict):  # ElevenLabs'
            code = data["detail"]["status"]
        else:
            code = data["code"]
        return Outcome(code, r.status_code)
    return Outcome(None, 200, len(r.content))


async def synthesize(server: LiveServer, text: str, voice_id: str, probe: bool = True
                     ) -> Outcome:
    return await _http(server, "/synthesize", _json_body(text, voice_id=voice_id))


async def warmup(server: LiveServer, text: str, voice_id: str, probe: bool = True) -> Outcome:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        r = await client.post("/warmup", params={"voice_id": voice_id})
    return Outcome(None if r.status_code == 200 else r.json()["code"], r.status_code)


async def http_stream(server: LiveServer, text: str, voice_id: str, probe: bool = True
                      ) -> Outcome:
    return await _http(server, "/v1/audio/speech/stream", _json_body(text, voice_id=voice_id))


def openai(fmt: str) -> Driver:
    async def drive(server: LiveServer, text: str, voice_id: str, probe: bool = True
                    ) -> Outcome:
        body = json.dumps({"model": "tts-1", "input": text, "voice": voice_id,
                           "response_format": fmt}).encode()
        return await _http(server, "/v1/audio/speech", body)

    return drive


async def _after_error(ws: WSClient, probe: dict[str, Any], done: Callable[..., bool]) -> bool:
    """Whether the socket still works: ``probe`` gets an answer that ``done`` accepts."""
    try:
        await ws.send(probe)
        messages = await ws.until(lambda m: done(m) or "error" in m, within=30)
    except Exception:
        return False
    return done(messages[-1])


async def ws_synthesize(server: LiveServer, text: str, voice_id: str, probe: bool = True
                        ) -> Outcome:
    def final(m: dict[str, Any]) -> bool:
        return m.get("is_final") is True

    async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
        await ws.send(json.dumps({"text": text, "voice_id": voice_id}))
        messages = await ws.until(lambda m: final(m) or "error" in m, within=60)
        audio = sum(1 for m in messages if is_audio(m))
        if final(messages[-1]):
            return Outcome(None, audio_bytes=audio)
        if not probe:
            return Outcome(messages[-1]["code"], audio_bytes=audio)
        again = {"text": "Still here.", "voice_id": "default"}
        return Outcome(messages[-1]["code"], audio_bytes=audio,
                       open_after=await _after_error(ws, again, final))


async def ws_stream(server: LiveServer, text: str, voice_id: str, probe: bool = True
                    ) -> Outcome:
    def complete(m: dict[str, Any]) -> bool:
        return m.get("type") == "complete"

    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": voice_id})
        ready = await ws.recv(within=60)
        if "error" in ready:
            return Outcome(ready["code"])
        await ws.send(json.dumps({"type": "text", "content": text}))
        await ws.send({"type": "end"})
        messages = await ws.until(lambda m: complete(m) or "error" in m, within=60)
        audio = sum(1 for m in messages if is_audio(m))
        if complete(messages[-1]):
            return Outcome(None, audio_bytes=audio)
        code = messages[-1]["code"]
        if not probe:
            return Outcome(code, audio_bytes=audio)
        # The error answered the text; the end that followed still completes the reply.
        await ws.until(complete, within=60)
        await ws.send({"type": "text", "content": "Still here."})
        return Outcome(code, audio_bytes=audio,
                       open_after=await _after_error(ws, {"type": "end"}, complete))


async def elevenlabs(server: LiveServer, text: str, voice_id: str, probe: bool = True
                     ) -> Outcome:
    def final(m: dict[str, Any]) -> bool:
        return m.get("isFinal") is True

    url = f"{server.ws}/v1/text-to-speech/{voice_id}/stream-input?output_format=pcm_16000"
    async with await WSClient.connect(url) as ws:
        await ws.send({"text": " "})
        await ws.send(json.dumps({"text": text}))
        await ws.send({"text": ""})
        messages = await ws.until(lambda m: final(m) or "error" in m, within=60)
        audio = sum(len(m["audio"]) for m in messages if m.get("audio"))
        if final(messages[-1]):
            # stream-input ends with isFinal: the server closes, having released its slot
            await asyncio.wait_for(ws.conn.wait_closed(), 10)
            return Outcome(None, audio_bytes=audio)
        code = messages[-1]["code"]
        if not probe:
            return Outcome(code, audio_bytes=audio)
        # A bad message leaves the socket open: the end of input that followed still
        # finishes the stream, then the server closes it (having released its slot). A
        # refused connection is closed instead.
        try:
            open_after = final((await ws.until(final, within=30))[-1])
            await asyncio.wait_for(ws.conn.wait_closed(), 10)  # the server closes after it
        except Exception:
            open_after = False
        return Outcome(code, audio_bytes=audio, open_after=open_after)


async def elevenlabs_http(server: LiveServer, text: str, voice_id: str, probe: bool = True
                          ) -> Outcome:
    path = f"/v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000"
    return await _http(server, path, _json_body(text, model_id="eleven_flash_v2_5"))


async def elevenlabs_multi(server: LiveServer, text: str, voice_id: str, probe: bool = True
                           ) -> Outcome:
    """multi-stream-input as pipecat drives it: open a context, text, flush, close it."""
    def final(context: str) -> Callable[[dict[str, Any]], bool]:
        return lambda m: m.get("isFinal") is True and m.get("contextId") == context

    url = f"{server.ws}/v1/text-to-speech/{voice_id}/multi-stream-input?output_format=pcm_16000"
    async with await WSClient.connect(url) as ws:
        await ws.send({"text": " ", "context_id": "c1"})
        await ws.send(json.dumps({"text": text, "context_id": "c1"}))
        await ws.send({"context_id": "c1", "flush": True})
        await ws.send({"context_id": "c1", "close_context": True})
        messages = await ws.until(lambda m: final("c1")(m) or "error" in m, within=60)
        audio = sum(len(m["audio"]) for m in messages if m.get("audio"))
        if final("c1")(messages[-1]):
            await ws.send({"close_socket": True})
            return Outcome(None, audio_bytes=audio)
        code = messages[-1]["code"]
        if not probe:
            return Outcome(code, audio_bytes=audio)
        try:  # the socket still serves a new context
            await ws.send({"text": "Still here. ", "context_id": "c2"})
            await ws.send({"context_id": "c2", "close_context": True})
            open_after = final("c2")((await ws.until(final("c2"), within=30))[-1])
        except Exception:
            open_after = False
        return Outcome(code, audio_bytes=audio, open_after=open_after)


async def speech_ws(server: LiveServer, text: str, voice_id: str, probe: bool = True
                    ) -> Outcome:
    """seed-003's binary socket: a start JSON, binary audio, ``end``."""
    async def outcome() -> tuple[str | None, int]:
        audio = 0
        while True:
            raw = await asyncio.wait_for(ws.conn.recv(), 60)
            if isinstance(raw, bytes):
                audio += len(raw)
                continue
            m = json.loads(raw)
            if m.get("type") == "end":
                return None, audio
            if m.get("type") == "error":
                return m["code"], audio

    async with await WSClient.connect(server.ws + "/v1/audio/speech/stream/ws") as ws:
        await ws.send(_json_body(text, voice_id=voice_id).decode())
        code, audio = await outcome()
        if code is None or not probe:
            return Outcome(code, audio_bytes=audio)
        try:  # the socket stays open after an error
            await ws.send({"text": "Still here.", "voice_id": "default"})
            open_after = (await outcome())[0] is None
        except Exception:
            open_after = False
        return Outcome(code, audio_bytes=audio, open_after=open_after)


ROUTES: dict[str, Driver] = {
    "synthesize": synthesize,
    "warmup": warmup,
    "ws_synthesize": ws_synthesize,
    "ws_stream": ws_stream,
    "http_stream": http_stream,
    "openai_pcm": openai("pcm"),
    "openai_wav": openai("wav"),
    "openai_mp3": openai("mp3"),
    "openai_flac": openai("flac"),
    "elevenlabs": elevenlabs,
    "elevenlabs_multi": elevenlabs_multi,
    "elevenlabs_http": elevenlabs_http,
    "speech_ws": speech_ws,
}
"""Every route that synthesizes, by its metrics ``route`` label where it has one."""

METRIC_ROUTE = {
    "synthesize": "synthesize", "warmup": "warmup", "ws_synthesize": "ws_synthesize",
    "ws_stream": "ws_stream", "http_stream": "http_stream", "openai_pcm": "openai",
    "openai_wav": "openai", "openai_mp3": "openai", "openai_flac": "openai",
    "elevenlabs": "elevenlabs", "elevenlabs_multi": "elevenlabs",
    "elevenlabs_http": "elevenlabs_http", "speech_ws": "speech_ws",
}
