"""Replies on a streaming session are objects of their own; Twilio-mode cancels send clear.

- Two replies sent back to back (the second one's text arrives while the first is still
  speaking) each report their own clauses and frames in ``complete``; before replies were
  objects, the first ``end`` reset the counters of the second and its ``complete`` counted
  the second's clauses.
- In Twilio mode a cancel sends ``{"event": "clear", "streamSid"}`` before ``cancelled``
  and no ``media`` after the ``clear``, on both sockets, so a bridge forwards the clear
  and the caller stops hearing buffered speech at once.
- The session's state enum follows the reply: ``replying`` until the last ``complete`` has
  been sent, then ``ready``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient, is_audio


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # Real time (rtf 1): a reply is still speaking when the next one's text arrives.
    settings = make_settings(synthetic_rtf=1.0, synthetic_first_chunk_ms=50,
                             synthetic_chunk_ms=100)
    with live_server(settings) as s:
        yield s


def until_type(kind: str) -> Any:
    return lambda m: m.get("type") in (kind, "error")


def session_states(server: LiveServer) -> list[str]:
    return [c.session.state.value for c in server.runtime.connections.live
            if c.route == "synthesize-stream"]


async def test_back_to_back_replies_each_report_their_own_clauses(server: LiveServer) -> None:
    first = "One, two, three, four, five. Six, seven, eight."
    second = "Nine and ten are next. Then eleven and twelve. And thirteen."
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default"})
        assert (await ws.recv())["type"] == "ready"
        await ws.send({"type": "text", "content": first})
        await ws.send({"type": "end"})
        started = await ws.until(is_audio)  # reply 1 is speaking ...
        await ws.send({"type": "text", "content": second})  # ... when reply 2 arrives
        await ws.send({"type": "end"})
        assert session_states(server) == ["replying"]
        one = started + await ws.until(until_type("complete"), within=60)
        two = await ws.until(until_type("complete"), within=60)
        for _ in range(100):  # the state follows the complete once it has been written
            if session_states(server) == ["ready"]:
                break
            await asyncio.sleep(0.05)
        assert session_states(server) == ["ready"]
    for messages, text in ((one, first), (two, second)):
        done = messages[-1]
        assert done["type"] == "complete", done
        clauses = [m for m in messages if m.get("type") == "sentence_complete"]
        assert "".join(c["text"] for c in clauses) == text
        assert done["clauses"] == len(clauses)
        assert done["total_chunks"] == sum(1 for m in messages if is_audio(m)) > 0
    # Clause numbers go on across the session.
    numbers = [m["clause"] for m in one + two if m.get("type") == "sentence_complete"]
    assert numbers == list(range(len(numbers)))


async def _cancel_mid_speech(ws: WSClient) -> list[dict[str, Any]]:
    await ws.until(lambda m: m.get("event") == "media")
    await asyncio.sleep(0.3)
    await ws.send({"type": "cancel"})
    messages = await ws.until(until_type("cancelled"))
    try:  # and nothing after the acknowledgement
        messages.append(await ws.recv(within=0.6))
    except TimeoutError:
        pass
    return messages


def _check_clear_then_cancelled(messages: list[dict[str, Any]], sid: str) -> None:
    kinds = [m.get("event") or m.get("type") for m in messages]
    assert "clear" in kinds, kinds
    clear = kinds.index("clear")
    assert messages[clear] == {"event": "clear", "streamSid": sid, "_t": messages[clear]["_t"]}
    assert kinds[clear + 1] == "cancelled" and len(kinds) == clear + 2, kinds[clear:]
    assert "media" in kinds[:clear]


async def test_twilio_cancel_on_the_stream_socket_sends_clear_first(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default", "stream_sid": "MZstream"})
        assert (await ws.recv())["type"] == "ready"
        await ws.send({"type": "text", "content": "This sentence is long enough to cancel. "
                                                  "And another one is queued behind it. "})
        messages = await _cancel_mid_speech(ws)
    _check_clear_then_cancelled(messages, "MZstream")


async def test_twilio_cancel_on_the_request_socket_sends_clear_first(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize") as ws:
        await ws.send({"text": "This sentence is long enough to be cancelled in the middle.",
                       "voice_id": "default", "stream_sid": "MZrequest"})
        messages = await _cancel_mid_speech(ws)
    _check_clear_then_cancelled(messages, "MZrequest")


async def test_without_twilio_a_cancel_sends_no_clear(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default"})
        await ws.recv()
        await ws.send({"type": "text", "content": "A plain reply that will be cut short. "})
        await ws.until(is_audio)
        await ws.send({"type": "cancel"})
        messages = await ws.until(until_type("cancelled"))
    assert all(m.get("event") != "clear" for m in messages)
