"""``python -m app``: run the service with uvicorn (HOST, PORT, TTS_ENGINE from the env).

Logs are JSON lines on stderr by default (``LOG_FORMAT``); SIGTERM drains gracefully
(``app.server``).
"""

from __future__ import annotations

import sys

import uvicorn

from app.config import get_settings
from app.main import create_app
from app.observability.logs import configure_logging
from app.server import serve


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # configure_logging owns the handlers
        ws_max_size=settings.ws_max_message_bytes,
        timeout_graceful_shutdown=5,
        # h11, not httptools: httptools keeps a request head of any size in memory (a
        # 200 MB header line cost 244 MB here); h11 refuses one over this bound.
        http="h11",
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        timeout_keep_alive=settings.http_keepalive_timeout_s,
        limit_concurrency=settings.http_max_concurrency,
        proxy_headers=False,  # app.api.proxies applies them, from TRUSTED_PROXIES only
    )
    code = serve(config.app, config, settings.shutdown_grace_seconds,  # type: ignore[arg-type]
                 settings.shutdown_deregister_seconds)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
