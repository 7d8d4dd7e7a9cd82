"""``python -m app``: run the service with uvicorn (HOST, PORT, TTS_ENGINE from the env).

Logs are JSON lines on stderr by default (``LOG_FORMAT``); SIGTERM drains gracefully
(``app.server``).
"""

from __future__ import annotations

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
    )
    serve(config.app, config, settings.shutdown_grace_seconds,  # type: ignore[arg-type]
          settings.shutdown_deregister_seconds)


if __name__ == "__main__":
    main()
