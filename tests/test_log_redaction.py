"""A key sent as a query parameter never reaches a log line, however its name is spelt.

Auth decodes parameter names (``api%5Fkey`` is ``api_key``), so the redaction must too.
The test drives a real ``python -m app`` process with every spelling that authenticates,
over HTTP and WebSocket, and reads the JSON log lines it wrote.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from websockets.sync.client import connect

from app.api.auth import KEY_PARAMS
from app.observability.logs import SECRET_PARAMS, redact
from tests.app_process import app_process

KEY = "Redact-Me-7f3a9c"


def spellings(name: str) -> list[str]:
    """Ways a client can write ``name`` that Starlette decodes back to it."""
    every_char = "".join(f"%{ord(c):02X}" for c in name)
    return [name, name.replace("_", "%5F"), name.replace("_", "%5f"), every_char,
            "%" + f"{ord(name[0]):02x}" + name[1:]]


def test_every_key_parameter_auth_reads_is_a_redacted_one() -> None:
    assert set(KEY_PARAMS) <= SECRET_PARAMS
    for name in KEY_PARAMS:
        for spelt in spellings(name):
            assert KEY not in redact(f'GET /x?a=1&{spelt}={KEY}&b=2 HTTP/1.1'), spelt


@pytest.mark.slow
def test_a_percent_encoded_key_name_authenticates_but_is_never_logged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    encoded_key = quote(KEY, safe="")
    fully_encoded_key = "".join(f"%{ord(c):02X}" for c in KEY)
    with app_process(tmp_path, API_KEYS=KEY, LOG_LEVEL="debug") as app:
        for name in KEY_PARAMS:
            for spelt in spellings(name):
                for value in (encoded_key, fully_encoded_key):
                    query = f"?{spelt}={value}"
                    r = httpx.post(app.http + "/synthesize" + query, timeout=30,
                                   json={"text": "Hi there.", "voice_id": "default"})
                    assert r.status_code == 200, (spelt, r.text)  # it did authenticate
                    with connect(f"ws://127.0.0.1:{app.port}/ws/synthesize{query}") as ws:
                        ws.send(json.dumps({"text": "Hi.", "voice_id": "default"}))
                        while not json.loads(ws.recv()).get("is_final"):
                            pass
        logs = app.logs()
    assert "/synthesize?" in logs and "WebSocket" in logs  # the paths were logged
    for line in logs.splitlines():
        assert KEY not in line
        assert fully_encoded_key not in line
        assert KEY.lower() not in line.lower()
