"""The voice manager over a real loopback HTTP bucket: caches, faults, single-flight, ids.

Each test names the property it checks. The store is ``PublicUrlStore`` against
``ClipServer`` (a real HTTP server that counts requests), the engine is a fake that counts
``prepare_voice`` calls; nothing inside the voices layer is mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.errors import InvalidVoiceId, StorageUnavailable, TTSError, VoiceInvalid, VoiceNotFound
from app.voices import PublicUrlStore, VoiceManager
from tests.fake_engine_voices import FakeVoiceEngine
from tests.voice_servers import Clip, ClipServer, CutShort, FailThenClip, Hang, Status, make_clip

TIMEOUT_S = 0.5
RETRIES = 1
WAV = make_clip(6.0)
HTML = b"<!doctype html><html><body>Sign in to continue</body></html>"


@pytest.fixture
def server() -> Iterator[ClipServer]:
    with ClipServer() as srv:
        srv.serve("alice", Clip(WAV))
        srv.serve("bob", Clip(make_clip(7.0, f0=120.0)))
        srv.serve("carol", Clip(make_clip(8.0, f0=220.0)))
        yield srv


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "voice_cache_dir": tmp_path / "voice-cache",
        "voice_fetch_timeout_s": TIMEOUT_S,
        "voice_fetch_retries": RETRIES,
        "voice_max_bytes": 2_000_000,
        "voice_missing_ttl_s": 30.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


Factory = Callable[..., VoiceManager]


@pytest.fixture
async def make_manager(
    tmp_path: Path, server: ClipServer, http_client: httpx.AsyncClient
) -> AsyncIterator[Factory]:
    managers: list[VoiceManager] = []

    def factory(
        engine: FakeVoiceEngine | None = None,
        *,
        clock: Clock | None = None,
        max_conditioning_bytes: int | None = None,
        **overrides: Any,
    ) -> VoiceManager:
        settings = make_settings(tmp_path, **overrides)
        store = PublicUrlStore(
            server.url,
            http_client,
            max_bytes=settings.voice_max_bytes,
            timeout=settings.voice_fetch_timeout_s,
            retries=settings.voice_fetch_retries,
            backoff_s=0.01,
        )
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        manager = VoiceManager(
            settings,
            engine or FakeVoiceEngine(),
            store,
            max_conditioning_bytes=max_conditioning_bytes,
            **kwargs,
        )
        managers.append(manager)
        return manager

    yield factory
    for manager in managers:
        await manager.aclose()


async def test_fetch_decodes_to_engine_rate_and_caches_conditioning(
    server: ClipServer, make_manager: Factory
) -> None:
    engine = FakeVoiceEngine(sample_rate=24_000)
    manager = make_manager(engine)
    first = await manager.get("alice")
    second = await manager.get("alice")
    assert first is second and not first.builtin
    assert server.count("alice") == 1 and engine.prepared == ["alice"]
    clip = engine.clips[0]
    assert clip.sample_rate == 24_000 and clip.samples.ndim == 1
    assert abs(clip.duration_s - 6.0) < 0.01
    stats = manager.stats()
    assert stats["conditioning"]["hits"] == 1 and stats["store"]["fetches"] == 1
    assert stats["store"]["hits"] == 1 and stats["store"]["latency_ms"]["avg"] > 0
    assert stats["disk"]["writes"] == 1 and stats["cached_voices"] == 1


async def test_clip_level_serves_when_conditioning_was_evicted(
    server: ClipServer, make_manager: Factory
) -> None:
    engine = FakeVoiceEngine()
    manager = make_manager(engine, max_cached_voices=1)
    await manager.get("alice")
    await manager.get("bob")  # pushes alice's conditioning out; her clip stays
    await manager.get("alice")
    assert server.count("alice") == 1
    assert engine.prepared == ["alice", "bob", "alice"]
    stats = manager.stats()
    assert stats["clips"]["hits"] == 1 and stats["disk"]["hits"] == 0


async def test_restart_reads_disk_with_zero_store_requests(
    server: ClipServer, make_manager: Factory, tmp_path: Path
) -> None:
    await make_manager().get("alice")
    assert server.count("alice") == 1
    cached = tmp_path / "voice-cache" / "alice.audio"
    assert cached.read_bytes() == WAV
    assert not [p for p in cached.parent.iterdir() if p.name.endswith(".tmp")]

    engine = FakeVoiceEngine()
    restarted = make_manager(engine)
    handle = await restarted.get("alice")
    assert handle.voice_id == "alice" and engine.prepared == ["alice"]
    assert server.count("alice") == 1  # nothing new at the store
    stats = restarted.stats()
    assert stats["disk"]["hits"] == 1 and stats["store"]["fetches"] == 0


async def test_damaged_disk_file_is_dropped_and_refetched(
    server: ClipServer, make_manager: Factory, tmp_path: Path
) -> None:
    cache = tmp_path / "voice-cache"
    cache.mkdir()
    (cache / "alice.audio").write_bytes(b"not a wav at all")
    await make_manager().get("alice")
    assert server.count("alice") == 1
    assert (cache / "alice.audio").read_bytes() == WAV


async def test_lru_evicts_least_recently_used_at_bound(
    server: ClipServer, make_manager: Factory
) -> None:
    engine = FakeVoiceEngine()
    manager = make_manager(engine, max_cached_voices=2, max_cached_clips=1)
    await manager.get("alice")
    await manager.get("bob")
    await manager.get("alice")  # alice is now the most recent
    await manager.get("carol")  # evicts bob
    stats = manager.stats()
    assert stats["cached_voices"] == 2 and stats["conditioning"]["evictions"] == 1
    assert stats["clips"]["size"] == 1
    await manager.get("alice")
    assert engine.prepared == ["alice", "bob", "carol"]
    await manager.get("bob")  # prepared again, from disk: not from the store
    assert engine.prepared[-1] == "bob" and server.count("bob") == 1
    assert manager.stats()["disk"]["hits"] == 1


async def test_conditioning_bounded_by_reported_bytes(make_manager: Factory) -> None:
    engine = FakeVoiceEngine(handle_nbytes=1_000)
    manager = make_manager(engine, max_conditioning_bytes=2_500)
    for vid in ("alice", "bob", "carol"):
        await manager.get(vid)
    stats = manager.stats()["conditioning"]
    assert stats["size"] == 2 and stats["bytes"] == 2_000 and stats["max_bytes"] == 2_500


FAULTS: list[tuple[str, Any, type[TTSError], str, int]] = [
    # (name, behaviour, error, message fragment, store requests expected)
    ("missing", Status(404), VoiceNotFound, "Voice not found: v", 1),
    ("gone", Status(410), VoiceNotFound, "Voice not found: v", 1),
    ("forbidden", Status(403), StorageUnavailable, "HTTP 403", 1),
    ("5xx", Status(503), StorageUnavailable, "HTTP 503", RETRIES + 1),
    ("timeout", Hang(), StorageUnavailable, "timed out", RETRIES + 1),
    ("cut short", CutShort(WAV[:50_000]), StorageUnavailable, "connection broken", 1),
    ("oversized", Clip(b"\0" * 2_100_000), VoiceInvalid, "too large", 1),
    ("oversized chunked", Clip(b"\0" * 2_100_000, chunked=True), VoiceInvalid, "too large", 1),
    ("html", Clip(HTML, "text/html"), VoiceInvalid, "not valid audio", 1),
    ("empty", Clip(b""), VoiceInvalid, "not valid audio", 1),
    ("too short", Clip(make_clip(2.0)), VoiceInvalid, "too short", 1),
    ("too long", Clip(make_clip(61.0, rate=8000)), VoiceInvalid, "too long", 1),
]


@pytest.mark.parametrize(
    ("behaviour", "error", "fragment", "requests"),
    [f[1:] for f in FAULTS],
    ids=[f[0] for f in FAULTS],
)
async def test_each_fault_is_its_own_error_and_service_continues(
    server: ClipServer,
    make_manager: Factory,
    tmp_path: Path,
    behaviour: Any,
    error: type[TTSError],
    fragment: str,
    requests: int,
) -> None:
    server.serve("v", behaviour)
    engine = FakeVoiceEngine()
    manager = make_manager(engine)
    started = time.perf_counter()
    with pytest.raises(error) as info:
        await manager.get("v")
    assert type(info.value) is error or issubclass(type(info.value), error)
    assert fragment in info.value.message
    assert server.count("v") == requests
    assert time.perf_counter() - started < (RETRIES + 1) * TIMEOUT_S + 1.0
    assert engine.prepared == [] and not (tmp_path / "voice-cache" / "v.audio").exists()
    # Others are still served, and a failure was not cached as a success.
    assert (await manager.get("alice")).voice_id == "alice"
    server.serve("v", Clip(WAV))
    if error is VoiceNotFound:
        await manager.evict("v")  # drop the remembered miss
    assert (await manager.get("v")).voice_id == "v"


async def test_one_5xx_then_success_is_retried(server: ClipServer, make_manager: Factory) -> None:
    server.serve("flaky", FailThenClip(1, WAV, status=502))
    handle = await make_manager().get("flaky")
    assert handle.voice_id == "flaky" and server.count("flaky") == 2


async def test_connection_refused_is_storage_unavailable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = PublicUrlStore(
        f"http://127.0.0.1:{port}", max_bytes=1_000_000, timeout=TIMEOUT_S, retries=1
    )
    manager = VoiceManager(make_settings(tmp_path), FakeVoiceEngine(), store)
    with pytest.raises(StorageUnavailable):
        await manager.get("alice")
    await manager.aclose()


async def test_fifty_concurrent_gets_make_one_fetch_and_one_prepare(
    server: ClipServer, make_manager: Factory
) -> None:
    engine = FakeVoiceEngine(prepare_delay_s=0.05)
    manager = make_manager(engine)
    handles = await asyncio.gather(*(manager.get("alice") for _ in range(50)))
    assert server.count("alice") == 1
    assert engine.prepared == ["alice"]
    assert all(h is handles[0] for h in handles)


async def test_cancelled_caller_does_not_cancel_shared_load(
    server: ClipServer, make_manager: Factory
) -> None:
    engine = FakeVoiceEngine(prepare_delay_s=0.1)
    manager = make_manager(engine)
    first = asyncio.create_task(manager.get("alice"))
    second = asyncio.create_task(manager.get("alice"))
    await asyncio.sleep(0.02)
    first.cancel()
    assert (await second).voice_id == "alice"
    assert server.count("alice") == 1 and engine.prepared == ["alice"]


BAD_IDS: list[object] = [
    "../x", "a/b", "%2e%2e", "", "x" * 10_000, None, 123, "a b", "a\n", "alice\x00",
    "аlice", ".", "..", "a.wav", "a\\b", ["alice"], b"alice",
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b)[:20] for b in BAD_IDS])
async def test_invalid_ids_rejected_before_any_io(
    server: ClipServer, make_manager: Factory, bad: object
) -> None:
    engine = FakeVoiceEngine()
    manager = make_manager(engine)
    with pytest.raises(InvalidVoiceId) as info:
        await manager.get(bad)
    message = info.value.message
    assert message.startswith("Invalid voice_id format: ") and len(message) < 200
    assert message.isprintable() and info.value.status_code == 400
    with pytest.raises(InvalidVoiceId):
        await manager.evict(bad)
    _, errors = await manager.preload([bad])
    assert next(iter(errors.values()))["code"] == "invalid_voice_id"
    assert server.total() == 0 and engine.prepared == []


async def test_id_length_cap(make_manager: Factory, server: ClipServer) -> None:
    server.serve("a" * 128, Clip(WAV))
    manager = make_manager()
    assert (await manager.get("a" * 128)).voice_id == "a" * 128
    with pytest.raises(InvalidVoiceId):
        await manager.get("a" * 129)


async def test_missing_voice_remembered_for_ttl_then_refetched(
    server: ClipServer, make_manager: Factory
) -> None:
    clock = Clock()
    manager = make_manager(clock=clock, voice_missing_ttl_s=30.0)
    for _ in range(3):
        with pytest.raises(VoiceNotFound):
            await manager.get("newvoice")
    assert server.count("newvoice") == 1
    assert manager.stats()["missing"] == {"size": 1, "hits": 2, "ttl_s": 30.0}
    server.serve("newvoice", Clip(WAV))  # uploaded meanwhile
    clock.now += 29.0
    with pytest.raises(VoiceNotFound):
        await manager.get("newvoice")
    clock.now += 2.0
    assert (await manager.get("newvoice")).voice_id == "newvoice"
    assert server.count("newvoice") == 2


async def test_evict_drops_every_level(
    server: ClipServer, make_manager: Factory, tmp_path: Path
) -> None:
    engine = FakeVoiceEngine()
    manager = make_manager(engine)
    await manager.get("alice")
    assert await manager.evict("alice") is True
    stats = manager.stats()
    assert stats["cached_voices"] == 0 and stats["clips"]["size"] == 0
    assert not (tmp_path / "voice-cache" / "alice.audio").exists()
    await manager.get("alice")
    assert server.count("alice") == 2 and engine.prepared == ["alice", "alice"]
    assert await manager.evict("nobody") is False
    with pytest.raises(VoiceNotFound):
        await manager.get("nobody")
    assert await manager.evict("nobody") is True  # the remembered miss
    assert await manager.evict("default") is False


async def test_default_voice_is_builtin_and_does_no_io(
    server: ClipServer, make_manager: Factory, tmp_path: Path
) -> None:
    engine = FakeVoiceEngine()
    manager = make_manager(engine)
    handles = await asyncio.gather(*(manager.get("default") for _ in range(10)))
    assert all(h.builtin and h is handles[0] for h in handles)
    assert engine.prepared == [None] and server.total() == 0
    assert not (tmp_path / "voice-cache").exists()
    assert manager.stats()["default_voice_ready"] is True


async def test_no_store_means_every_voice_but_default_is_missing(tmp_path: Path) -> None:
    manager = VoiceManager(make_settings(tmp_path), FakeVoiceEngine(), None)
    with pytest.raises(VoiceNotFound):
        await manager.get("alice")
    assert (await manager.get("default")).builtin
    await manager.aclose()


async def test_engine_without_cloning_still_validates_clip(
    server: ClipServer, make_manager: Factory
) -> None:
    server.serve("short", Clip(make_clip(1.0)))
    manager = make_manager(FakeVoiceEngine(cloning=False))
    assert (await manager.get("alice")).builtin is True
    with pytest.raises(VoiceInvalid):
        await manager.get("short")
    with pytest.raises(VoiceNotFound):
        await manager.get("nobody")


async def test_preload_reports_each_voice_with_bounded_concurrency(
    server: ClipServer, make_manager: Factory
) -> None:
    server.serve("html", Clip(b"<html></html>", "text/html"))
    for i in range(6):
        server.serve(f"v{i}", Clip(WAV))
    engine = FakeVoiceEngine(prepare_delay_s=0.03)
    manager = make_manager(engine, preload_concurrency=2)
    ids: list[object] = ["alice", "nobody", "../etc", "html", "alice", "default"]
    ids += [f"v{i}" for i in range(6)]
    preloaded, errors = await manager.preload(ids)
    assert list(preloaded)[:5] == ["alice", "nobody", "../etc", "html", "default"]
    assert preloaded["alice"] and preloaded["default"] and preloaded["v5"]
    assert not preloaded["nobody"] and not preloaded["html"] and not preloaded["../etc"]
    assert {k: v["code"] for k, v in errors.items()} == {
        "nobody": "voice_not_found",
        "../etc": "invalid_voice_id",
        "html": "voice_invalid",
    }
    assert errors["nobody"]["error"] == "Voice not found: nobody"
    assert engine.max_running <= 2 and server.count("alice") == 1


async def test_shared_client_reuses_connections(server: ClipServer, make_manager: Factory) -> None:
    manager = make_manager()
    for vid in ("alice", "bob", "carol"):
        await manager.get(vid)
    assert len(set(server.client_ports())) == 1
