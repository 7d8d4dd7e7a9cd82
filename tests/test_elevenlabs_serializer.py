"""ElevenLabs' socket serializer on typed events: per-chunk audio, alignment, contexts.

Each ``Audio`` event (one engine chunk) becomes one message at once, with the characters of
its clause that the chunk covers; ``ClauseDone`` sends what the estimate left; ``ReplyDone``
sends the encoder's tail and ``isFinal`` for that context only.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import av

from app.audio.formats import resolve_format
from app.protocol import events as ev
from app.protocol.elevenlabs_ws import ElevenLabsSocketSerializer
from app.protocol.serializers import WireMessage

PCM16 = resolve_format("elevenlabs", "pcm_16000")


def audio(seconds: float, fmt=PCM16, **kw: Any) -> ev.Audio:  # type: ignore[no-untyped-def]
    n = int(seconds * fmt.sample_rate)
    data = (b"\x10\x00" * n)
    return ev.Audio(data, fmt, seconds, **kw)


def decoded(messages: list[WireMessage]) -> list[dict[str, Any]]:
    return [json.loads(m) for m in messages]


def test_each_chunk_goes_out_at_once_with_its_characters() -> None:
    s = ElevenLabsSocketSerializer(PCM16, multi=True)
    s.bind(0, "ctx-a")
    text = "Hello there, how are you today?"
    out: list[dict[str, Any]] = []
    for _ in range(3):
        (m,) = decoded(s.serialize(audio(0.5, clause=0, clause_text=text, reply=0)))
        assert m["contextId"] == "ctx-a" and m["isFinal"] is False and m["audio"]
        out.append(m)
    out += decoded(s.serialize(ev.ClauseDone(0, text, 3, 1.5, reply=0)))
    chars = "".join("".join(m["alignment"]["chars"]) for m in out if m["alignment"])
    assert chars == text
    for m in out[:3]:
        a = m["alignment"]
        end = a["charStartTimesMs"][-1] + a["charDurationsMs"][-1]
        assert a["charStartTimesMs"][0] == 0 and end == 500  # within the message's audio
    assert decoded(s.serialize(ev.ReplyDone(3, 10.0, 1, reply=0))) == [
        {"isFinal": True, "contextId": "ctx-a"}]
    assert not s.done  # multi-stream-input goes on


def test_stream_input_ends_with_its_final_and_errors_carry_the_context() -> None:
    s = ElevenLabsSocketSerializer(PCM16, multi=False)
    s.bind(0, None)
    (m,) = decoded(s.serialize(audio(0.2, clause=0, clause_text="Hi.", reply=0)))
    assert "contextId" not in m
    assert decoded(s.serialize(ev.ReplyDone(1, 1.0, 1, reply=0))) == [{"isFinal": True}]
    assert s.done
    multi = ElevenLabsSocketSerializer(PCM16, multi=True)
    (e,) = decoded(multi.serialize(ev.Error("nope", "invalid_state", extra={"contextId": "c"})))
    assert e == {"error": "nope", "message": "nope", "code": "invalid_state", "contextId": "c"}


def test_mp3_is_one_stream_per_context() -> None:
    fmt = resolve_format("elevenlabs", "mp3_22050_32")
    s = ElevenLabsSocketSerializer(fmt, multi=True)
    s.bind(0, "a")
    s.bind(1, "b")
    data = {"a": b"", "b": b""}
    for _ in range(5):  # two contexts interleaved, each its own encoder
        for reply, ctx in ((0, "a"), (1, "b")):
            for m in decoded(s.serialize(audio(0.2, fmt, clause=0, clause_text="x y",
                                               reply=reply))):
                data[ctx] += base64.b64decode(m["audio"])
    for reply, ctx in ((0, "a"), (1, "b")):
        for m in decoded(s.serialize(ev.ReplyDone(5, 1.0, 1, reply=reply))):
            if m.get("audio"):
                data[ctx] += base64.b64decode(m["audio"])
    for ctx in data:
        with av.open(io.BytesIO(data[ctx])) as container:
            stream = container.streams.audio[0]
            samples = sum(f.samples for f in container.decode(stream))
        assert abs(samples / 22050 - 1.0) < 0.1
