"""Real loopback servers that stand in for voice storage in tests.

- ``ClipServer``: an HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, ephemeral port)
  playing the public R2 bucket. Each path is told how to answer (a clip, a status code,
  failures then a clip, silence past the timeout, a body cut short, chunked bodies) and
  every request is counted per path. A clip carries an ETag (a hash of its bytes) and a
  Last-Modified, and a matching ``If-None-Match`` gets 304, as R2 does.
- ``CountingMotoServer``: moto's threaded S3 server with a WSGI layer in front that counts
  requests per path and can inject 500s or stalls, for the S3 API store.
- ``make_clip``: a harmonic tone encoded as WAV/FLAC/OGG with soundfile.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server


def make_clip(
    seconds: float = 6.0,
    rate: int = 16_000,
    *,
    channels: int = 1,
    fmt: str = "WAV",
    subtype: str | None = None,
    f0: float = 180.0,
) -> bytes:
    """A voice-like harmonic tone (f0 plus overtones) encoded with soundfile."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(0.5 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    tone = (0.4 * tone / np.max(np.abs(tone))).astype(np.float32)
    data = np.stack([tone * (1.0 - 0.2 * c) for c in range(channels)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def voice_path(voice_id: str) -> str:
    return f"/voices/{voice_id}/sample.wav"


# --- ClipServer behaviours -------------------------------------------------------------


@dataclass
class Clip:
    """200 with ``body``; ``chunked`` sends it without a Content-Length."""

    body: bytes
    content_type: str = "audio/wav"
    chunked: bool = False
    last_modified: str = "Tue, 01 Dec 2026 09:00:00 GMT"

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.body).hexdigest() + '"'


@dataclass
class Status:
    code: int
    body: bytes = b"error"


@dataclass
class FailThenClip:
    """``failures`` answers of ``status``, then the clip."""

    failures: int
    body: bytes
    status: int = 500
    served: int = 0


@dataclass
class Hang:
    """Say nothing for ``seconds`` (or until the server stops), then close."""

    seconds: float = 5.0


@dataclass
class CutShort:
    """Declare ``len(body) + missing`` bytes, send ``body``, close."""

    body: bytes
    missing: int = 10_000


Behaviour = Clip | Status | FailThenClip | Hang | CutShort


@dataclass
class _State:
    routes: dict[str, Behaviour] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    conditional: Counter[str] = field(default_factory=Counter)  # with If-None-Match/-Since
    client_ports: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        state = self.server.state
        with state.lock:
            state.requests[self.path] += 1
            if self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"):
                state.conditional[self.path] += 1
            state.client_ports.append(self.client_address[1])
            behaviour = state.routes.get(self.path)
            if isinstance(behaviour, FailThenClip):
                behaviour.served += 1
        try:
            self._answer(behaviour, state)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, behaviour: Behaviour | None, state: _State) -> None:
        if behaviour is None:
            self._send(404, b"<Error>NoSuchKey</Error>", "application/xml")
        elif isinstance(behaviour, Clip):
            if self.headers.get("If-None-Match") == behaviour.etag:
                self.send_response(304)
                self.send_header("ETag", behaviour.etag)
                self.end_headers()
            elif behaviour.chunked:
                self._send_chunked(behaviour.body, behaviour.content_type)
            else:
                self._send(200, behaviour.body, behaviour.content_type, behaviour)
        elif isinstance(behaviour, Status):
            self._send(behaviour.code, behaviour.body, "text/plain")
        elif isinstance(behaviour, FailThenClip):
            if behaviour.served <= behaviour.failures:
                self._send(behaviour.status, b"try again", "text/plain")
            else:
                self._send(200, behaviour.body, "audio/wav")
        elif isinstance(behaviour, Hang):
            state.stop.wait(behaviour.seconds)
            self.close_connection = True
        elif isinstance(behaviour, CutShort):
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(behaviour.body) + behaviour.missing))
            self.end_headers()
            self.wfile.write(behaviour.body)
            self.wfile.flush()
            self.close_connection = True

    def _send(self, code: int, body: bytes, content_type: str, clip: Clip | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if clip is not None:
            self.send_header("ETag", clip.etag)
            self.send_header("Last-Modified", clip.last_modified)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_chunked(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 32_768):
            piece = body[start : start + 32_768]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class ClipServer:
    """The public bucket on loopback. Unknown paths answer 404."""

    def __init__(self) -> None:
        self._state = _State()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self._state
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ClipServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._state.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, voice_id: str, behaviour: Behaviour) -> None:
        with self._state.lock:
            self._state.routes[voice_path(voice_id)] = behaviour

    def count(self, voice_id: str) -> int:
        with self._state.lock:
            return self._state.requests[voice_path(voice_id)]

    def conditional(self, voice_id: str) -> int:
        """Requests for the voice that carried a conditional header."""
        with self._state.lock:
            return self._state.conditional[voice_path(voice_id)]

    def total(self) -> int:
        with self._state.lock:
            return sum(self._state.requests.values())

    def client_ports(self) -> list[int]:
        with self._state.lock:
            return list(self._state.client_ports)


# --- moto S3 -----------------------------------------------------------------------------

_S3_500 = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class _QuietMotoHandler(MotoRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        pass


class CountingMotoServer(ThreadedMotoServer):
    """moto's S3 server on 127.0.0.1 (ephemeral port) with request counting and faults."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.requests: Counter[tuple[str, str]] = Counter()
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, self._wrap(app), True, request_handler=_QuietMotoHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def _wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
            with self._lock:
                self.requests[(method, path)] += 1
                queue = self._faults.get(path)
                fault = queue.pop(0) if queue and method == "GET" else None
            if fault == "500":
                start_response("500 Internal Server Error", [("Content-Type", "application/xml")])
                return [_S3_500]
            if fault == "hang":
                self._stop.wait(5.0)
            if fault == "cut":
                # Declare more than is sent; werkzeug closes the connection afterwards.
                start_response("200 OK", [("Content-Length", "100000")])
                return [b"RIFF" + b"\0" * 996]
            return app(environ, start_response)

        return counting

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def inject(self, path: str, faults: list[str]) -> None:
        """The next GETs of ``path`` answer with these faults, in order: "500", "hang"
        (stall, then answer) or "cut" (a body shorter than its Content-Length)."""
        with self._lock:
            self._faults[path] = list(faults)

    def gets(self, path: str) -> int:
        with self._lock:
            return self.requests[("GET", path)]

    def total_gets(self) -> int:
        with self._lock:
            return sum(n for (method, _), n in self.requests.items() if method == "GET")
