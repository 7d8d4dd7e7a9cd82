"""Warm a freshly started replica: wait for /health, POST /warmup, then POST /preload.

Run by start.sh beside the server. Standard library only (the image has no curl).

Environment (all optional):
  HOST, PORT            where the server listens (0.0.0.0 / :: mean this machine)
  STARTUP_TIMEOUT_S     how long to wait for /health (default 600: a first start may
                        download the weights)
  WARMUP_VOICE_ID       voice of the warmup request (default "default")
  WARMUP_PRESET         preset of the warmup request (default "realtime")
  PRELOAD_VOICES        comma-separated voice ids to fetch and prepare after the warmup
  WARMUP_AUTH_HEADER    "Name: value" header sent with every call, for a server with auth

Exit status 0 when the warmup succeeded (preload errors are reported, not fatal), else 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PRELOAD_BATCH = 100  # the server's limit per /preload call


def log(msg: str) -> None:
    print(f"[warmup] {msg}", file=sys.stderr, flush=True)


def base_url() -> str:
    host = os.environ.get("HOST", "127.0.0.1").strip() or "127.0.0.1"
    port = os.environ.get("PORT", "8000").strip() or "8000"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def headers() -> dict[str, str]:
    out = {"Accept": "application/json"}
    raw = os.environ.get("WARMUP_AUTH_HEADER", "")
    if raw:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise SystemExit("WARMUP_AUTH_HEADER must look like 'Name: value'")
        out[name.strip()] = value.strip()
    else:
        # The service's own API_KEYS (same environment): use the first key.
        keys = [k.strip() for k in os.environ.get("API_KEYS", "").split(",") if k.strip()]
        if keys:
            out["X-API-Key"] = keys[0]
    return out


def call(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None
    hdrs = headers()
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")[:500]


def wait_for_health(base: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status, body = call("GET", f"{base}/health", timeout=5)
            if status == 200:
                log(f"/health: {json.dumps(body)[:300]}")
                return True
        except (OSError, urllib.error.URLError):
            pass  # not listening yet (the engine loads before the socket opens)
        time.sleep(1.0)
    return False


def main() -> int:
    base = base_url()
    timeout_s = float(os.environ.get("STARTUP_TIMEOUT_S", "600"))
    log(f"waiting up to {timeout_s:.0f} s for {base}/health")
    if not wait_for_health(base, timeout_s):
        log("server did not answer /health in time; no warmup")
        return 1

    voice = os.environ.get("WARMUP_VOICE_ID", "default") or "default"
    preset = os.environ.get("WARMUP_PRESET", "realtime") or "realtime"
    query = urllib.parse.urlencode({"voice_id": voice, "preset": preset})
    t0 = time.monotonic()
    try:
        status, body = call("POST", f"{base}/warmup?{query}", timeout=300)
    except OSError as exc:
        log(f"/warmup failed: {exc}")
        return 1
    log(f"/warmup {status} in {time.monotonic() - t0:.1f} s: {json.dumps(body)[:300]}")
    ok = status == 200

    ids = [v.strip() for v in os.environ.get("PRELOAD_VOICES", "").split(",") if v.strip()]
    for i in range(0, len(ids), PRELOAD_BATCH):
        batch = ids[i : i + PRELOAD_BATCH]
        try:
            status, body = call("POST", f"{base}/preload", body=batch, timeout=600)
        except OSError as exc:
            log(f"/preload failed: {exc}")
            continue
        if status == 200 and isinstance(body, dict):
            done = [k for k, v in body.get("preloaded", {}).items() if v]
            log(f"/preload: {len(done)}/{len(batch)} ready; errors: {body.get('errors') or {}}")
        else:
            log(f"/preload {status}: {body}")

    try:
        status, body = call("GET", f"{base}/ready", timeout=5)
        log(f"/ready {status}: {body}")
    except OSError as exc:
        log(f"/ready failed: {exc}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
