"""The segmentation table again, over a real socket: LLM-style tokens in, clauses out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import LiveServer, live_server, make_settings
from tests.test_segmenter import CASES
from tests.wsclient import WSClient


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # Instant engine, idle flush off: boundaries come from the text alone.
    settings = make_settings(synthetic_rtf=0.0, clause_idle_flush_ms=0)
    with live_server(settings) as s:
        yield s


def llm_tokens(text: str) -> list[str]:
    """Word pieces with their leading space, punctuation on its own, like an LLM emits."""
    out: list[str] = []
    word = ""
    for ch in text:
        if ch.isalnum() or ch in "'$%@/_-":
            if word and not (word[-1].isalnum() or word[-1] in "'$%@/_-") and word.strip():
                out.append(word)
                word = ""
            word += ch
        else:
            if word and (ch.isspace() or not word.strip()) and word.strip():
                out.append(word)
                word = ""
            word += ch
            if not ch.isspace():
                out.append(word)
                word = ""
    if word:
        out.append(word)
    assert "".join(out) == text
    return out


async def test_tricky_llm_outputs_over_the_socket(server: LiveServer) -> None:
    async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as ws:
        await ws.send({"type": "init", "voice_id": "default"})
        assert (await ws.recv())["type"] == "ready"
        for text, expected in CASES:
            for token in llm_tokens(text):
                await ws.send({"type": "text", "content": token})
            await ws.send({"type": "end"})
            messages = await ws.until(lambda m: m.get("type") in ("complete", "error"))
            assert messages[-1]["type"] == "complete", messages[-1]
            clauses = [m["text"] for m in messages if m.get("type") == "sentence_complete"]
            assert "".join(clauses) == text, "every character spoken exactly once, in order"
            assert [c.strip() for c in clauses if c.strip()] == expected, text
