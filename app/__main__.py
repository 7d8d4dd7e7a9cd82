"""``python -m app``: run the service with uvicorn (HOST, PORT, TTS_ENGINE from the env)."""

from __future__ import annotations

import logging

import uvicorn

from app.config import get_settings
from app.main import create_app


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        ws_max_size=settings.ws_max_message_bytes,
    )


if __name__ == "__main__":
    main()
