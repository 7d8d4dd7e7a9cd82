"""Voice stores other than the public URL, the store choice, clip decoding and id checks.

The S3 API store runs against a real moto S3 server on loopback (requests counted at the
server, faults injected in front of it); the local store against a temporary directory.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings
from app.errors import InvalidVoiceId, StorageUnavailable, VoiceInvalid, VoiceNotFound
from app.voices import LocalDirStore, PublicUrlStore, S3Store, VoiceManager, build_store
from app.voices.decode import decode_clip
from app.voices.validation import validate_voice_id
from tests.fake_engine_voices import FakeVoiceEngine
from tests.voice_servers import CountingMotoServer, make_clip

BUCKET = "voices-test"
WAV = make_clip(6.0)
TIMEOUT_S = 0.5


def key_path(voice_id: str, bucket: str = BUCKET) -> str:
    return f"/{bucket}/voices/{voice_id}/sample.wav"


@pytest.fixture(scope="module")
def moto() -> Iterator[CountingMotoServer]:
    server = CountingMotoServer()
    server.start()
    admin = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    admin.create_bucket(Bucket=BUCKET)
    for vid, body in {
        "alice": WAV,
        "big": b"\0" * 300_000,
        "html": b"<!doctype html><title>R2</title>",
        "flaky": WAV,
        "down": WAV,
        "slow": WAV,
    }.items():
        admin.put_object(Bucket=BUCKET, Key=f"voices/{vid}/sample.wav", Body=body)
    admin.close()
    yield server
    server.stop()


def s3_store(moto: CountingMotoServer, *, bucket: str = BUCKET, **kw: Any) -> S3Store:
    options: dict[str, Any] = {"max_bytes": 200_000, "timeout": TIMEOUT_S, "retries": 1}
    options.update(kw)
    return S3Store(moto.endpoint, "test", "test", bucket, backoff_s=0.01, **options)


@pytest.fixture
async def store(moto: CountingMotoServer) -> AsyncIterator[S3Store]:
    s = s3_store(moto)
    yield s
    await s.aclose()


def settings(tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "voice_cache_dir": tmp_path / "cache",
        "voices_dir": None,
        "cloudflare_r2_public_url": None,
        "r2_endpoint_url": None,
        "r2_account_id": None,
        "r2_access_key_id": None,
        "r2_secret_access_key": None,
        "r2_bucket": None,
    }
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# --- S3 API ------------------------------------------------------------------------------


async def test_s3_fetch_then_cached_by_manager(
    moto: CountingMotoServer, store: S3Store, tmp_path: Path
) -> None:
    assert await store.fetch("alice") == WAV
    before = moto.gets(key_path("alice"))
    engine = FakeVoiceEngine()
    manager = VoiceManager(settings(tmp_path), engine, store)
    await manager.get("alice")
    await manager.get("alice")
    assert moto.gets(key_path("alice")) == before + 1
    assert engine.prepared == ["alice"] and store.requests_sent == 2


async def test_s3_missing_key_is_not_found_without_retry(
    moto: CountingMotoServer, store: S3Store
) -> None:
    with pytest.raises(VoiceNotFound, match="Voice not found: nobody"):
        await store.fetch("nobody")
    assert moto.gets(key_path("nobody")) == 1


async def test_s3_missing_bucket_is_storage_unavailable(moto: CountingMotoServer) -> None:
    store = s3_store(moto, bucket="no-such-bucket")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        await store.fetch("alice")
    await store.aclose()


async def test_s3_one_500_is_retried(moto: CountingMotoServer, store: S3Store) -> None:
    moto.inject(key_path("flaky"), ["500"])
    assert await store.fetch("flaky") == WAV
    assert moto.gets(key_path("flaky")) == 2


async def test_s3_500s_past_retries_are_storage_unavailable(
    moto: CountingMotoServer, store: S3Store
) -> None:
    moto.inject(key_path("down"), ["500", "500", "500"])
    with pytest.raises(StorageUnavailable, match="HTTP 500"):
        await store.fetch("down")
    assert moto.gets(key_path("down")) == 2
    moto.inject(key_path("down"), [])


async def test_s3_timeout_is_storage_unavailable(moto: CountingMotoServer) -> None:
    store = s3_store(moto, retries=0)
    moto.inject(key_path("slow"), ["hang"])
    with pytest.raises(StorageUnavailable, match="timed out"):
        await store.fetch("slow")
    await store.aclose()


async def test_s3_body_cut_short_is_storage_unavailable(moto: CountingMotoServer) -> None:
    store = s3_store(moto, retries=0)
    moto.inject(key_path("alice"), ["cut"])
    with pytest.raises(StorageUnavailable):
        await store.fetch("alice")
    assert await store.fetch("alice") == WAV
    await store.aclose()


async def test_s3_oversized_and_not_audio(moto: CountingMotoServer, tmp_path: Path) -> None:
    store = s3_store(moto)
    manager = VoiceManager(settings(tmp_path), FakeVoiceEngine(), store)
    with pytest.raises(VoiceInvalid, match="too large"):
        await manager.get("big")
    with pytest.raises(VoiceInvalid, match="not valid audio"):
        await manager.get("html")
    assert moto.gets(key_path("big")) == 1 and moto.gets(key_path("html")) == 1
    await manager.aclose()


async def test_s3_refused_connection_is_storage_unavailable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3Store(
        f"http://127.0.0.1:{port}", "k", "s", BUCKET, max_bytes=1000, timeout=0.5, retries=0
    )
    with pytest.raises(StorageUnavailable):
        await store.fetch("alice")
    await store.aclose()


# --- local directory ---------------------------------------------------------------------


async def test_local_dir_store(tmp_path: Path) -> None:
    root = tmp_path / "voices"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "sample.wav").write_bytes(WAV)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "sample.wav").write_bytes(WAV)
    (root / "escape").symlink_to(outside)
    (root / "big").mkdir()
    (root / "big" / "sample.wav").write_bytes(b"\0" * 5000)
    store = LocalDirStore(root, max_bytes=len(WAV))
    assert await store.fetch("alice") == WAV
    with pytest.raises(VoiceNotFound):
        await store.fetch("nobody")
    with pytest.raises(VoiceNotFound):
        await store.fetch("escape")  # resolves outside the root
    small = LocalDirStore(root, max_bytes=4096)
    with pytest.raises(VoiceInvalid, match="too large"):
        await small.fetch("big")
    with pytest.raises(InvalidVoiceId):
        await store.fetch("../secret")


# --- choosing a store --------------------------------------------------------------------


async def test_build_store_picks_by_settings(tmp_path: Path) -> None:
    assert build_store(settings(tmp_path)) is None
    local = build_store(settings(tmp_path, voices_dir=tmp_path))
    assert isinstance(local, LocalDirStore)
    public = build_store(
        settings(tmp_path, voices_dir=tmp_path, cloudflare_r2_public_url="https://pub.r2.dev/")
    )
    assert isinstance(public, PublicUrlStore)
    assert public.url_for("a") == "https://pub.r2.dev/voices/a/sample.wav"
    await public.aclose()
    creds = {"r2_access_key_id": "k", "r2_secret_access_key": "s", "r2_bucket": "b"}
    s3 = build_store(
        settings(tmp_path, cloudflare_r2_public_url="https://x", r2_account_id="acct", **creds)
    )
    assert isinstance(s3, S3Store)
    assert s3.endpoint_url == "https://acct.r2.cloudflarestorage.com"
    assert "s" not in s3.describe().split()  # no secret in descriptions
    await s3.aclose()
    with pytest.raises(ValueError, match="R2_BUCKET"):
        build_store(settings(tmp_path, r2_access_key_id="k", r2_secret_access_key="s"))


# --- decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [("WAV", "PCM_16", 16_000, 1), ("WAV", "FLOAT", 48_000, 2), ("FLAC", None, 44_100, 2),
     ("OGG", "VORBIS", 22_050, 1), ("MP3", "MPEG_LAYER_III", 22_050, 1)],
)  # fmt: skip
def test_decode_mixes_to_mono_at_engine_rate(
    fmt: str, subtype: str | None, rate: int, channels: int
) -> None:
    data = make_clip(6.0, rate, channels=channels, fmt=fmt, subtype=subtype)
    clip = decode_clip("v", data, 24_000, 5.0, 60.0)
    assert clip.sample_rate == 24_000 and clip.samples.ndim == 1
    assert clip.samples.dtype == np.float32 and abs(clip.duration_s - 6.0) < 0.06
    assert 0.2 < float(np.max(np.abs(clip.samples))) <= 1.0


def test_decode_bounds_are_inclusive() -> None:
    assert decode_clip("v", make_clip(5.0), 16_000, 5.0, 60.0).duration_s == 5.0
    with pytest.raises(VoiceInvalid, match="too short"):
        decode_clip("v", make_clip(4.9), 16_000, 5.0, 60.0)
    with pytest.raises(VoiceInvalid, match="too long"):
        decode_clip("v", make_clip(8.0), 16_000, 5.0, 7.5)


def test_decode_truncated_wav_is_checked_on_real_length() -> None:
    data = make_clip(8.0)
    clip = decode_clip("v", data[: len(data) // 2], 16_000, 3.0, 60.0)
    assert abs(clip.duration_s - 4.0) < 0.01
    with pytest.raises(VoiceInvalid, match="too short"):
        decode_clip("v", data[: len(data) // 2], 16_000, 5.0, 60.0)


# --- ids ---------------------------------------------------------------------------------

_ID = re.compile(r"[a-zA-Z0-9_-]{1,128}")


@given(st.one_of(st.text(max_size=200), st.from_regex(_ID, fullmatch=True)))
def test_validate_voice_id_accepts_exactly_the_pattern(value: str) -> None:
    if _ID.fullmatch(value):
        assert validate_voice_id(value) == value
    else:
        with pytest.raises(InvalidVoiceId) as info:
            validate_voice_id(value)
        assert info.value.message.isprintable() and len(info.value.message) < 200
