"""Request bodies are bounded as they stream in, before auth and parsing, and must arrive in time.

Measured on a real ``python -m app`` process (its RSS, its descriptors): a client that
streams a gigabyte, with or without a key, is answered 413 after about the bound and costs
the server almost nothing; a thousand bodies that never finish neither starve ``/health``
nor hold their sockets past the body deadline (408), even when the server starts with the
common soft limit of 1024 descriptors.
"""

from __future__ import annotations

import json
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.app_process import AppProcess, app_process
from tests.servers import live_server, make_settings

KEY = "limits-test-key"
GIGABYTE = 1 << 30
MB = 1 << 20


def _response(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {}


def stream_request(port: int, head: bytes, body: Iterator[bytes],
                   timeout: float = 60.0) -> tuple[int, dict[str, object], int]:
    """Send ``head`` then ``body`` until the server answers; (status, json, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    sent, pending, raw = 0, head, b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if pending is not None else [],
                                                  [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break
                raw += data
                continue
            if writable and pending is not None:
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    pending = None
                    continue
                sent += n
                pending = pending[n:] or next(body, None)
        assert raw, "no answer from the server"
        status, payload = _response(raw)
        return status, payload, sent
    finally:
        sock.close()


def zeros(total: int, piece: int = MB, chunked: bool = False) -> Iterator[bytes]:
    block = b"0" * piece
    for _ in range(total // piece):
        yield (b"%x\r\n" % piece + block + b"\r\n") if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


class PeakRss:
    """Samples a process's RSS every few milliseconds while the block runs."""

    def __init__(self, app: AppProcess) -> None:
        self.app = app
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.app.rss_mb())
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.base = self.app.rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.app.rss_mb())

    @property
    def growth_mb(self) -> float:
        return self.peak - self.base


def synthesize_head(port: int, *, key: str | None, length: int | None) -> bytes:
    lines = [b"POST /synthesize HTTP/1.1", b"Host: 127.0.0.1:%d" % port,
             b"Content-Type: application/json"]
    if key:
        lines.append(b"Authorization: Bearer " + key.encode())
    lines.append(b"Content-Length: %d" % length if length is not None
                 else b"Transfer-Encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.slow
def test_a_gigabyte_body_gets_413_at_once_and_costs_under_20_mb(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with app_process(tmp_path, API_KEYS=KEY) as app:
        # One ordinary request first, so what is measured is the body, not first-use costs.
        ok = httpx.post(app.http + "/synthesize", headers={"X-API-Key": KEY},
                        json={"text": "Warm up.", "voice_id": "default"}, timeout=30)
        assert ok.status_code == 200
        for key in (None, KEY):
            for length in (GIGABYTE, None):  # declared up front, then chunked
                head = synthesize_head(app.port, key=key, length=length)
                with PeakRss(app) as rss:
                    status, body, sent = stream_request(
                        app.port, head, zeros(GIGABYTE, chunked=length is None))
                case = f"key={bool(key)} chunked={length is None}"
                assert status == 413, case
                assert body["code"] == "request_too_large", case
                # "At once": answered after about the 1 MiB bound (plus socket buffers),
                # never after the gigabyte.
                assert sent < 64 * MB, (case, sent)
                assert rss.growth_mb <= 20, (case, rss.growth_mb)
        assert httpx.get(app.http + "/health").status_code == 200


def _raise_own_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the hard descriptor limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.mark.slow
def test_a_thousand_unfinished_bodies_neither_stop_health_nor_outlive_the_deadline(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    _raise_own_fd_limit(2200)
    timeout_s = 15.0  # opening 1,000 sockets must finish within it, also on a loaded machine
    with app_process(tmp_path, fd_soft_limit=1024, REQUEST_BODY_TIMEOUT_S=str(timeout_s),
                     LOG_LEVEL="error") as app:
        fds_before = app.ps.num_fds()
        head = (b"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tex")
        socks = []
        started = time.monotonic()
        try:
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", app.port), timeout=10)
                s.sendall(head)
                socks.append(s)
            # Every one of them is open on the server and none has finished its body.
            # The server holds them all: past the soft limit of 1024 it started with.
            while app.ps.num_fds() < fds_before + 990:
                assert time.monotonic() - started < timeout_s, (app.ps.num_fds(), len(socks))
                time.sleep(0.05)
            health = httpx.get(app.http + "/health", timeout=10)
            assert health.status_code == 200
            # After the deadline each one has been answered 408 and closed by the server.
            answers = []
            for s in socks:
                s.settimeout(max(1.0, timeout_s * 3 - (time.monotonic() - started)))
                try:
                    answers.append(_response(s.recv(4096))[0])
                except (TimeoutError, ConnectionResetError, IndexError, ValueError):
                    answers.append(0)
            assert answers.count(408) == 1000, {a: answers.count(a) for a in set(answers)}
        finally:
            for s in socks:
                s.close()
        deadline = time.monotonic() + 10
        while app.ps.num_fds() > fds_before + 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.ps.num_fds() <= fds_before + 10
        assert httpx.get(app.http + "/health", timeout=10).status_code == 200


def test_the_twilio_webhook_has_its_own_smaller_bound() -> None:
    settings = make_settings(twilio_auth_token="t", twilio_stream_url="wss://b/x")
    with live_server(settings) as server:
        big = httpx.post(server.http + "/twilio/voice", content=b"a=" + b"b" * 70_000,
                         headers={"content-type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413
        assert big.json()["code"] == "request_too_large"
        assert big.headers["connection"] == "close"
        small = httpx.post(server.http + "/synthesize", content=b" " * 70_000 + b"{}",
                           headers={"content-type": "application/json"})
        assert small.status_code == 400  # under MAX_REQUEST_BYTES: parsed, then refused


def test_a_body_that_stalls_gets_408_after_the_deadline() -> None:
    with live_server(make_settings(request_body_timeout_s=0.5)) as server:
        head = (b"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{\"text\": ")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(head)
            started = time.monotonic()
            status, body = _response(s.recv(4096))
            waited = time.monotonic() - started
        assert status == 408
        assert body["code"] == "request_timeout"
        assert 0.4 <= waited < 8


def test_a_complete_body_under_the_bound_is_served_as_before() -> None:
    with live_server(make_settings(max_request_bytes=4096)) as server:
        ok = httpx.post(server.http + "/synthesize",
                        json={"text": "Hello there.", "voice_id": "default"})
        assert ok.status_code == 200
        over = httpx.post(server.http + "/synthesize",
                          json={"text": "x" * 5000, "voice_id": "default"})
        assert over.status_code == 413
