"""With auth on, the open ``/health`` names no store URL or path; a key gets the full view."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.servers import live_server, make_settings

KEY = "health-view-key"
BUCKET = "https://pub-0123abcd.r2.dev"


def test_open_health_hides_the_store_and_paths_the_keyed_view_shows_them(tmp_path: Path) -> None:
    cache = tmp_path / "secret-cache-dir"
    settings = make_settings(api_keys=KEY, cloudflare_r2_public_url=BUCKET,
                             voice_cache_dir=cache)
    with live_server(settings) as server:
        public = httpx.get(server.http + "/health")
        wrong = httpx.get(server.http + "/health", headers={"X-API-Key": "nope"})
        full = httpx.get(server.http + "/health", headers={"X-API-Key": KEY})
    for r in (public, wrong):
        assert r.status_code == 200
        text = r.text
        assert "r2.dev" not in text and str(cache) not in text and str(tmp_path) not in text
        body = r.json()
        assert body["status"] == "ok" and body["backend"] == "synthetic"
        assert "cache" not in body and "engine_reason" not in body
        assert body["view"].startswith("public")
    assert full.status_code == 200
    full_text = json.dumps(full.json())
    assert "r2.dev" in full_text and str(cache) in full_text
    assert "view" not in full.json()


def test_with_auth_off_health_is_the_full_view(tmp_path: Path) -> None:
    with live_server(make_settings(voice_cache_dir=tmp_path / "c")) as server:
        body = httpx.get(server.http + "/health").json()
    assert "cache" in body and "view" not in body
