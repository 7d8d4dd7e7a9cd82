"""The disk level of the voice cache: fetched clip bytes under ``VOICE_CACHE_DIR``.

Each voice is ``{voice_id}.audio`` (the bytes as the store sent them) plus a small
``{voice_id}.meta`` JSON sidecar (the store's version of it, its SHA-256 and when it was
last checked against the store), so that revalidation survives a restart. Both are
written atomically (temporary file in the same directory, fsync, ``os.replace``): a crash
or a concurrent reader never sees half a file. All file I/O runs on worker threads.

The level is bounded by ``VOICE_CACHE_MAX_BYTES``: least recently used voices go first.
Recency survives restarts because a hit touches the clip's modification time and the
start-up scan orders entries by it. A clip larger than the whole bound is not written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.voices.validation import is_valid_voice_id, validate_voice_id

logger = logging.getLogger(__name__)

DISK_SUFFIX = ".audio"
META_SUFFIX = ".meta"
_TMP_SUFFIX = ".tmp"
_STALE_TMP_S = 600.0  # a temporary file this old is left over from a crash


@dataclass(frozen=True)
class DiskEntry:
    data: bytes
    meta: dict[str, Any]  # empty when the sidecar is missing or unreadable


class DiskCache:
    """Fetched clip bytes on local disk, keyed by validated voice id, bounded in bytes."""

    def __init__(self, directory: Path | str, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.evictions = 0
        self.errors = 0
        # voice id -> bytes on disk (clip + sidecar), least recently used first; None
        # until the directory has been scanned once.
        self._index: OrderedDict[str, int] | None = None
        self.total_bytes = 0

    def path_for(self, voice_id: str) -> Path:
        return self.directory / f"{validate_voice_id(voice_id)}{DISK_SUFFIX}"

    def _meta_path(self, voice_id: str) -> Path:
        return self.directory / f"{validate_voice_id(voice_id)}{META_SUFFIX}"

    # --- the index ---

    async def _ensure_scanned(self) -> OrderedDict[str, int]:
        if self._index is None:
            found = await asyncio.to_thread(self._scan_blocking)
            if self._index is None:
                self._index = OrderedDict(found)
                self.total_bytes = sum(self._index.values())
                await self._evict_over_bound()
        return self._index

    def _scan_blocking(self) -> list[tuple[str, int]]:
        """(voice id, bytes) of every cached clip, least recently used first."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        except OSError as exc:
            logger.warning("voice disk cache %s unreadable: %s", self.directory, exc)
            return []
        now = time.time()
        sizes: dict[str, int] = {}
        used: dict[str, float] = {}
        for entry in entries:
            name = entry.name
            try:
                if name.endswith(_TMP_SUFFIX):
                    if now - entry.stat().st_mtime > _STALE_TMP_S:
                        os.unlink(entry.path)
                    continue
                for suffix in (DISK_SUFFIX, META_SUFFIX):
                    vid = name[: -len(suffix)]
                    if name.endswith(suffix) and is_valid_voice_id(vid):
                        stat = entry.stat()
                        sizes[vid] = sizes.get(vid, 0) + stat.st_size
                        if suffix == DISK_SUFFIX:
                            used[vid] = stat.st_mtime
            except OSError:
                continue
        # A sidecar without its clip is not an entry (it is removed with the next write).
        return sorted(((v, sizes[v]) for v in used), key=lambda item: used[item[0]])

    def _account(self, index: OrderedDict[str, int], voice_id: str, size: int | None) -> None:
        self.total_bytes -= index.pop(voice_id, 0)
        if size is not None:
            index[voice_id] = size
            self.total_bytes += size

    async def _evict_over_bound(self) -> None:
        index = self._index
        if index is None or self.max_bytes is None:
            return
        while self.total_bytes > self.max_bytes and len(index) > 1:
            vid = next(iter(index))
            self._account(index, vid, None)
            self.evictions += 1
            try:
                await asyncio.to_thread(self._unlink_blocking, vid)
            except OSError as exc:
                logger.warning("voice disk cache delete %s failed: %s", vid, exc)
                self.errors += 1
                continue
            logger.info("voice disk cache over %d bytes: dropped %s", self.max_bytes, vid)

    # --- operations ---

    async def read(self, voice_id: str) -> DiskEntry | None:
        """The cached clip and its sidecar, or ``None`` on a miss (an unreadable file
        counts as a miss). A hit makes the voice the most recently used."""
        path = self.path_for(voice_id)
        index = await self._ensure_scanned()
        try:
            entry: DiskEntry | None = await asyncio.to_thread(self._read_blocking, voice_id, path)
        except OSError as exc:
            logger.warning("voice disk cache read %s failed: %s", path, exc)
            self.errors += 1
            entry = None
        if entry is None:
            self.misses += 1
            self._account(index, voice_id, None)
            return None
        self.hits += 1
        if voice_id in index:
            index.move_to_end(voice_id)
        return entry

    def _read_blocking(self, voice_id: str, path: Path) -> DiskEntry | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            os.utime(path)  # recency for the LRU order after a restart
        except OSError:
            pass
        meta: dict[str, Any] = {}
        try:
            raw = json.loads(self._meta_path(voice_id).read_bytes())
            if isinstance(raw, dict):
                meta = raw
        except (OSError, ValueError):
            pass
        return DiskEntry(data, meta)

    async def write(self, voice_id: str, data: bytes, meta: dict[str, Any]) -> bool:
        """Store ``data`` and its sidecar atomically, then drop the least recently used
        voices while the total is over the bound. A failure is logged, never raised."""
        path = self.path_for(voice_id)
        index = await self._ensure_scanned()
        encoded = json.dumps(meta).encode()
        size = len(data) + len(encoded)
        if self.max_bytes is not None and size > self.max_bytes:
            logger.warning(
                "voice %s (%d bytes) is larger than VOICE_CACHE_MAX_BYTES; not cached on disk",
                voice_id, size,
            )
            return False
        try:
            await asyncio.to_thread(self._atomic_write, path, data)
            await asyncio.to_thread(self._atomic_write, self._meta_path(voice_id), encoded)
        except OSError as exc:
            logger.warning("voice disk cache write %s failed: %s", path, exc)
            self.errors += 1
            return False
        self.writes += 1
        self._account(index, voice_id, size)
        await self._evict_over_bound()
        return True

    async def write_meta(self, voice_id: str, meta: dict[str, Any]) -> bool:
        """Replace a cached clip's sidecar only (after the store said "not modified")."""
        index = await self._ensure_scanned()
        if voice_id not in index:
            return False
        encoded = json.dumps(meta).encode()
        try:
            await asyncio.to_thread(self._atomic_write, self._meta_path(voice_id), encoded)
        except OSError as exc:
            logger.warning("voice disk cache write %s failed: %s", voice_id, exc)
            self.errors += 1
            return False
        return True

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    async def delete(self, voice_id: str) -> bool:
        """Remove the cached clip and its sidecar; True when there was a clip."""
        path = self.path_for(voice_id)
        index = await self._ensure_scanned()
        self._account(index, voice_id, None)
        try:
            return await asyncio.to_thread(self._unlink_blocking, voice_id)
        except OSError as exc:
            logger.warning("voice disk cache delete %s failed: %s", path, exc)
            self.errors += 1
            return False

    def _unlink_blocking(self, voice_id: str) -> bool:
        try:
            self._meta_path(voice_id).unlink(missing_ok=True)
        except OSError:
            pass
        try:
            self.path_for(voice_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "dir": str(self.directory),
            "entries": None if self._index is None else len(self._index),
            "bytes": self.total_bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "evictions": self.evictions,
            "errors": self.errors,
        }
