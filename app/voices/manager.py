"""The voice manager: from a ``voice_id`` to a prepared ``VoiceHandle``, as fast as it can.

Levels, fastest first: prepared engine conditioning in memory (LRU bounded by
``MAX_CACHED_VOICES`` and, optionally, by the bytes handles report), the decoded clip in
memory (``MAX_CACHED_CLIPS``), the clip's bytes on disk (``VOICE_CACHE_DIR``), then the
store. Every id is validated before any of them is touched. Concurrent requests for one
voice share one load (one download, one ``prepare_voice``). A failed load caches nothing;
a missing voice is remembered as missing for ``VOICE_MISSING_TTL_S``. Voice ``default`` is
the engine's built-in voice (``prepare_voice(None)``) and never touches a store.

Engines without cloning still get the clip, so a bad or missing voice fails the same way
on every engine; their ``prepare_voice`` answers with ``builtin=True``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from app.config import Settings
from app.engines.base import DEFAULT_VOICE_ID, Engine, VoiceClip, VoiceHandle
from app.errors import StorageUnavailable, TTSError, VoiceInvalid, VoiceNotFound
from app.voices.cache import DiskCache, LRUCache, SingleFlight
from app.voices.decode import decode_clip_async
from app.voices.stores.base import VoiceStore, not_found
from app.voices.validation import validate_voice_id

logger = logging.getLogger(__name__)

# Bound on remembered-missing ids, so a flood of random ids cannot grow memory.
MAX_MISSING_ENTRIES = 10_000


def handle_nbytes(handle: VoiceHandle) -> int:
    """Bytes a prepared voice holds, as the engine reports it, else 0.

    An engine reports by giving its handle, or the handle's ``data``, an integer ``nbytes``
    (numpy arrays and torch tensors already have one; a bundle of tensors can sum them).
    """
    for obj in (handle, handle.data):
        n = getattr(obj, "nbytes", None)
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            return n
    return 0


class _StoreStats:
    def __init__(self) -> None:
        self.fetches = 0
        self.ok = 0
        self.not_found = 0
        self.errors = 0
        self.total_ms = 0.0
        self.last_ms: float | None = None
        self.max_ms = 0.0

    def record(self, ms: float) -> None:
        self.fetches += 1
        self.total_ms += ms
        self.last_ms = ms
        self.max_ms = max(self.max_ms, ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fetches": self.fetches,
            "hits": self.ok,
            "not_found": self.not_found,
            "errors": self.errors,
            "latency_ms": {
                "last": None if self.last_ms is None else round(self.last_ms, 2),
                "avg": round(self.total_ms / self.fetches, 2) if self.fetches else None,
                "max": round(self.max_ms, 2),
            },
        }


class VoiceManager:
    """Voice lookups for one engine: caches, single-flight, negative cache and stats."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: VoiceStore | None,
        *,
        disk_cache_dir: Path | str | None = None,
        disk_cache: bool = True,
        max_conditioning_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``disk_cache_dir`` defaults to ``settings.voice_cache_dir``; ``disk_cache=False``
        turns the disk level off. ``max_conditioning_bytes`` (else a ``max_cached_voice_bytes``
        setting, if the settings have one) bounds the bytes prepared voices report."""
        self._settings = settings
        self._engine = engine
        self._store = store
        self._clock = clock
        if max_conditioning_bytes is None:
            max_conditioning_bytes = getattr(settings, "max_cached_voice_bytes", None)
        self._conditioning: LRUCache[str, VoiceHandle] = LRUCache(
            settings.max_cached_voices, max_bytes=max_conditioning_bytes, size_of=handle_nbytes
        )
        self._clips: LRUCache[str, VoiceClip] = LRUCache(settings.max_cached_clips)
        self._missing: LRUCache[str, float] = LRUCache(MAX_MISSING_ENTRIES)
        self._missing_hits = 0
        directory = settings.voice_cache_dir if disk_cache_dir is None else Path(disk_cache_dir)
        self._disk = DiskCache(directory) if disk_cache else None
        self._flight: SingleFlight[str, VoiceHandle] = SingleFlight()
        self._store_stats = _StoreStats()
        self._generation: dict[str, int] = {}  # bumped by evict: a load in flight won't cache
        self._default_handle: VoiceHandle | None = None
        self._prepares = 0
        self._prepare_ms = 0.0
        # Optional metrics sink (``app.observability.metrics.Metrics``): cache lookups by
        # level and store fetch latency.
        self.observer: Any = None

    def _lookup(self, level: str, hit: bool) -> None:
        if self.observer is not None:
            self.observer.cache_lookup(level, hit)

    @property
    def store(self) -> VoiceStore | None:
        return self._store

    @property
    def cached_voices(self) -> int:
        """Prepared voices in memory (``/health``'s ``cached_voices``)."""
        return len(self._conditioning)

    # --- lookups ---

    async def get(self, voice_id: object) -> VoiceHandle:
        """The prepared voice for ``voice_id``.

        Raises ``InvalidVoiceId`` (before any I/O), ``VoiceNotFound``, ``VoiceInvalid`` or
        ``StorageUnavailable``.
        """
        vid = validate_voice_id(voice_id)
        if vid == DEFAULT_VOICE_ID:
            if self._default_handle is not None:
                return self._default_handle
            return await self._flight.run(vid, self._load_default)
        handle = self._conditioning.get(vid)
        self._lookup("prepared", handle is not None)
        if handle is not None:
            return handle
        return await self._flight.run(vid, lambda: self._load(vid))

    async def _load_default(self) -> VoiceHandle:
        handle = await self._prepare(None)
        self._default_handle = handle
        return handle

    async def _load(self, vid: str) -> VoiceHandle:
        generation = self._generation.get(vid, 0)
        clip = await self._clip(vid, generation)
        handle = await self._prepare(clip)
        if self._generation.get(vid, 0) == generation:
            self._conditioning.put(vid, handle)
        return handle

    async def _prepare(self, clip: VoiceClip | None) -> VoiceHandle:
        started = time.perf_counter()
        handle = await self._engine.prepare_voice(clip)
        self._prepares += 1
        self._prepare_ms += (time.perf_counter() - started) * 1000
        return handle

    async def _clip(self, vid: str, generation: int) -> VoiceClip:
        clip = self._clips.get(vid)
        self._lookup("clip", clip is not None)
        if clip is not None:
            return clip
        self._raise_if_missing(vid)
        clip = await self._clip_from_disk(vid)
        if self._disk is not None:
            self._lookup("disk", clip is not None)
        if clip is None:
            data = await self._fetch(vid)
            clip = await self._decode(vid, data)  # VoiceInvalid: nothing is cached
            if self._disk is not None and self._generation.get(vid, 0) == generation:
                await self._disk.write(vid, data)
        if self._generation.get(vid, 0) == generation:
            self._clips.put(vid, clip)
        return clip

    async def _clip_from_disk(self, vid: str) -> VoiceClip | None:
        if self._disk is None:
            return None
        data = await self._disk.read(vid)
        if data is None:
            return None
        try:
            return await self._decode(vid, data)
        except VoiceInvalid as exc:
            # Only valid clips are written, so this is a damaged file or changed limits.
            logger.warning("dropping unusable disk-cached voice %s: %s", vid, exc.message)
            await self._disk.delete(vid)
            return None

    async def _decode(self, vid: str, data: bytes) -> VoiceClip:
        s = self._settings
        return await decode_clip_async(
            vid, data, self._engine.sample_rate, s.voice_min_seconds, s.voice_max_seconds
        )

    async def _fetch(self, vid: str) -> bytes:
        if self._store is None:
            self._mark_missing(vid)
            raise not_found(vid)
        started = time.perf_counter()
        result = "error"
        try:
            data = await self._store.fetch(vid)
            result = "ok"
        except VoiceNotFound:
            result = "not_found"
            self._store_stats.not_found += 1
            self._mark_missing(vid)
            raise
        except TTSError:
            self._store_stats.errors += 1
            raise
        except Exception as exc:  # a store bug must not surface as a bare 500
            self._store_stats.errors += 1
            logger.exception("voice store %s failed on %s", self._store.describe(), vid)
            raise StorageUnavailable(
                f"Voice storage unavailable for {vid}: internal error"
            ) from exc
        finally:
            elapsed = time.perf_counter() - started
            self._store_stats.record(elapsed * 1000)
            if self.observer is not None:
                self.observer.store_fetch(elapsed, result)
        self._store_stats.ok += 1
        return data

    # --- the negative cache ---

    def _mark_missing(self, vid: str) -> None:
        ttl = self._settings.voice_missing_ttl_s
        if ttl > 0:
            self._missing.put(vid, self._clock() + ttl)

    def _raise_if_missing(self, vid: str) -> None:
        expires = self._missing.peek(vid)
        if expires is None:
            return
        if self._clock() < expires:
            self._missing_hits += 1
            raise not_found(vid)
        self._missing.pop(vid)

    # --- batch and maintenance ---

    async def preload(
        self, voice_ids: Iterable[object]
    ) -> tuple[dict[str, bool], dict[str, dict[str, str]]]:
        """Load many voices, ``preload_concurrency`` at a time.

        Returns ``(preloaded, errors)``: ``preloaded[id]`` is True for a ready voice, and
        ``errors[id]`` is ``{"code", "error"}`` for each one that failed. Duplicates are
        loaded once. One bad voice never stops the others.
        """
        wanted: dict[str, object] = {}
        for raw in voice_ids:
            wanted.setdefault(raw if isinstance(raw, str) else repr(raw), raw)
        preloaded: dict[str, bool] = dict.fromkeys(wanted, False)
        errors: dict[str, dict[str, str]] = {}
        gate = asyncio.Semaphore(self._settings.preload_concurrency)

        async def one(key: str, raw: object) -> None:
            async with gate:
                try:
                    await self.get(raw)
                except TTSError as exc:
                    errors[key] = {"code": exc.code, "error": exc.message}
                except Exception:
                    logger.exception("preloading voice %r failed", key)
                    errors[key] = {"code": "internal_error", "error": "Internal error"}
                else:
                    preloaded[key] = True

        await asyncio.gather(*(one(key, raw) for key, raw in wanted.items()))
        return preloaded, {key: errors[key] for key in wanted if key in errors}

    async def evict(self, voice_id: object) -> bool:
        """Drop ``voice_id`` from every level (memory, disk, missing); True if any held it.

        A load already in flight finishes for its callers but caches nothing, and the next
        request starts afresh. ``default`` is the engine's own voice and is never evicted.
        """
        vid = validate_voice_id(voice_id)
        if vid == DEFAULT_VOICE_ID:
            return False
        self._generation[vid] = self._generation.get(vid, 0) + 1
        self._flight.forget(vid)
        found = self._conditioning.pop(vid) is not None
        found = self._clips.pop(vid) is not None or found
        found = self._missing.pop(vid) is not None or found
        if self._disk is not None:
            found = await self._disk.delete(vid) or found
        return found

    def stats(self) -> dict[str, Any]:
        """Sizes and hit counts per level, store fetches and their latency."""
        conditioning = self._conditioning.stats()
        conditioning["prepares"] = self._prepares
        conditioning["prepare_ms_avg"] = (
            round(self._prepare_ms / self._prepares, 2) if self._prepares else None
        )
        store = self._store_stats.to_dict()
        store["backend"] = self._store.describe() if self._store is not None else None
        return {
            "cached_voices": len(self._conditioning),
            "default_voice_ready": self._default_handle is not None,
            "conditioning": conditioning,
            "clips": self._clips.stats(),
            "disk": self._disk.stats() if self._disk is not None else {"enabled": False},
            "store": store,
            "missing": {
                "size": len(self._missing),
                "hits": self._missing_hits,
                "ttl_s": self._settings.voice_missing_ttl_s,
            },
            "in_flight": len(self._flight),
        }

    async def aclose(self) -> None:
        """Cancel loads in flight, close the store, drop memory caches (disk stays)."""
        await self._flight.cancel_all()
        if self._store is not None:
            await self._store.aclose()
        self._conditioning.clear()
        self._clips.clear()
        self._missing.clear()
        self._default_handle = None
