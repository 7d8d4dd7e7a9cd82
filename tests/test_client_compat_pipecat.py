"""pipecat's TTS services, unchanged but for base URL, key and voice, against a live server.

pipecat pins protobuf<7, soxr~=1.0 and soundfile~=0.13, which do not fit the service's
environment, so it lives in its own (``scripts/install-pipecat-venv.sh``, run by ``make
test`` as ``.venv-pipecat`` beside ``.venv``) and each case runs
``tests/client_compat/pipecat_client.py`` there as a subprocess, against a server of this
environment on 127.0.0.1: the same separation as a real agent talking to the service.
Each case checks the service produced at least 1.5 s of audio and no error frame.

``VOICE_ALIASES`` maps ``alloy`` to the cloned voice ``alice``: pipecat's
``OpenAITTSService`` only passes OpenAI voice names, so that is how it reaches a clone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import LiveServer
from tests.test_client_compat import KEY, MIN_SECONDS, TEXT, VOICE, settings, write_voice

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "client_compat" / "pipecat_client.py"
# make test builds it beside the main environment; PIPECAT_VENV overrides.
VENV = Path(os.environ.get("PIPECAT_VENV", Path(sys.prefix).with_name(".venv-pipecat")))
PYTHON = VENV / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not PYTHON.exists(),
    reason=f"no pipecat environment at {VENV}: run scripts/install-pipecat-venv.sh {VENV}",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("pipecat")
    write_voice(tmp / "voices", VOICE)
    s = LiveServer(settings(tmp)).start()
    try:
        yield s
    finally:
        s.stop()


def run_pipecat(kind: str, server: LiveServer, voice: str) -> dict[str, object]:
    env = {**os.environ, "LOGURU_LEVEL": "WARNING", "PYTHONPATH": ""}
    done = subprocess.run(
        [str(PYTHON), str(CLIENT), kind, server.http, KEY, voice, TEXT],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(("kind", "voice"), [
    ("elevenlabs_ws", VOICE),
    ("elevenlabs_http", VOICE),
    ("openai", "alloy"),  # an OpenAI name, mapped to alice by VOICE_ALIASES
])
def test_pipecat_service_speaks(server: LiveServer, kind: str, voice: str) -> None:
    out = run_pipecat(kind, server, voice)
    assert out["errors"] == []
    rates = out["sample_rates"]
    assert isinstance(rates, list) and len(rates) == 1
    assert int(out["bytes"]) / 2 / rates[0] >= MIN_SECONDS  # type: ignore[call-overload]
