"""Voices stay fresh on every replica: revalidation after ``VOICE_REVALIDATE_SECONDS``.

Against the real loopback bucket (``ClipServer``, which sends ETags and answers 304) and a
real moto S3 server, with the manager's clock moved by hand: no store request within the
interval; after it, one conditional request in the background (the caller is served from
the cache at once); a changed clip is prepared aside and swapped in while holders of the
old handle keep it; a store outage keeps the cached clip and is logged; a clip deleted
from the store is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from app.config import Settings
from app.engines.base import VoiceHandle
from app.errors import VoiceNotFound
from app.voices import PublicUrlStore, S3Store, VoiceManager
from app.voices.stores.base import VoiceStore
from tests.fake_engine_voices import FakeVoiceEngine
from tests.voice_servers import Clip, ClipServer, CountingMotoServer, Hang, Status, make_clip

INTERVAL = 60.0
WAV = make_clip(6.0)
NEW_WAV = make_clip(7.0, f0=130.0)
BUCKET = "fresh-voices"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "voice_cache_dir": tmp_path / "cache",
        "voice_fetch_timeout_s": 0.5,
        "voice_fetch_retries": 1,
        "voice_revalidate_seconds": INTERVAL,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def clip_seconds(handle: VoiceHandle) -> float:
    return float(handle.data.clip_seconds)


@pytest.fixture
def bucket() -> Iterator[ClipServer]:
    with ClipServer() as srv:
        srv.serve("alice", Clip(WAV))
        yield srv


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def manager(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> AsyncIterator[tuple[VoiceManager, FakeVoiceEngine, Clock]]:
    clock = Clock()
    engine = FakeVoiceEngine()
    store = PublicUrlStore(bucket.url, http_client, max_bytes=2_000_000, timeout=0.5,
                           retries=1, backoff_s=0.01)
    mgr = VoiceManager(settings(tmp_path), engine, store, clock=clock)
    yield mgr, engine, clock
    await mgr.aclose()


async def test_no_store_request_within_interval_then_one_conditional_request(
    manager: tuple[VoiceManager, FakeVoiceEngine, Clock], bucket: ClipServer
) -> None:
    mgr, engine, clock = manager
    first = await mgr.get("alice")
    for _ in range(50):
        clock.now += (INTERVAL - 1) / 50
        assert await mgr.get("alice") is first
    await mgr.wait_revalidations()
    assert bucket.count("alice") == 1  # never on every request

    clock.now += 2  # past the interval since the fetch
    assert await mgr.get("alice") is first
    await mgr.wait_revalidations()
    assert bucket.count("alice") == 2 and bucket.conditional("alice") == 1
    stats = mgr.stats()["revalidation"]
    assert stats["checks"] == 1 and stats["not_modified"] == 1 and stats["replaced"] == 0
    assert engine.prepared == ["alice"]  # an unchanged clip is not prepared again

    clock.now += INTERVAL - 1  # the interval restarts at the check
    await mgr.get("alice")
    await mgr.wait_revalidations()
    assert bucket.count("alice") == 2


async def test_replaced_clip_is_prepared_aside_and_swapped_in(
    tmp_path: Path,
    manager: tuple[VoiceManager, FakeVoiceEngine, Clock],
    bucket: ClipServer,
    http_client: httpx.AsyncClient,
) -> None:
    mgr, engine, clock = manager
    old = await mgr.get("alice")
    bucket.serve("alice", Clip(NEW_WAV))
    clock.now += INTERVAL / 2
    assert await mgr.get("alice") is old  # within the interval: the old clip, no request
    assert bucket.count("alice") == 1

    clock.now += INTERVAL
    assert await mgr.get("alice") is old  # served at once while the check runs
    await mgr.wait_revalidations()
    new = await mgr.get("alice")
    assert new is not old and clip_seconds(new) == pytest.approx(7.0)
    assert clip_seconds(old) == pytest.approx(6.0)  # a call holding it is untouched
    assert engine.prepared == ["alice", "alice"]
    assert mgr.stats()["revalidation"]["replaced"] == 1

    # The disk level holds the new clip too: a restart serves it without the store.
    store = PublicUrlStore(bucket.url, http_client, max_bytes=2_000_000, timeout=0.5, retries=0)
    restarted = VoiceManager(settings(tmp_path), FakeVoiceEngine(), store, clock=Clock())
    try:
        assert clip_seconds(await restarted.get("alice")) == pytest.approx(7.0)
        await restarted.wait_revalidations()
        assert bucket.count("alice") == 2
    finally:
        await restarted.aclose()


@pytest.mark.parametrize("outage", [Status(503), Hang(5.0)], ids=["503", "hang"])
async def test_store_outage_keeps_serving_the_cached_clip_and_logs_it(
    manager: tuple[VoiceManager, FakeVoiceEngine, Clock],
    bucket: ClipServer,
    caplog: pytest.LogCaptureFixture,
    outage: Status | Hang,
) -> None:
    mgr, engine, clock = manager
    cached = await mgr.get("alice")
    bucket.serve("alice", outage)
    clock.now += INTERVAL + 1
    with caplog.at_level(logging.WARNING, logger="app.voices.manager"):
        assert await mgr.get("alice") is cached
        # The caller did not wait for the store: the check is still running.
        assert mgr.stats()["revalidation"]["in_flight"] == 1
        await mgr.wait_revalidations()
        assert await mgr.get("alice") is cached
    assert any("serving the cached clip" in r.getMessage() for r in caplog.records)
    assert mgr.stats()["revalidation"]["errors"] == 1

    # Back up: the next interval's check confirms the clip, nothing is prepared again.
    bucket.serve("alice", Clip(WAV))
    clock.now += INTERVAL + 1
    await mgr.get("alice")
    await mgr.wait_revalidations()
    assert mgr.stats()["revalidation"]["not_modified"] == 1
    assert engine.prepared == ["alice"]


async def test_clip_deleted_from_store_is_dropped_from_the_replica(
    manager: tuple[VoiceManager, FakeVoiceEngine, Clock], bucket: ClipServer
) -> None:
    mgr, _engine, clock = manager
    await mgr.get("alice")
    bucket.serve("alice", Status(404))
    clock.now += INTERVAL + 1
    await mgr.get("alice")  # still served: the caller does not wait for the check
    await mgr.wait_revalidations()
    with pytest.raises(VoiceNotFound):
        await mgr.get("alice")
    assert mgr.stats()["revalidation"]["gone"] == 1


async def test_unusable_replacement_keeps_the_old_clip(
    manager: tuple[VoiceManager, FakeVoiceEngine, Clock],
    bucket: ClipServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mgr, _engine, clock = manager
    old = await mgr.get("alice")
    bucket.serve("alice", Clip(make_clip(1.0)))  # too short to be a voice
    clock.now += INTERVAL + 1
    with caplog.at_level(logging.ERROR, logger="app.voices.manager"):
        await mgr.get("alice")
        await mgr.wait_revalidations()
    assert await mgr.get("alice") is old
    assert any("unusable" in r.getMessage() for r in caplog.records)


async def test_restart_revalidates_a_disk_clip_checked_long_ago(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    def make() -> VoiceManager:
        store = PublicUrlStore(bucket.url, http_client, max_bytes=2_000_000, timeout=0.5,
                               retries=0)
        return VoiceManager(settings(tmp_path), FakeVoiceEngine(), store, clock=Clock())

    first = make()
    await first.get("alice")
    await first.aclose()
    restarted = make()
    try:
        await restarted.get("alice")  # checked just now (the sidecar says when): no request
        await restarted.wait_revalidations()
        assert bucket.count("alice") == 1
    finally:
        await restarted.aclose()

    meta_path = tmp_path / "cache" / "alice.meta"
    meta = json.loads(meta_path.read_text())
    meta["checked"] -= 3600  # as if the replica had been down an hour
    meta_path.write_text(json.dumps(meta))
    later = make()
    try:
        await later.get("alice")
        await later.wait_revalidations()
        assert bucket.count("alice") == 2 and bucket.conditional("alice") == 1
        assert later.stats()["revalidation"]["not_modified"] == 1
    finally:
        await later.aclose()


async def test_zero_interval_never_revalidates(
    tmp_path: Path, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    clock = Clock()
    store = PublicUrlStore(bucket.url, http_client, max_bytes=2_000_000, timeout=0.5, retries=0)
    mgr = VoiceManager(settings(tmp_path, voice_revalidate_seconds=0), FakeVoiceEngine(), store,
                       clock=clock)
    try:
        await mgr.get("alice")
        clock.now += 10 * INTERVAL
        await mgr.get("alice")
        await mgr.wait_revalidations()
        assert bucket.count("alice") == 1
    finally:
        await mgr.aclose()


# --- the S3 API store -------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[CountingMotoServer]:
    server = CountingMotoServer()
    server.start()
    yield server
    server.stop()


def put(moto: CountingMotoServer, voice_id: str, body: bytes) -> None:
    admin = boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id="test",
                         aws_secret_access_key="test", region_name="us-east-1")
    try:
        try:
            admin.create_bucket(Bucket=BUCKET)
        except admin.exceptions.BucketAlreadyOwnedByYou:
            pass
        admin.put_object(Bucket=BUCKET, Key=f"voices/{voice_id}/sample.wav", Body=body)
    finally:
        admin.close()


async def test_s3_revalidation_is_conditional_and_picks_up_a_replaced_clip(
    tmp_path: Path, moto: CountingMotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    put(moto, "bob", WAV)
    path = f"/{BUCKET}/voices/bob/sample.wav"
    clock = Clock()
    engine = FakeVoiceEngine()
    store: VoiceStore = S3Store(moto.endpoint, "test", "test", BUCKET, max_bytes=2_000_000,
                                timeout=0.5, retries=1, backoff_s=0.01)
    mgr = VoiceManager(settings(tmp_path), engine, store, clock=clock)
    try:
        old = await mgr.get("bob")
        clock.now += INTERVAL - 1
        await mgr.get("bob")
        assert moto.gets(path) == 1  # nothing within the interval

        clock.now += 2
        await mgr.get("bob")
        await mgr.wait_revalidations()
        assert moto.gets(path) == 2
        assert mgr.stats()["revalidation"]["not_modified"] == 1  # moto answered 304

        put(moto, "bob", NEW_WAV)
        clock.now += INTERVAL + 1
        assert await mgr.get("bob") is old
        await mgr.wait_revalidations()
        assert clip_seconds(await mgr.get("bob")) == pytest.approx(7.0)
        assert clip_seconds(old) == pytest.approx(6.0)

        moto.inject(path, ["500", "500"])
        clock.now += INTERVAL + 1
        with caplog.at_level(logging.WARNING, logger="app.voices.manager"):
            current = await mgr.get("bob")
            await mgr.wait_revalidations()
        assert await mgr.get("bob") is current
        assert any("serving the cached clip" in r.getMessage() for r in caplog.records)
        stats = mgr.stats()["revalidation"]
        assert stats["replaced"] == 1 and stats["errors"] == 1
    finally:
        await mgr.aclose()


async def test_each_store_answers_a_conditional_fetch_without_the_body(
    tmp_path: Path, moto: CountingMotoServer, bucket: ClipServer, http_client: httpx.AsyncClient
) -> None:
    from app.voices import LocalDirStore
    from app.voices.stores.base import ClipVersion

    put(moto, "carol", WAV)
    (tmp_path / "voices" / "carol").mkdir(parents=True)
    (tmp_path / "voices" / "carol" / "sample.wav").write_bytes(WAV)
    bucket.serve("carol", Clip(WAV))
    stores: list[VoiceStore] = [
        PublicUrlStore(bucket.url, http_client, max_bytes=2_000_000, timeout=1.0, retries=0),
        S3Store(moto.endpoint, "test", "test", BUCKET, max_bytes=2_000_000, timeout=1.0,
                retries=0),
        LocalDirStore(tmp_path / "voices"),
    ]
    try:
        for store in stores:
            first = await store.fetch_versioned("carol")
            assert first.data == WAV and first.version.known, store.describe()
            again = await store.fetch_versioned("carol", first.version)
            assert again.data is None, store.describe()  # ETag matched: no body
            if first.version.last_modified is not None:  # Last-Modified alone works too
                by_date = ClipVersion(last_modified=first.version.last_modified)
                if isinstance(store, S3Store):
                    assert (await store.fetch_versioned("carol", by_date)).data is None
            assert (await store.fetch_versioned("carol", ClipVersion('"other"'))).data == WAV
    finally:
        for store in stores:
            await store.aclose()


async def test_a_call_in_progress_finishes_with_the_old_clip_while_it_is_replaced(
    tmp_path: Path, bucket: ClipServer
) -> None:
    """End to end: a replacement swapped in mid-call does not disturb the call."""
    import asyncio

    from tests.servers import live_server, make_settings
    from tests.wsclient import WSClient, is_audio

    settings_ = make_settings(
        synthetic_rtf=0.5, cloudflare_r2_public_url=bucket.url,
        voice_cache_dir=tmp_path / "cache", voice_revalidate_seconds=0.2,
    )
    with live_server(settings_) as server:
        async with await WSClient.connect(server.ws + "/ws/synthesize-stream") as call:
            await call.send({"type": "init", "voice_id": "alice"})
            assert (await call.recv())["type"] == "ready"
            await call.send({"type": "text", "content": "One long reply. " * 6})
            await call.send({"type": "end"})
            first = await call.until(is_audio)
            bucket.serve("alice", Clip(NEW_WAV))
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=server.http) as client:
                # Another call uses the voice: it triggers the check and is served at once.
                r = await client.post("/synthesize", json={"text": "Hi.", "voice_id": "alice"})
                assert r.status_code == 200
                for _ in range(100):
                    health = (await client.get("/health")).json()
                    if health["cache"]["revalidation"]["replaced"] == 1:
                        break
                    await asyncio.sleep(0.05)
                assert health["cache"]["revalidation"]["replaced"] == 1
            rest = await call.until(lambda m: m.get("type") in ("complete", "error"))
            assert rest[-1]["type"] == "complete", rest[-1]
            assert any(is_audio(m) for m in rest)  # audio went on after the swap
            assert not [m for m in first + rest if m.get("type") == "error"]
    assert bucket.count("alice") == 2
