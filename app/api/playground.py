"""The browser playground: ``GET /`` and its static files (no build step, no framework).

The page and its assets are open (DESIGN.md, auth): the page asks for an API key and sends
it with its own calls (``api_key`` query parameter on the socket, since browsers cannot set
WebSocket headers). Only files that ship in ``app/static`` are served, by exact name.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                ".svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


def _static(name: str) -> FileResponse:
    path = STATIC_DIR / name
    suffix = path.suffix
    # Exact names only: no separators, no dot files, a known type, a file that exists.
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in _MEDIA_TYPES \
            or not path.is_file():
        raise NotFound(f"No such file: {name[:64]}")
    return FileResponse(path, media_type=_MEDIA_TYPES[suffix],
                        headers={"Cache-Control": "no-cache"})


@router.get("/")
async def playground() -> FileResponse:
    """The playground page."""
    return _static("index.html")


@router.get("/static/{name}")
async def static_file(name: str) -> FileResponse:
    return _static(name)
