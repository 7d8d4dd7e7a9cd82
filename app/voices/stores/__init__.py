"""Voice storage backends behind one small interface, and the choice among them.

``build_store`` picks, from the settings: the S3 API when R2 credentials are set, else
the public bucket URL, else a local directory, else no store at all (every voice but
``default`` is then ``VoiceNotFound``).
"""

from __future__ import annotations

import httpx

from app.config import Settings
from app.voices.stores.base import TransientStorageError, VoiceStore, object_key
from app.voices.stores.local import LocalDirStore
from app.voices.stores.public_url import PublicUrlStore
from app.voices.stores.s3 import S3Store, r2_endpoint

__all__ = [
    "LocalDirStore",
    "PublicUrlStore",
    "S3Store",
    "TransientStorageError",
    "VoiceStore",
    "build_store",
    "object_key",
    "r2_endpoint",
]


def build_store(
    settings: Settings, http_client: httpx.AsyncClient | None = None
) -> VoiceStore | None:
    """The store the settings describe, or ``None`` when none is configured.

    A partial S3 configuration (a key without a secret, no bucket, no endpoint or account)
    is a ``ValueError`` at start-up rather than a silent fallback to another store.
    """
    max_bytes = settings.voice_max_bytes
    timeout = settings.voice_fetch_timeout_s
    retries = settings.voice_fetch_retries
    if settings.r2_access_key_id or settings.r2_secret_access_key:
        endpoint = settings.r2_endpoint_url or (
            r2_endpoint(settings.r2_account_id) if settings.r2_account_id else None
        )
        missing = [
            name
            for name, value in (
                ("R2_ACCESS_KEY_ID", settings.r2_access_key_id),
                ("R2_SECRET_ACCESS_KEY", settings.r2_secret_access_key),
                ("R2_BUCKET", settings.r2_bucket),
                ("R2_ENDPOINT_URL or R2_ACCOUNT_ID", endpoint),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"incomplete R2 S3 API settings, missing: {', '.join(missing)}")
        assert endpoint and settings.r2_bucket
        assert settings.r2_access_key_id and settings.r2_secret_access_key
        return S3Store(
            endpoint,
            settings.r2_access_key_id,
            settings.r2_secret_access_key,
            settings.r2_bucket,
            max_bytes=max_bytes,
            timeout=timeout,
            retries=retries,
        )
    if settings.cloudflare_r2_public_url:
        return PublicUrlStore(
            settings.cloudflare_r2_public_url,
            http_client,
            max_bytes=max_bytes,
            timeout=timeout,
            retries=retries,
        )
    if settings.voices_dir is not None:
        return LocalDirStore(settings.voices_dir, max_bytes=settings.voice_max_bytes)
    return None
