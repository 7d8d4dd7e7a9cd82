"""API keys, open routes, request ids, CORS and /metrics over a real socket."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
import websockets

from app.api.auth import check_key, key_id
from tests.servers import LiveServer, live_server, make_settings
from tests.wsclient import WSClient

KEY = "sk-test-0123456789"
OTHER = "sk-other-abcdef"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings(api_keys=f"{KEY}, {OTHER}")) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http, timeout=30) as c:
        yield c


BODY = {"text": "Hello there.", "voice_id": "default"}


def test_health_and_ready_stay_open(client: httpx.Client) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/synthesize", {"json": BODY}),
        ("POST", "/preload", {"json": ["default"]}),
        ("POST", "/warmup", {}),
        ("DELETE", "/voices/default/cache", {}),
        ("GET", "/metrics", {}),
    ],
)
def test_routes_that_synthesize_or_change_state_need_a_key(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, object]
) -> None:
    missing = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.request(method, path, headers={"X-API-Key": "nope"}, **kwargs)  # type: ignore[arg-type]
    assert wrong.status_code == 401
    ok = client.request(method, path, headers={"X-API-Key": KEY}, **kwargs)  # type: ignore[arg-type]
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": OTHER}, {"xi-api-key": KEY}],
)
def test_every_documented_header_is_accepted(client: httpx.Client, headers: dict[str, str]) -> None:
    assert client.post("/synthesize", json=BODY, headers=headers).status_code == 200


def test_basic_or_empty_bearer_is_not_a_key(client: httpx.Client) -> None:
    for value in ("Basic " + KEY, "Bearer", KEY):
        r = client.post("/synthesize", json=BODY, headers={"Authorization": value})
        assert r.status_code == 401, value


def test_key_check_compares_every_key_and_names_keys_without_revealing_them() -> None:
    assert check_key([], None) is None  # auth off
    assert check_key(["a", KEY], KEY) == key_id(KEY)
    assert KEY not in key_id(KEY) and len(key_id(KEY)) == 12


async def test_websocket_without_key_is_closed_with_1008(server: LiveServer) -> None:
    for path in ("/ws/synthesize", "/ws/synthesize-stream"):
        async with await WSClient.connect(server.ws + path) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv(5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_websocket_key_by_header_or_query_parameter(server: LiveServer) -> None:
    async with await WSClient.connect(
        server.ws + "/ws/synthesize-stream", additional_headers={"X-API-Key": KEY}
    ) as ws:
        await ws.send({"type": "init", "voice_id": "default"})
        assert (await ws.recv())["type"] == "ready"
    async with await WSClient.connect(server.ws + f"/ws/synthesize?api_key={OTHER}") as ws:
        await ws.send({"text": "Hi there.", "voice_id": "default"})
        messages = await ws.until(lambda m: m.get("is_final") is True or "error" in m)
        assert messages[-1]["is_final"] is True


def test_the_query_key_never_reaches_a_log(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def go() -> None:
        async with await WSClient.connect(server.ws + f"/ws/synthesize?api_key={KEY}") as ws:
            await ws.send({"text": "Secret words here.", "voice_id": "default"})
            await ws.until(lambda m: m.get("is_final") is True)

    import asyncio

    asyncio.run(go())
    server_lines = [r.getMessage() for r in caplog.records
                    if r.name.startswith(("app", "uvicorn"))]
    assert any("opened" in line for line in server_lines)
    assert not any(KEY in line or "Secret words" in line for line in server_lines)


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    r = client.get("/health", headers={"X-Request-ID": "call-42"})
    assert r.headers["x-request-id"] == "call-42"
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 16
    weird = client.get("/health", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"]
    assert weird != "x" * 500


async def test_socket_ready_and_error_messages_carry_the_request_id(server: LiveServer) -> None:
    async with await WSClient.connect(
        server.ws + "/ws/synthesize-stream",
        additional_headers={"X-API-Key": KEY, "X-Request-ID": "bridge-7"},
    ) as ws:
        await ws.send({"type": "text", "content": "hi"})
        error = await ws.recv()
        assert error["code"] == "not_initialized" and error["request_id"] == "bridge-7"
        await ws.send({"type": "init", "voice_id": "default"})
        assert (await ws.recv())["request_id"] == "bridge-7"


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    r = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_origins_when_configured() -> None:
    settings = make_settings(cors_origins="https://app.example")
    with live_server(settings) as s, httpx.Client(base_url=s.http) as c:
        ok = c.get("/health", headers={"Origin": "https://app.example"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_metrics_public_when_configured_and_warning_without_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with live_server(make_settings(metrics_public=True)) as s, httpx.Client(base_url=s.http) as c:
        assert c.post("/synthesize", json=BODY).status_code == 200  # auth off
        text = c.get("/metrics").text
    assert "AUTHENTICATION IS OFF" in caplog.text
    labels = '{engine="synthetic",preset="balanced",route="synthesize"}'
    assert f"tts_time_to_first_audio_seconds_count{labels} 1.0" in text
    assert f"tts_synthesis_seconds_count{labels} 1.0" in text
    for name in ("tts_active_sessions", "tts_slots_in_use", "tts_queue_depth",
                 "tts_voice_cache_total", "tts_errors_total"):
        assert name in text


def test_log_filter_redacts_keys_in_query_strings() -> None:
    from app.observability.logs import RequestIdFilter

    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0,
                               '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", f"/ws/synthesize?api_key={KEY}&x=1"), None)
    RequestIdFilter().filter(record)
    assert KEY not in record.getMessage() and "api_key=***&x=1" in record.getMessage()
