"""Stream a (simulated) LLM reply into ``/ws/synthesize-stream`` and save the speech as WAV.

This is what a voice agent's LLM client does: it pushes tokens as the model produces them
and receives audio at the same time, so speech starts at the first clause instead of at the
end of the reply. The LLM is simulated: a canned reply cut into realistic tokens (words with
their leading space, long words in pieces, punctuation on its own) sent 20-40 ms apart.

Run the service (``python -m app``), then::

    python examples/llm_to_wav.py --out reply.wav
    python examples/llm_to_wav.py --text "Hello! How can I help you today?" --voice default

It prints the time to first audio (from the first token sent) and each clause as the
service reports it, and writes the mu-law audio, decoded to 16-bit PCM, as an 8 kHz WAV.
Needs only ``websockets`` (and ``audioop-lts`` on Python 3.13+).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import sys
import time
import urllib.parse
import warnings
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect

with warnings.catch_warnings():
    # Python 3.11/3.12 warn that the stdlib module is deprecated; audioop-lts replaces it.
    warnings.filterwarnings(
        "ignore", message="'audioop' is deprecated", category=DeprecationWarning
    )
    import audioop

SAMPLE_RATE = 8000
DEFAULT_REPLY = (
    "Sure, I can help with that. I found your appointment with Dr. Patel on Friday at "
    "3:30 p.m., and it is still confirmed. Would you like me to send a reminder by text "
    "message, or is there anything else I can do for you today?"
)
# A word with its leading whitespace, a number, one punctuation mark, or trailing whitespace:
# the shapes LLM tokenizers produce. Every character matches, so the tokens join back.
_TOKEN = re.compile(r"\s*[A-Za-z']+|\s*\d+|\s*[^\sA-Za-z\d]|\s+")


def llm_tokens(text: str, max_piece: int = 6) -> list[str]:
    """``text`` cut the way an LLM streams it; ``"".join(tokens) == text``."""
    tokens: list[str] = []
    for match in _TOKEN.findall(text):
        while len(match) > max_piece and not match[max_piece:].isspace():
            tokens.append(match[:max_piece])
            match = match[max_piece:]
        tokens.append(match)
    return tokens


async def fake_llm(text: str, delay_ms: tuple[float, float] = (20, 40)) -> AsyncIterator[str]:
    """Tokens of ``text`` with the pace of a fast hosted LLM."""
    for token in llm_tokens(text):
        await asyncio.sleep(random.uniform(*delay_ms) / 1000.0)
        yield token


def auth(url: str, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The key as a query parameter and a bearer header (servers read either)."""
    if not api_key:
        return url, {}
    sep = "&" if "?" in url else "?"
    url = f"{url}{sep}{urllib.parse.urlencode({'api_key': api_key})}"
    return url, {"Authorization": f"Bearer {api_key}"}


@dataclass
class Result:
    mulaw: bytearray = field(default_factory=bytearray)
    clauses: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    first_audio_at: float | None = None
    complete: dict[str, Any] | None = None

    @property
    def ttfa_ms(self) -> float | None:
        if self.first_token_at is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.first_token_at) * 1000.0


async def stream_reply(
    url: str, voice: str, preset: str, text: str, api_key: str | None = None
) -> Result:
    """Send ``text`` as a token stream; collect the audio and clauses until ``complete``."""
    result = Result()
    ws_url, headers = auth(url.rstrip("/") + "/ws/synthesize-stream", api_key)
    async with connect(ws_url, additional_headers=headers, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "init", "voice_id": voice, "preset": preset}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"init refused: {ready}")

        async def send_tokens() -> None:
            async for token in fake_llm(text):
                if result.first_token_at is None:
                    result.first_token_at = time.perf_counter()
                await ws.send(json.dumps({"type": "text", "content": token}))
            await ws.send(json.dumps({"type": "end"}))

        # Receive while sending: audio for the first clause arrives mid-stream.
        sender = asyncio.create_task(send_tokens())
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "audio":
                    if result.first_audio_at is None:
                        result.first_audio_at = time.perf_counter()
                        print(f"first audio after {result.ttfa_ms:.0f} ms from the first token")
                    result.mulaw += base64.b64decode(message["audio"])
                elif kind == "sentence_complete":
                    result.clauses.append(message["text"])
                    print(f"clause {message.get('clause')}: {message['text']!r} "
                          f"({message['chunks_in_sentence']} frames)")
                elif kind == "complete":
                    result.complete = message
                    break
                elif kind == "error" or "error" in message:
                    raise RuntimeError(f"server error: {message}")
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    return result


def write_wav(path: str, mulaw: bytes) -> float:
    """Decode mu-law to PCM16 and write a mono 8 kHz WAV; returns its duration in seconds."""
    pcm = audioop.ulaw2lin(bytes(mulaw), 2)
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return len(pcm) / 2 / SAMPLE_RATE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000", help="service base URL")
    parser.add_argument("--voice", default="default", help="voice_id")
    parser.add_argument("--preset", default="adaptive", help="synthesis preset")
    parser.add_argument("--out", default="reply.wav", help="WAV file to write")
    parser.add_argument("--text", default=DEFAULT_REPLY, help="the reply the 'LLM' streams")
    parser.add_argument("--api-key", default=None, help="API key, if the service wants one")
    args = parser.parse_args(argv)

    try:
        result = asyncio.run(
            stream_reply(args.url, args.voice, args.preset, args.text, args.api_key)
        )
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = write_wav(args.out, result.mulaw)
    total = result.complete.get("total_ms") if result.complete else None
    print(f"wrote {args.out}: {seconds:.2f} s of audio, {len(result.clauses)} clauses, "
          f"server total {total} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
