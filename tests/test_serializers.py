"""Serializers own the wire formats; the outbox queues events and knows none of them.

Unit tests on the typed events of ``app.protocol.events``: the seed JSON of both sockets,
Twilio media/mark/clear, raw bytes for HTTP (ElevenLabs': ``test_elevenlabs_serializer``); and an
outbox driven with a serializer that records events, to show it never looks inside one.
"""

from __future__ import annotations

import asyncio
import base64
import json

from app.audio.formats import MULAW, WAV, resolve_format
from app.protocol import events as ev
from app.protocol.serializers import (
    RawAudioSerializer,
    RequestSerializer,
    StreamSerializer,
    WireMessage,
)
from app.sessions.outbox import Outbox

FRAME = bytes(range(160))


def audio(data: bytes = FRAME, fmt=MULAW, **kw: object) -> ev.Audio:
    return ev.Audio(data, fmt, len(data) / fmt.bytes_per_sample / fmt.sample_rate, **kw)


def decoded(messages: list[WireMessage]) -> list[dict[str, object]]:
    return [json.loads(m) for m in messages]


def test_request_serializer_counts_frames_per_request_and_ends_with_is_final() -> None:
    s = RequestSerializer(request_id="rid")
    out: list[WireMessage] = []
    for _ in range(2):
        out += s.serialize(ev.Started("default", MULAW))
        out += s.serialize(audio()) + s.serialize(audio())
        out += s.serialize(ev.UtteranceDone(2, 12.345, 50.0, {}, "synthetic", "default", True))
    m = decoded(out)
    assert [x["chunk_index"] for x in m] == [0, 1, 2, 0, 1, 2]
    assert m[0] == {"audio": base64.b64encode(FRAME).decode(), "chunk_index": 0,
                    "is_final": False, "format": "mulaw", "sample_rate": 8000}
    assert m[2]["is_final"] is True and m[2]["total_chunks"] == 2
    assert m[2]["first_chunk_ms"] == 12.35


def test_request_serializer_sends_wav_files_at_the_engine_rate() -> None:
    fmt = WAV.at_rate(22050)
    s = RequestSerializer()
    (message,) = decoded(s.serialize(audio(b"\x00\x01" * 100, fmt)))
    blob = base64.b64decode(str(message["audio"]))
    assert blob[:4] == b"RIFF" and message["format"] == "wav"
    assert message["sample_rate"] == 22050


def test_twilio_mode_is_media_marks_and_clear_before_cancelled() -> None:
    s = StreamSerializer()
    s.serialize(ev.Ready("default", "adaptive", True, "synthetic", MULAW, stream_sid="MZ1"))
    media, = decoded(s.serialize(audio(clause=0)))
    assert media == {"event": "media", "streamSid": "MZ1",
                     "media": {"payload": base64.b64encode(FRAME).decode()}}
    done = decoded(s.serialize(ev.ClauseDone(0, "Hi.", 1, 0.02)))
    assert [m.get("type") or m.get("event") for m in done] == ["sentence_complete", "mark"]
    assert done[1]["mark"] == {"name": "clause-0"}
    cancel = decoded(s.serialize(ev.Cancelled(1, "Hi.", False)))
    assert cancel[0] == {"event": "clear", "streamSid": "MZ1"}
    assert cancel[1]["type"] == "cancelled"


def test_seed_errors_carry_code_clause_and_request_id() -> None:
    s = StreamSerializer(request_id="abc")
    (m,) = decoded(s.serialize(ev.Error("Voice not found: x", "voice_not_found", clause=3)))
    assert m == {"type": "error", "error": "Voice not found: x", "code": "voice_not_found",
                 "clause": 3, "request_id": "abc"}


def test_raw_audio_is_bytes_and_nothing_else() -> None:
    s = RawAudioSerializer()
    assert s.serialize(audio()) == [FRAME]
    assert s.serialize(ev.UtteranceDone(1, 1.0, 1.0, {}, "x", "default", True)) == []


class Recorder:
    """A serializer that keeps the events it is given (the outbox must not care)."""

    done = False

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        self.events.append(event)
        return [repr(event)]


async def test_outbox_hands_events_to_its_serializer_and_drops_cancelled_audio() -> None:
    sent: list[WireMessage] = []

    async def send(message: WireMessage) -> None:
        sent.append(message)

    codes: list[str] = []
    recorder = Recorder()
    outbox = Outbox(send, recorder, on_error=codes.append)
    old = outbox.generation
    await outbox.audio(audio(), old)
    outbox.cancel()
    await outbox.audio(audio(), old)  # an older generation: never sent
    await outbox.control(ev.Cancelled(1, "", False))
    await outbox.control(ev.Error("nope", "invalid_request"))
    outbox.start()
    await asyncio.sleep(0.05)
    outbox.abort()
    assert [type(e).__name__ for e in recorder.events] == ["Cancelled", "Error"]
    assert codes == ["invalid_request"] and len(sent) == 2


def test_one_format_registry_one_wording() -> None:
    messages = []
    for api, field in (("synthesize", "output_format"), ("http_stream", "format"),
                       ("openai", "response_format"), ("elevenlabs", "output_format")):
        try:
            resolve_format(api, "ogg_vorbis", field)  # type: ignore[arg-type]
        except Exception as exc:
            messages.append((exc.code, exc.message.split(":")[0]))  # type: ignore[attr-defined]
    assert messages == [
        ("unsupported_output_format", "Unsupported output_format"),
        ("unsupported_format", "Unsupported format"),
        ("unsupported_response_format", "Unsupported response_format"),
        ("unsupported_output_format", "Unsupported output_format"),
    ]
    assert resolve_format("http_stream", "mulaw_8000") is MULAW
    assert resolve_format("elevenlabs", "ulaw_8000") is MULAW
