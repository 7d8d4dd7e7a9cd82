"""Structured logs: JSON lines on stderr, each with the request id of the work it is about.

The request id lives in a context variable set by the middleware (HTTP) or the socket route
(WebSocket), so every log line inside that request carries it without being passed around.
Call text never goes into a log at INFO: log sizes and ids, not what a caller says.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from typing import Any
from urllib.parse import unquote_plus

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
MAX_REQUEST_ID = 64


def new_request_id() -> str:
    return secrets.token_hex(8)


def clean_request_id(value: str | None) -> str:
    """A client's ``X-Request-ID`` if it is short and printable, else a fresh one."""
    if value and len(value) <= MAX_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return new_request_id()


# uvicorn logs every path with its query string, as the client sent it: keys there must
# not reach a log. Auth reads parameter names after percent-decoding (Starlette), so
# ``api%5Fkey=`` authenticates exactly like ``api_key=``; the names are decoded here the
# same way before they are compared, and any case counts. tests/test_log_redaction.py
# checks every spelling that app.api.auth accepts.
SECRET_PARAMS = frozenset({"api_key", "xi_api_key"})
_PARAM = re.compile(r"(?P<name>[^\s?&;=\"'#]+)=(?P<value>[^\s&;\"'#]*)")


def _decoded(name: str) -> str:
    for _ in range(4):  # undo double encodings too; a name never needs more
        plain = unquote_plus(name)
        if plain == name:
            break
        name = plain
    return name.lower()


def _hide(match: re.Match[str]) -> str:
    if _decoded(match["name"]) in SECRET_PARAMS and match["value"]:
        return match["name"] + "=***"
    return match[0]


def redact(text: str) -> str:
    if "=" not in text:
        return text
    return _PARAM.sub(_hide, text)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record and redacts API keys in query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "request_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """Root logging for ``python -m app`` (uvicorn's loggers propagate to it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
