"""Drive one pipecat TTS service against our server; print what it produced as JSON.

Run by ``tests/test_client_compat_pipecat.py`` with the python of the pipecat environment
(``scripts/install-pipecat-venv.sh``), never imported by the service's tests: pipecat's pins
do not fit the service's environment. The service is used as an application would use it,
with only the base URL, the key and the voice changed, and driven by pipecat's own test
harness (``pipecat.tests.utils.run_test``): a ``TTSSpeakFrame`` goes in, frames come out.

    python pipecat_client.py {elevenlabs_ws,elevenlabs_http,openai} HTTP_BASE KEY VOICE TEXT
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from pipecat.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.tests.utils import SleepFrame, run_test


def make_service(kind: str, http_base: str, key: str, voice: str, session: aiohttp.ClientSession):
    if kind == "elevenlabs_ws":
        from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

        ws_base = http_base.replace("http://", "ws://")
        return ElevenLabsTTSService(api_key=key, voice_id=voice, url=ws_base)
    if kind == "elevenlabs_http":
        from pipecat.services.elevenlabs.tts import ElevenLabsHttpTTSService

        return ElevenLabsHttpTTSService(
            api_key=key, voice_id=voice, base_url=http_base, aiohttp_session=session
        )
    if kind == "openai":
        from pipecat.services.openai.tts import OpenAITTSService

        return OpenAITTSService(api_key=key, voice=voice, base_url=f"{http_base}/v1")
    raise SystemExit(f"unknown service {kind}")


async def main(kind: str, http_base: str, key: str, voice: str, text: str) -> None:
    async with aiohttp.ClientSession() as session:
        tts = make_service(kind, http_base, key, voice, session)
        # A socket service's audio arrives on its own receive task: the sleep lets it come
        # before the harness sends EndFrame.
        sleep = 2.0 if kind.endswith("_ws") else 0.0
        down, up = await run_test(
            tts, frames_to_send=[TTSSpeakFrame(text), SleepFrame(sleep=sleep)]
        )
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    errors = [str(f.error) for f in [*down, *up] if isinstance(f, ErrorFrame)]
    rates = sorted({f.sample_rate for f in audio})
    print(json.dumps({
        "bytes": sum(len(f.audio) for f in audio),
        "frames": len(audio),
        "sample_rates": rates,
        "errors": errors,
    }))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
