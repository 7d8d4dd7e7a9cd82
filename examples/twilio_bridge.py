"""A minimal Twilio Media Streams bridge in front of ``/ws/synthesize-stream``.

Twilio opens a WebSocket to this bridge for each call (``<Connect><Stream url=...>`` in
TwiML) and sends the documented events: ``connected``, ``start`` (with ``streamSid``),
``media`` (the caller's audio), ``mark`` (echoed when playback reaches a mark we sent) and
``stop``. For each call the bridge keeps one connection to the TTS service, sends ``init``
with Twilio's ``streamSid``, and from then on the service speaks Twilio's format: its
``media`` and ``mark`` events go to Twilio unchanged, no re-encoding, no re-framing.

What is real here: the wiring and the barge-in: ``cancel`` to the service, which answers
in Twilio mode with ``clear`` (forwarded like ``media``; Twilio drops what it has buffered,
including frames that were already in flight) and sends no ``media`` of the cancelled
reply after it. What is stubbed: speech-to-text and the
LLM. ``on_transcript`` is where they plug in; the call starts with a scripted greeting.

    python -m app                                   # the TTS service on :8000
    python examples/twilio_bridge.py --port 8080    # then point Twilio's <Stream> here
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("bridge")
GREETING = (
    "Thanks for calling Acme Dental, this is Riley. I can book, move or cancel an "
    "appointment, and answer questions about your bill. What can I do for you today?"
)


async def fake_llm(reply: str) -> AsyncIterator[str]:
    """Stand-in for an LLM token stream: words with their leading space, 20-40 ms apart."""
    for i, word in enumerate(reply.split(" ")):
        await asyncio.sleep(random.uniform(0.02, 0.04))
        yield word if i == 0 else " " + word


class CallBridge:
    """One phone call: Twilio's socket on one side, one TTS session on the other."""

    def __init__(self, twilio: ServerConnection, args: argparse.Namespace) -> None:
        self.twilio = twilio
        self.args = args
        self.stream_sid: str | None = None
        self.tts: ClientConnection | None = None
        self.reply: asyncio.Task[None] | None = None  # the token stream being spoken
        self.tasks: set[asyncio.Task[None]] = set()  # keep references to background tasks

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def run(self) -> None:
        """Handle Twilio's events until the call ends."""
        try:
            async for raw in self.twilio:
                event = json.loads(raw)
                kind = event.get("event")
                if kind == "start":
                    await self.on_start(event)
                elif kind == "media":
                    pass  # the caller's audio (base64 mu-law): feed your STT/VAD here
                elif kind == "mark":
                    log.info("caller has heard up to %s", event["mark"]["name"])
                elif kind == "stop":
                    break
        except ConnectionClosed:
            pass
        finally:
            for task in self.tasks:
                task.cancel()
            if self.tts is not None:
                await self.tts.close()

    async def on_start(self, event: dict[str, Any]) -> None:
        start = event["start"]
        self.stream_sid = start["streamSid"]
        log.info("call %s started, stream %s, %s", start.get("callSid"), self.stream_sid,
                 start.get("mediaFormat"))
        # One TTS connection per call: it holds its capacity slot for the whole call.
        url = self.args.tts_url.rstrip("/") + "/ws/synthesize-stream"
        headers = {}
        if self.args.api_key:
            url += "?" + urllib.parse.urlencode({"api_key": self.args.api_key})
            headers["Authorization"] = f"Bearer {self.args.api_key}"
        self.tts = await connect(url, additional_headers=headers)
        await self.tts.send(json.dumps({
            "type": "init", "voice_id": self.args.voice, "preset": self.args.preset,
            "stream_sid": self.stream_sid,  # Twilio mode: media/mark events, mu-law
        }))
        ready = json.loads(await self.tts.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"TTS init failed: {ready}")
        self.spawn(self.pump_tts())
        self.speak(fake_llm(GREETING))
        if self.args.barge_in_after is not None:
            asyncio.get_running_loop().call_later(
                self.args.barge_in_after, lambda: self.spawn(self.barge_in())
            )

    def speak(self, tokens: AsyncIterator[str]) -> None:
        """Stream one reply's tokens to the service as they arrive."""

        async def send() -> None:
            assert self.tts is not None
            async for token in tokens:
                await self.tts.send(json.dumps({"type": "text", "content": token}))
            await self.tts.send(json.dumps({"type": "end"}))

        self.reply = self.spawn(send())

    async def on_transcript(self, text: str) -> None:
        """STT produced what the caller said: run the LLM and speak its reply (stub)."""
        await self.barge_in()  # the caller spoke: whatever we were saying is stale
        self.speak(fake_llm(f"You said: {text}. Let me check that for you."))

    async def barge_in(self) -> None:
        """The caller talks over us: stop generating; the service's ``clear`` empties
        Twilio's buffer."""
        if self.reply is not None:
            self.reply.cancel()  # stop feeding tokens of the stale reply
        if self.tts is None:
            return
        await self.tts.send(json.dumps({"type": "cancel"}))
        log.info("barge-in: cancelled the reply")

    async def pump_tts(self) -> None:
        """Forward the service's audio to Twilio; its events are already Twilio's shape."""
        assert self.tts is not None
        try:
            async for raw in self.tts:
                message = json.loads(raw)
                if message.get("event") in ("media", "mark", "clear"):
                    await self.twilio.send(raw)  # unchanged: same JSON, same streamSid
                elif message.get("type") == "sentence_complete":
                    log.info("clause %s sent: %r", message["clause"], message["text"])
                elif message.get("type") == "error":
                    log.warning("TTS error: %s", message)
        except ConnectionClosed:
            pass


async def main(args: argparse.Namespace) -> None:
    async def handler(twilio: ServerConnection) -> None:
        await CallBridge(twilio, args).run()

    async with serve(handler, args.host, args.port) as server:
        log.info("bridge listening on ws://%s:%s", args.host, args.port)
        await server.serve_forever()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Twilio Media Streams <-> TTS bridge")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--tts-url", default="ws://127.0.0.1:8000", help="the TTS service")
    parser.add_argument("--voice", default="default")
    parser.add_argument("--preset", default="adaptive")
    parser.add_argument("--api-key", default=None, help="API key for the TTS service")
    parser.add_argument("--barge-in-after", type=float, default=None, metavar="SECONDS",
                        help="simulate the caller interrupting this long after the call starts")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(main(parse_args()))
