"""POST /normalize over a real socket: the spoken form, the map, errors, auth."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import live_server, make_settings


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    settings = make_settings(tts_engine="synthetic", max_text_length=200, api_keys="k1")
    with live_server(settings) as server, httpx.Client(
        base_url=server.http, timeout=30, headers={"Authorization": "Bearer k1"}
    ) as c:
        yield c


def test_spoken_form_and_character_map(client: httpx.Client) -> None:
    text = "Pay $25.50 by 3:30 PM."
    r = client.post("/normalize", json={"text": text, "language": "en"})
    assert r.status_code == 200
    body = r.json()
    assert body["spoken"] == "Pay twenty-five dollars and fifty cents by three thirty P M."
    assert body["text"] == text and body["supported"] is True
    assert len(body["char_map"]) == len(text)
    money = next(s for s in body["spans"] if s["text"] == "$25.50")
    assert money["spoken"] == "twenty-five dollars and fifty cents"
    for i in range(money["start"], money["end"]):
        assert body["char_map"][i] == [money["spoken_start"], money["spoken_end"]]


def test_other_language_and_unsupported_language(client: httpx.Client) -> None:
    de = client.post("/normalize", json={"text": "15 %", "language": "de-DE"}).json()
    assert de["spoken"] == "fünfzehn Prozent" and de["language"] == "de"
    sw = client.post("/normalize", json={"text": "Bei 25", "language": "sw"}).json()
    assert sw["spoken"] == "Bei 25" and sw["supported"] is False


@pytest.mark.parametrize(
    "body",
    [{}, {"text": 5}, {"text": ""}, {"text": "x" * 201}, {"text": "hi", "language": "../etc"}],
)
def test_bad_requests_are_400_or_422_and_service_stays_healthy(
    client: httpx.Client, body: dict
) -> None:
    r = client.post("/normalize", json=body)
    assert r.status_code in (400, 422)
    assert "error" in r.json() or "detail" in r.json()
    assert client.get("/health").status_code == 200


def test_needs_the_api_key(client: httpx.Client) -> None:
    r = httpx.post(str(client.base_url) + "/normalize", json={"text": "hi"}, timeout=10)
    assert r.status_code == 401
