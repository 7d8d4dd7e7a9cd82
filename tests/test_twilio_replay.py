"""A replayed Twilio webhook changes nothing; warmups take no call slot; ports as Twilio signs.

The signatures here are made by Twilio's own ``RequestValidator`` (the ``twilio`` package,
a test-only dependency), so the webhook accepts what Twilio's libraries accept: the URL
with and without ``:443`` / ``:80``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from app.api.twilio import port_variants
from app.api.twilio_replay import ReplayCache
from tests.servers import LiveServer, live_server, make_settings

TOKEN = "replay-token"
BRIDGE = "wss://bridge.example.com/media"
PUBLIC = "https://tts.example.com"
CALL = {"CallSid": "CA900", "From": "+15550001111", "To": "+15550002222", "voice_id": "default"}
validator = RequestValidator(TOKEN)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # Each warmup takes about a second (first chunk 800 ms), so overlapping ones would show.
    settings = make_settings(twilio_auth_token=TOKEN, twilio_stream_url=BRIDGE,
                             public_base_url=PUBLIC, max_concurrent_streams=4,
                             synthetic_first_chunk_ms=800.0)
    with live_server(settings) as s:
        yield s


def signed(url: str, params: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, params)}


def warmups_started(server: LiveServer) -> int:
    return server.app.state.warmups.started  # type: ignore[no-any-return]


async def _replay(server: LiveServer, params: dict[str, str], headers: dict[str, str],
                  n: int) -> tuple[list[httpx.Response], int]:
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, server.runtime.capacity.in_use)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
        replies = await asyncio.gather(*(
            client.post("/twilio/voice", content=urlencode(params), headers=headers)
            for _ in range(n)))
        watcher.cancel()
    return list(replies), peak


async def test_a_hundred_replays_leave_every_slot_free_and_start_one_warmup(
    server: LiveServer,
) -> None:
    before = warmups_started(server)
    params = {**CALL, "CallSid": "CA901"}
    headers = signed(PUBLIC + "/twilio/voice", params)
    replies, peak = await _replay(server, params, headers, 100)
    assert {r.status_code for r in replies} == {200}
    assert len({r.text for r in replies}) == 1  # the same TwiML every time
    assert warmups_started(server) == before + 1
    assert peak == 0  # the warmup itself holds no call slot either
    async with httpx.AsyncClient(base_url=server.http) as client:
        ready = await client.get("/ready")
    assert ready.status_code == 200 and server.runtime.capacity.in_use == 0


def test_two_calls_for_one_voice_at_once_warm_it_once(server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    while server.app.state.warmups.stats()["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    before = warmups_started(server)
    with httpx.Client(base_url=server.http, timeout=30) as client:
        for sid in ("CA902", "CA903"):  # the second comes while the first warmup runs
            params = {**CALL, "CallSid": sid}
            r = client.post("/twilio/voice", content=urlencode(params),
                            headers=signed(PUBLIC + "/twilio/voice", params))
            assert r.status_code == 200
    assert warmups_started(server) == before + 1


@pytest.mark.parametrize("signed_url", [PUBLIC + "/twilio/voice",
                                        "https://tts.example.com:443/twilio/voice"])
@pytest.mark.parametrize("public", [PUBLIC, "https://tts.example.com:443"])
def test_the_default_port_may_be_present_or_absent_on_either_side(
    signed_url: str, public: str,
) -> None:
    settings = make_settings(twilio_auth_token=TOKEN, twilio_stream_url=BRIDGE,
                             public_base_url=public)
    with live_server(settings) as s:
        params = {**CALL, "CallSid": "CA910"}
        assert validator.validate(signed_url, params,
                                  signed(signed_url, params)["X-Twilio-Signature"])
        r = httpx.post(s.http + "/twilio/voice", content=urlencode(params),
                       headers=signed(signed_url, params))
        assert r.status_code == 200, r.text
        other = httpx.post(s.http + "/twilio/voice", content=urlencode(params),
                           headers=signed("https://tts.example.com:8443/twilio/voice", params))
        assert other.status_code == 403  # another port is another URL


def test_repeated_parameters_are_signed_as_twilio_signs_them() -> None:
    settings = make_settings(twilio_auth_token=TOKEN, twilio_stream_url=BRIDGE,
                             public_base_url=PUBLIC)
    body = "CallSid=CA920&Tag=b&Tag=a&Tag=b"
    params = {"CallSid": ["CA920"], "Tag": ["b", "a", "b"]}

    class Multi(dict):  # type: ignore[type-arg]
        def getall(self, name: str) -> list[str]:
            return self[name]  # type: ignore[no-any-return]

    sig = validator.compute_signature(PUBLIC + "/twilio/voice", Multi(params))
    with live_server(settings) as s:
        r = httpx.post(s.http + "/twilio/voice", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    assert r.status_code == 200, r.text


def test_port_variants() -> None:
    assert port_variants("https://a.example/x?y=1") == ["https://a.example/x?y=1",
                                                        "https://a.example:443/x?y=1"]
    assert port_variants("http://a.example:80/x") == ["http://a.example/x",
                                                      "http://a.example:80/x"]
    assert port_variants("https://[::1]:8443/x") == ["https://[::1]/x", "https://[::1]:8443/x"]


def test_replay_cache_forgets_after_its_window_and_stays_bounded() -> None:
    now = [0.0]
    cache = ReplayCache(window_s=10, max_entries=3, clock=lambda: now[0])
    cache.put("CA1", "sig", "<Response/>")
    assert cache.get("CA1", "sig") == "<Response/>"
    assert cache.get("CA1", "other") is None and cache.get("CA2", "sig") is None
    now[0] = 10.5
    assert cache.get("CA1", "sig") is None
    for i in range(10):
        cache.put(f"CA{i}", "sig", "x")
    assert len(cache) == 3 and cache.get("CA9", "sig") == "x"
