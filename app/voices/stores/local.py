"""The local-directory store (``VOICES_DIR``), for development and tests.

Clips are read from ``{root}/{voice_id}/sample.wav``. The id is validated before it is
joined to the path, and the resolved path is checked to stay under the root anyway
(a symlinked voice directory pointing elsewhere is refused). File reads run off the loop.
A file's version is its modification time and size, so a conditional fetch of an
unchanged file is one ``stat``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.voices.stores.base import (
    NO_VERSION,
    ClipVersion,
    Fetched,
    VersionedStore,
    not_found,
    too_large,
    unavailable,
)
from app.voices.validation import validate_voice_id


class LocalDirStore(VersionedStore):
    """Clips read from a directory on this machine."""

    def __init__(self, root: Path | str, *, max_bytes: int = 20_000_000) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_for(self, voice_id: str) -> Path:
        return self.root / validate_voice_id(voice_id) / "sample.wav"

    def describe(self) -> str:
        return f"local-dir {self.root}"

    async def fetch_versioned(self, voice_id: str, known: ClipVersion = NO_VERSION) -> Fetched:
        path = self.path_for(voice_id)
        return await asyncio.to_thread(self._read_blocking, voice_id, path, known)

    def _read_blocking(self, voice_id: str, path: Path, known: ClipVersion) -> Fetched:
        try:
            root = self.root.resolve()
            resolved = path.resolve()
            if not resolved.is_relative_to(root) or not resolved.is_file():
                raise not_found(voice_id)
            stat = resolved.stat()
            version = ClipVersion(etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')
            if known.etag is not None and known.etag == version.etag:
                return Fetched(None, version)
            if stat.st_size > self.max_bytes:
                raise too_large(voice_id, self.max_bytes)
            with resolved.open("rb") as f:
                data = f.read(self.max_bytes + 1)
        except FileNotFoundError:
            raise not_found(voice_id) from None
        except OSError as exc:
            raise unavailable(voice_id, f"{type(exc).__name__}: {exc.strerror}") from None
        if len(data) > self.max_bytes:  # grew between stat and read
            raise too_large(voice_id, self.max_bytes)
        return Fetched(data, version)

    async def aclose(self) -> None:
        return None
