"""A small WebSocket test client that records when each message arrived."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import websockets


class WSClient:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str, **kw: Any) -> WSClient:
        return cls(await websockets.connect(url, max_size=2**24, **kw))

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = json.dumps(message)
        await self.conn.send(message)

    async def recv(self, within: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), within)
        message: dict[str, Any] = json.loads(raw)
        message["_t"] = time.perf_counter()
        return message

    async def until(self, predicate: Any, within: float = 30.0) -> list[dict[str, Any]]:
        """Messages up to and including the first one matching ``predicate``."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            out.append(message)
            if predicate(message):
                return out

    async def close(self) -> None:
        await self.conn.close()

    async def __aenter__(self) -> WSClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def is_audio(message: dict[str, Any]) -> bool:
    return message.get("type") == "audio" or (
        "audio" in message and message.get("audio") is not None and "error" not in message
    ) or message.get("event") == "media"


def audio_bytes(messages: list[dict[str, Any]]) -> bytes:
    out = b""
    for m in messages:
        if m.get("event") == "media":
            out += base64.b64decode(m["media"]["payload"])
        elif is_audio(m):
            out += base64.b64decode(m["audio"])
    return out
