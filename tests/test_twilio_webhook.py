"""POST /twilio/voice: Twilio's signature, the TwiML answer and the warmup it starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from app.api.twilio import twilio_signature
from tests.servers import LiveServer, live_server, make_settings

TOKEN = "12345"
BRIDGE = "wss://bridge.example.com/media?x=1&y=2"


def test_signature_matches_twilios_documented_example() -> None:
    # twilio.com/docs/usage/security, "Validating Signatures from Twilio": this URL, these
    # POST parameters and auth token 12345 give this X-Twilio-Signature.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert twilio_signature(TOKEN, url, list(params.items())) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    assert twilio_signature(TOKEN, url, list(reversed(params.items()))) == (
        "GvWf1cFY/Q7PnoempGyD5oXAezc="
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = make_settings(
        api_keys="some-key", twilio_auth_token=TOKEN, twilio_stream_url=BRIDGE,
        public_base_url="https://tts.example.com",
    )
    with live_server(settings) as s:
        yield s


CALL = {"CallSid": "CA42", "From": "+15550001111", "To": "+15550002222", "voice_id": "default"}


def post(server: LiveServer, params: dict[str, str], signature: str | None,
         query: str = "") -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return httpx.post(f"{server.http}/twilio/voice{query}", content=urlencode(params),
                      headers=headers, timeout=10)


def test_a_signed_call_gets_twiml_that_connects_the_stream(server: LiveServer) -> None:
    sig = twilio_signature(TOKEN, "https://tts.example.com/twilio/voice", list(CALL.items()))
    r = post(server, CALL, sig)  # no API key: the signature is the authentication
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert r.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="wss://bridge.example.com/media?x=1&amp;y=2">'
        '<Parameter name="voice_id" value="default"/></Stream></Connect></Response>'
    )


@pytest.mark.parametrize("signature", [None, "", "GvWf1cFY/Q7PnoempGyD5oXAezc=", "not base64!"])
def test_a_missing_or_wrong_signature_is_403(server: LiveServer, signature: str | None) -> None:
    r = post(server, CALL, signature)
    assert r.status_code == 403 and r.json()["code"] == "invalid_signature"


def test_tampered_parameters_break_the_signature(server: LiveServer) -> None:
    sig = twilio_signature(TOKEN, "https://tts.example.com/twilio/voice", list(CALL.items()))
    assert post(server, {**CALL, "To": "+15559999999"}, sig).status_code == 403


def warmups(server: LiveServer) -> float:
    labels = {"engine": "synthetic", "preset": "realtime", "route": "warmup"}
    value = server.runtime.metrics.registry.get_sample_value("tts_synthesis_seconds_count", labels)
    return value or 0.0


def test_the_voice_can_come_from_the_query_and_warms_without_waiting(server: LiveServer) -> None:
    before = warmups(server)
    params = {"CallSid": "CA43"}
    url = "https://tts.example.com/twilio/voice?voice_id=default"
    started = time.perf_counter()
    r = post(server, params, twilio_signature(TOKEN, url, list(params.items())),
             query="?voice_id=default")
    assert r.status_code == 200 and 'value="default"' in r.text
    assert time.perf_counter() - started < 2.0
    deadline = time.monotonic() + 5
    while warmups(server) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert warmups(server) == before + 1


def test_path_like_voice_is_not_warmed_and_not_echoed(server: LiveServer) -> None:
    params = {"CallSid": "CA44", "voice_id": "../../etc/passwd"}
    sig = twilio_signature(TOKEN, "https://tts.example.com/twilio/voice", list(params.items()))
    r = post(server, params, sig)
    assert r.status_code == 200 and "Parameter" not in r.text and "passwd" not in r.text


@pytest.mark.parametrize(("trusted", "status"), [("127.0.0.1", 200), ("10.0.0.0/8, ::1", 403),
                                                 ("", 403), ("*", 200)])
def test_forwarded_headers_count_only_from_a_trusted_proxy(trusted: str, status: int) -> None:
    # Without PUBLIC_BASE_URL the signed URL comes from X-Forwarded-* only when the peer
    # (here 127.0.0.1) is one of TRUSTED_PROXIES; from anyone else a captured signature
    # for another host must not pass.
    settings = make_settings(twilio_auth_token=TOKEN, twilio_stream_url=BRIDGE,
                             trusted_proxies=trusted)
    with live_server(settings) as s:
        params = {"CallSid": "CA45"}
        sig = twilio_signature(TOKEN, "https://pod-8000.proxy.example/twilio/voice",
                               list(params.items()))
        r = httpx.post(f"{s.http}/twilio/voice", content=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig,
            "X-Forwarded-Proto": "https", "X-Forwarded-Host": "pod-8000.proxy.example",
        })
        assert r.status_code == status, r.text


def test_unconfigured_webhook_is_404() -> None:
    with live_server(make_settings()) as s:
        r = httpx.post(f"{s.http}/twilio/voice", content=b"CallSid=CA1")
        assert r.status_code == 404 and r.json()["code"] == "not_configured"
