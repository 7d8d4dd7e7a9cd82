"""A whole utterance at once: ``POST /synthesize``, whole files, and ``POST /warmup``.

``run_whole`` runs an open utterance to its end through a serializer and closes it; the
serializer's last messages (a JSON body, an encoded file) are the response. Encoding a file
is blocking C work, so the final event may be serialized in a worker thread.
"""

from __future__ import annotations

import time

import anyio

from app.audio.formats import MULAW
from app.protocol import events as ev
from app.protocol.serializers import Serializer, WireMessage
from app.runtime import Runtime
from app.sessions.utterance import Utterance, UtteranceSpec, open_utterance


async def run_whole(
    utterance: Utterance, serializer: Serializer, *, offload_final: bool = False
) -> list[WireMessage]:
    """Every message ``serializer`` makes of ``utterance``, which is closed at the end."""
    out: list[WireMessage] = []
    with utterance:
        async for event in utterance:
            if offload_final and isinstance(event, ev.UtteranceDone):
                out += await anyio.to_thread.run_sync(serializer.serialize, event)
            else:
                out += serializer.serialize(event)
    return out


class _Nothing:
    done = False

    def serialize(self, event: ev.Event) -> list[WireMessage]:
        return []


WARMUP_TEXT = "Hello, one moment please."


async def warmup(runtime: Runtime, voice_id: str, preset: str, *,
                 hold_slot: bool = True) -> float:
    """Prepare ``voice_id`` and run a short generation through the whole chain (ms taken).

    The call webhook calls this while the phone rings, so the first reply of the call
    pays no cold-start cost (voice fetch, conditioning, first-run kernels); its warmups
    run in their own small pool (``app.sessions.warmups``) and take no call slot.
    """
    started = time.perf_counter()
    spec = UtteranceSpec(WARMUP_TEXT, voice_id, preset, MULAW, route="warmup")
    await run_whole(await open_utterance(runtime, spec, hold_slot=hold_slot), _Nothing())
    return (time.perf_counter() - started) * 1000.0
