"""Memory and disk kept by the voice caches stay within their bounds (issue 11, item 8).

- Engines that do not clone (Piper, synthetic) keep no decoded clip: loading many long
  voices leaves Python's traced memory flat (tracemalloc sees numpy's buffers).
- The prepared-voice cache is bounded by bytes by default, measured from the arrays and
  tensors inside each handle even when the engine reports nothing.
- The disk cache stays under ``VOICE_CACHE_MAX_BYTES``; least recently used goes first,
  and that order survives a restart.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from app.config import Settings
from app.engines.base import VoiceClip, VoiceHandle
from app.voices import PublicUrlStore, VoiceManager
from app.voices.disk import DiskCache
from app.voices.sizing import handle_nbytes
from tests.fake_engine_voices import FakeVoiceEngine
from tests.voice_servers import Clip, ClipServer, make_clip

LONG_CLIPS = 20
LONG_WAV = make_clip(59.0, rate=16_000)


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"voice_cache_dir": tmp_path / "cache", "voice_fetch_retries": 0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def bucket() -> Iterator[ClipServer]:
    with ClipServer() as srv:
        yield srv


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def store(bucket: ClipServer, client: httpx.AsyncClient) -> PublicUrlStore:
    return PublicUrlStore(bucket.url, client, max_bytes=5_000_000, timeout=5.0, retries=0)


async def test_engine_without_cloning_keeps_no_decoded_clip(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    for n in range(LONG_CLIPS):
        bucket.serve(f"long{n}", Clip(LONG_WAV))
    manager = VoiceManager(
        settings(tmp_path), FakeVoiceEngine(cloning=False), store(bucket, http_client),
        disk_cache=False,
    )
    try:
        await manager.get("long0")  # warm: imports, thread pools, the HTTP connection
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, LONG_CLIPS):
            assert (await manager.get(f"long{n}")).builtin
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        await manager.aclose()
    # Each decoded clip is 59 s x 24 kHz x 4 bytes = 5.7 MB: keeping them would be +108 MB.
    assert grown < 8_000_000, f"memory grew by {grown / 1e6:.1f} MB"
    assert manager.stats()["clips"]["size"] == 0


async def test_engine_that_clones_keeps_its_clips(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    bucket.serve("a", Clip(make_clip(6.0)))
    manager = VoiceManager(settings(tmp_path), FakeVoiceEngine(), store(bucket, http_client))
    try:
        await manager.get("a")
        assert manager.stats()["clips"]["size"] == 1
    finally:
        await manager.aclose()


@dataclass
class Bundle:
    """Shaped like Chatterbox's ``Conditionals``: a dataclass of tensors and a dict."""

    t3: Any
    gen: dict[str, Any]


class BundleEngine(FakeVoiceEngine):
    """Prepared voices hold about ``size`` bytes and report nothing themselves."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        handle = await super().prepare_voice(clip)
        shared = torch.zeros(16, dtype=torch.float32)
        bundle = Bundle(
            t3={"speaker_emb": shared, "tokens": torch.zeros(self.size // 4, dtype=torch.int16)},
            gen={"feat": np.zeros(self.size // 2, dtype=np.uint8), "again": shared, "n": 3},
        )
        return VoiceHandle(handle.voice_id, builtin=False, data=bundle)


def test_handle_size_is_measured_from_its_tensors() -> None:
    shared = torch.zeros(16, dtype=torch.float32)
    bundle = Bundle(t3={"a": shared, "b": torch.zeros(100, dtype=torch.int64)},
                    gen={"c": np.zeros(1000, dtype=np.float32), "d": shared, "e": "text"})
    assert handle_nbytes(VoiceHandle("x", builtin=False, data=bundle)) == 64 + 800 + 4000
    assert handle_nbytes(VoiceHandle("x", builtin=True)) == 0


async def test_prepared_voices_are_bounded_by_bytes_by_default(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    assert Settings(_env_file=None).max_cached_voice_bytes > 0  # type: ignore[call-arg]
    for name in "abcde":
        bucket.serve(name, Clip(make_clip(5.5)))
    engine = BundleEngine(size=400_000)
    manager = VoiceManager(
        settings(tmp_path, max_cached_voice_bytes=1_000_000), engine, store(bucket, http_client)
    )
    try:
        for name in "abcde":
            await manager.get(name)
            held = manager.stats()["conditioning"]
            assert held["bytes"] <= 1_000_000
        assert held["size"] == 2 and held["evictions"] == 3
    finally:
        await manager.aclose()


async def test_disk_cache_stays_under_its_bound_dropping_least_recently_used(
    tmp_path: Path,
) -> None:
    clip = b"x" * 10_000
    cache = DiskCache(tmp_path / "disk", max_bytes=35_000)
    for name in ("a", "b", "c"):
        assert await cache.write(name, clip, {})
    assert await cache.read("a") is not None  # a is now more recent than b
    await cache.write("d", clip, {})
    on_disk = sum(p.stat().st_size for p in (tmp_path / "disk").iterdir())
    assert on_disk <= 35_000 and cache.total_bytes == on_disk
    assert await cache.read("b") is None  # the least recently used went first
    assert await cache.read("a") is not None

    # A restart keeps the order: c was written before d but read since, so d goes first.
    assert await cache.read("c") is not None
    restarted = DiskCache(tmp_path / "disk", max_bytes=35_000)
    await restarted.write("e", clip, {})
    assert await restarted.read("d") is None
    assert await restarted.read("c") is not None and await restarted.read("e") is not None

    # A clip larger than the whole bound is not written (and evicts nothing).
    assert not await restarted.write("huge", b"x" * 40_000, {})
    assert await restarted.read("c") is not None


async def test_manager_keeps_the_disk_cache_under_its_bound(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    wav = make_clip(5.5)
    bound = int(len(wav) * 2.5)
    for n in range(8):
        bucket.serve(f"v{n}", Clip(wav))
    manager = VoiceManager(
        settings(tmp_path, voice_cache_max_bytes=bound), FakeVoiceEngine(),
        store(bucket, http_client),
    )
    cache_dir = tmp_path / "cache"
    try:
        for n in range(8):
            await manager.get(f"v{n}")
            assert sum(p.stat().st_size for p in cache_dir.iterdir()) <= bound
        disk = manager.stats()["disk"]
        assert disk["entries"] == 2 and disk["evictions"] == 6
    finally:
        await manager.aclose()
