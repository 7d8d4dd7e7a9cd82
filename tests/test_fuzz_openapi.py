"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

Whatever schemathesis generates (valid, edge-case and wrong bodies, parameters and
headers), the server never answers a 500: a bad request is a 4xx with a code, and 503 is
only the documented overload answer (with ``Retry-After``). Bounded in examples so that
``make test`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis.checks import not_a_server_error

from app.main import create_app
from tests.servers import LiveServer, live_server, make_settings

KEY = "fuzz-key"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings(api_keys=KEY, max_text_length=400,
                                   twilio_auth_token="t", twilio_stream_url="wss://b/x")) as s:
        yield s


def _routes() -> list[tuple[str, str]]:
    spec = create_app(make_settings()).openapi()
    return [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops]


# Found by this test, owned elsewhere: skipped with the reason until fixed.
KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize(("method", "path"), _routes())
def test_no_server_errors(server: LiveServer, method: str, path: str) -> None:
    # Driven with hypothesis directly: schemathesis' pytest plugin does not run on pytest 9.
    if (method, path) in KNOWN:
        pytest.skip(KNOWN[(method, path)])
    schema = schemathesis.openapi.from_url(server.http + "/openapi.json")
    op = schema[path][method]

    @given(case=op.as_strategy())
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:  # type: ignore[no-untyped-def]
        headers = {"X-API-Key": KEY} if case.path != "/twilio/voice" else {}
        try:
            response = case.call(headers=headers, timeout=30)
        except UnicodeEncodeError:  # the HTTP client cannot send a non-latin-1 header
            assume(False)
        assert response.status_code != 500, (case.path, response.text[:300])
        if response.status_code == 503:
            assert "retry-after" in {k.lower() for k in response.headers}
        case.validate_response(response, checks=(not_a_server_error,))

    fuzz()


def test_the_server_still_works_after_fuzzing(server: LiveServer) -> None:
    r = httpx.post(server.http + "/synthesize", headers={"X-API-Key": KEY},
                   json={"text": "Still fine.", "voice_id": "default"})
    assert r.status_code == 200
    assert server.runtime.capacity.in_use == 0
