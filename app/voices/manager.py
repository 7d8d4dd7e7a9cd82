"""The voice manager: from a ``voice_id`` to a prepared ``VoiceHandle``, as fast as it can.

Levels, fastest first: prepared engine conditioning in memory (LRU bounded by
``MAX_CACHED_VOICES`` and by ``MAX_CACHED_VOICE_BYTES``), the decoded clip in memory
(``MAX_CACHED_CLIPS``; only for engines that clone), the clip's bytes on disk
(``VOICE_CACHE_DIR``, bounded by ``VOICE_CACHE_MAX_BYTES``), then the store. Every id is
validated before any of them is touched. Concurrent requests for one voice share one load
(one download, one ``prepare_voice``). A failed load caches nothing; a missing voice is
remembered as missing for ``VOICE_MISSING_TTL_S``. Voice ``default`` is the engine's
built-in voice (``prepare_voice(None)``) and never touches a store.

Engines without cloning still get the clip, so a bad or missing voice fails the same way
on every engine; their ``prepare_voice`` answers with ``builtin=True``, and the decoded
clip is dropped at once (they would never read it).

Freshness across replicas: a voice used more than ``VOICE_REVALIDATE_SECONDS`` after the
store last confirmed it is served from the cache as it is, and a conditional request
(ETag / Last-Modified) goes to the store in the background. Not modified: nothing else
happens. Changed: the new clip is decoded and prepared, then replaces the cached one;
calls already holding the old handle finish with it. Store down: the cached clip stays
and the failure is logged. Gone (404): the voice is dropped from this replica.
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
from app.voices.cache import LRUCache, SingleFlight
from app.voices.decode import decode_clip_async
from app.voices.disk import DiskCache
from app.voices.freshness import Freshness, digest
from app.voices.sizing import handle_nbytes
from app.voices.stats import RevalidationStats, StoreStats
from app.voices.stores.base import NO_VERSION, ClipVersion, Fetched, VoiceStore, not_found
from app.voices.validation import validate_voice_id

logger = logging.getLogger(__name__)

# Bound on remembered-missing ids, so a flood of random ids cannot grow memory.
MAX_MISSING_ENTRIES = 10_000


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
        turns the disk level off. ``max_conditioning_bytes`` (else ``MAX_CACHED_VOICE_BYTES``)
        bounds the bytes prepared voices hold. ``clock`` (monotonic seconds) drives the
        missing-voice TTL and revalidation, so tests can move time."""
        self._settings = settings
        self._engine = engine
        self._store = store
        self._clock = clock
        if max_conditioning_bytes is None:
            max_conditioning_bytes = settings.max_cached_voice_bytes
        self._conditioning: LRUCache[str, VoiceHandle] = LRUCache(
            settings.max_cached_voices, max_bytes=max_conditioning_bytes, size_of=handle_nbytes
        )
        # Engines without cloning never read a clip once it is validated: keep none.
        self._keep_clips = bool(engine.capabilities.cloning)
        self._clips: LRUCache[str, VoiceClip] = LRUCache(settings.max_cached_clips)
        self._missing: LRUCache[str, float] = LRUCache(MAX_MISSING_ENTRIES)
        self._missing_hits = 0
        # Covers every voice held at some level, so a cached voice keeps its validators.
        self._fresh: LRUCache[str, Freshness] = LRUCache(
            settings.max_cached_voices + settings.max_cached_clips
        )
        self._revalidating: dict[str, asyncio.Task[None]] = {}
        self._reval_stats = RevalidationStats()
        directory = settings.voice_cache_dir if disk_cache_dir is None else Path(disk_cache_dir)
        self._disk = (
            DiskCache(directory, max_bytes=settings.voice_cache_max_bytes) if disk_cache else None
        )
        self._flight: SingleFlight[str, VoiceHandle] = SingleFlight()
        self._store_stats = StoreStats()
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
        if handle is None:
            handle = await self._flight.run(vid, lambda: self._load(vid))
        self._revalidate_if_due(vid)
        return handle

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
        if self._keep_clips:
            clip = self._clips.get(vid)
            self._lookup("clip", clip is not None)
            if clip is not None:
                return clip
        self._raise_if_missing(vid)
        clip = await self._clip_from_disk(vid, generation)
        if self._disk is not None:
            self._lookup("disk", clip is not None)
        if clip is None:
            fetched = await self._fetch(vid, NO_VERSION)
            data = fetched.data
            if data is None:  # a store bug: nothing was asked conditionally
                raise StorageUnavailable(f"Voice storage unavailable for {vid}: empty answer")
            clip = await self._decode(vid, data)  # VoiceInvalid: nothing is cached
            fresh = Freshness(fetched.version, await digest(data), self._clock())
            if self._generation.get(vid, 0) == generation:
                self._fresh.put(vid, fresh)
                if self._disk is not None:
                    await self._disk.write(vid, data, fresh.to_meta(self._clock()))
        if self._keep_clips and self._generation.get(vid, 0) == generation:
            self._clips.put(vid, clip)
        return clip

    async def _clip_from_disk(self, vid: str, generation: int) -> VoiceClip | None:
        if self._disk is None:
            return None
        entry = await self._disk.read(vid)
        if entry is None:
            return None
        try:
            clip = await self._decode(vid, entry.data)
        except VoiceInvalid as exc:
            # Only valid clips are written, so this is a damaged file or changed limits.
            logger.warning("dropping unusable disk-cached voice %s: %s", vid, exc.message)
            await self._disk.delete(vid)
            return None
        data_digest = await digest(entry.data)
        known = self._fresh.peek(vid)
        if self._generation.get(vid, 0) == generation and (
            known is None or known.digest != data_digest
        ):
            self._fresh.put(vid, Freshness.from_meta(entry.meta, data_digest, self._clock()))
        return clip

    async def _decode(self, vid: str, data: bytes) -> VoiceClip:
        s = self._settings
        return await decode_clip_async(
            vid, data, self._engine.sample_rate, s.voice_min_seconds, s.voice_max_seconds
        )

    async def _fetch(self, vid: str, known: ClipVersion) -> Fetched:
        if self._store is None:
            self._mark_missing(vid)
            raise not_found(vid)
        started = time.perf_counter()
        result = "error"
        try:
            fetched = await self._store.fetch_versioned(vid, known)
            result = "ok" if fetched.data is not None else "not_modified"
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
        return fetched

    # --- revalidation ---

    def _revalidate_if_due(self, vid: str) -> None:
        """Start a background check of ``vid`` against the store if its interval passed.

        Never awaited by the request: the caller is served from the cache as it is, so a
        slow or dead store cannot delay a call. At most one check per voice at a time.
        """
        interval = self._settings.voice_revalidate_seconds
        if interval <= 0 or self._store is None or vid in self._revalidating:
            return
        fresh = self._fresh.get(vid)
        if fresh is not None and self._clock() - fresh.checked_at < interval:
            return
        task = asyncio.get_running_loop().create_task(self._revalidate(vid, fresh))
        self._revalidating[vid] = task
        task.add_done_callback(lambda _t, vid=vid: self._revalidating.pop(vid, None))  # type: ignore[misc]

    async def wait_revalidations(self) -> None:
        """Wait for the background checks running now (tests and benchmarks)."""
        while self._revalidating:
            await asyncio.gather(*self._revalidating.values(), return_exceptions=True)

    async def _revalidate(self, vid: str, fresh: Freshness | None) -> None:
        generation = self._generation.get(vid, 0)
        known = fresh.version if fresh is not None else NO_VERSION
        self._reval_stats.checks += 1
        try:
            fetched = await self._fetch(vid, known)
        except VoiceNotFound:
            self._reval_stats.gone += 1
            logger.warning("voice %s is no longer in the store: dropped from this replica", vid)
            await self.evict(vid)
            self._mark_missing(vid)
            return
        except TTSError as exc:
            self._reval_stats.errors += 1
            logger.warning(
                "voice store unavailable while revalidating %s, serving the cached clip: %s",
                vid, exc.message,
            )
            if fresh is not None and self._generation.get(vid, 0) == generation:
                self._fresh.put(vid, fresh.checked(self._clock()))  # next try: one interval
            return
        if self._generation.get(vid, 0) != generation:
            return  # evicted or replaced meanwhile
        data = fetched.data
        new_digest = None if data is None else await digest(data)
        if fresh is not None and (data is None or new_digest == fresh.digest):
            self._reval_stats.not_modified += 1
            confirmed = fresh.checked(self._clock(), fetched.version)
            self._fresh.put(vid, confirmed)
            if self._disk is not None:
                await self._disk.write_meta(vid, confirmed.to_meta(self._clock()))
            return
        if data is None or new_digest is None:
            return  # "not modified" to an unconditional request: a store bug, try later
        await self._replace(vid, generation, data, Freshness(fetched.version, new_digest, 0.0))

    async def _replace(self, vid: str, generation: int, data: bytes, fresh: Freshness) -> None:
        """Prepare a changed clip off to the side, then swap it in at once."""
        try:
            clip = await self._decode(vid, data)
            handle = await self._prepare(clip)
        except TTSError as exc:
            self._reval_stats.errors += 1
            logger.error(
                "voice %s changed in the store but the new clip is unusable, serving the "
                "cached clip: %s", vid, exc.message,
            )
            return
        fresh = fresh.checked(self._clock())
        if self._disk is not None:
            await self._disk.write(vid, data, fresh.to_meta(self._clock()))
        if self._generation.get(vid, 0) != generation:
            if self._disk is not None:
                await self._disk.delete(vid)  # evicted while we wrote
            return
        # Loads in flight started from the old clip: they finish for their callers but
        # cache nothing. Calls holding the old handle keep it; new calls get this one.
        self._generation[vid] = generation + 1
        self._flight.forget(vid)
        self._conditioning.put(vid, handle)
        if self._keep_clips:
            self._clips.put(vid, clip)
        self._fresh.put(vid, fresh)
        self._reval_stats.replaced += 1
        logger.info("voice %s changed in the store: replaced on this replica", vid)

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
        self._fresh.pop(vid)
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
            "revalidation": self._reval_stats.to_dict(
                self._settings.voice_revalidate_seconds, len(self._revalidating)
            ),
        }

    async def aclose(self) -> None:
        """Cancel loads in flight, close the store, drop memory caches (disk stays)."""
        await self._flight.cancel_all()
        checks = list(self._revalidating.values())
        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        if self._store is not None:
            await self._store.aclose()
        self._conditioning.clear()
        self._clips.clear()
        self._missing.clear()
        self._fresh.clear()
        self._default_handle = None
