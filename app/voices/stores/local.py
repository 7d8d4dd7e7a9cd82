"""The local-directory store (``VOICES_DIR``), for development and tests.

Clips are read from ``{root}/{voice_id}/sample.wav``. The id is validated before it is
joined to the path, and the resolved path is checked to stay under the root anyway
(a symlinked voice directory pointing elsewhere is refused). File reads run off the loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.voices.stores.base import not_found, too_large, unavailable
from app.voices.validation import validate_voice_id


class LocalDirStore:
    """Clips read from a directory on this machine."""

    def __init__(self, root: Path | str, *, max_bytes: int = 20_000_000) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_for(self, voice_id: str) -> Path:
        return self.root / validate_voice_id(voice_id) / "sample.wav"

    def describe(self) -> str:
        return f"local-dir {self.root}"

    async def fetch(self, voice_id: str) -> bytes:
        path = self.path_for(voice_id)
        return await asyncio.to_thread(self._read_blocking, voice_id, path)

    def _read_blocking(self, voice_id: str, path: Path) -> bytes:
        try:
            root = self.root.resolve()
            resolved = path.resolve()
            if not resolved.is_relative_to(root) or not resolved.is_file():
                raise not_found(voice_id)
            if resolved.stat().st_size > self.max_bytes:
                raise too_large(voice_id, self.max_bytes)
            with resolved.open("rb") as f:
                data = f.read(self.max_bytes + 1)
        except FileNotFoundError:
            raise not_found(voice_id) from None
        except OSError as exc:
            raise unavailable(voice_id, f"{type(exc).__name__}: {exc.strerror}") from None
        if len(data) > self.max_bytes:  # grew between stat and read
            raise too_large(voice_id, self.max_bytes)
        return data

    async def aclose(self) -> None:
        return None
