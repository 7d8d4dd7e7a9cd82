"""The private-bucket store: R2 (or any S3 API) through boto3, never hand-written signing.

The boto3 client is built once and is thread-safe; its blocking calls run on a small
executor owned by the store, never on the event loop. botocore's own retries are off so
that every backend follows one policy (``with_retries``: 5xx and timeouts only); a
404/``NoSuchKey`` is final. Each attempt has a total deadline besides botocore's
connect/read socket timeouts, checked between body reads. A conditional fetch passes
``IfNoneMatch`` (or ``IfModifiedSince`` when there is no ETag); S3 and R2 answer 304,
which botocore raises as a ``ClientError``, and which is "not modified" here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from app.voices.stores.base import (
    NO_VERSION,
    READ_CHUNK_BYTES,
    ClipVersion,
    Fetched,
    SizeCap,
    VersionedStore,
    not_found,
    object_key,
    transient,
    unavailable,
    with_retries,
)
from app.voices.validation import validate_voice_id

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


def r2_endpoint(account_id: str) -> str:
    """R2's S3 API endpoint for a Cloudflare account."""
    return f"https://{account_id}.r2.cloudflarestorage.com"


class S3Store(VersionedStore):
    """Clips read with ``GetObject`` from a bucket on an S3-compatible API (R2)."""

    def __init__(
        self,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: str,
        bucket: str,
        region: str = "auto",
        *,
        max_bytes: int,
        timeout: float,
        retries: int,
        backoff_s: float = 0.2,
        max_workers: int = 8,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1},  # one policy for all stores: with_retries
            max_pool_connections=max_workers,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
        )
        session = boto3.session.Session()
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=config,
        )
        self._requests = itertools.count()
        self.requests_sent = 0
        self._client.meta.events.register("before-send.s3", self._count_request)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="voice-s3")

    def _count_request(self, **_: Any) -> None:
        # itertools.count is atomic under the GIL; called from the executor's threads.
        self.requests_sent = next(self._requests) + 1

    def describe(self) -> str:
        return f"s3 {self.endpoint_url} bucket={self.bucket}"

    async def fetch_versioned(self, voice_id: str, known: ClipVersion = NO_VERSION) -> Fetched:
        key = object_key(validate_voice_id(voice_id))
        loop = asyncio.get_running_loop()
        conditions: dict[str, Any] = {}
        if known.etag is not None:
            conditions["IfNoneMatch"] = known.etag
        elif known.last_modified is not None:
            try:
                conditions["IfModifiedSince"] = parsedate_to_datetime(known.last_modified)
            except (TypeError, ValueError):
                pass  # an unparseable date: fetch unconditionally

        async def attempt() -> Fetched:
            return await loop.run_in_executor(
                self._executor, self._get_blocking, voice_id, key, conditions, known
            )

        return await with_retries(
            attempt, retries=self.retries, backoff_s=self.backoff_s, what=voice_id
        )

    def _get_blocking(
        self, voice_id: str, key: str, conditions: dict[str, Any], known: ClipVersion
    ) -> Fetched:
        deadline = time.monotonic() + self.timeout
        try:
            resp = self._client.get_object(Bucket=self.bucket, Key=key, **conditions)
        except ClientError as exc:
            if conditions and _status(exc) == 304:
                return Fetched(None, known)
            raise self._client_error(voice_id, exc) from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise transient(voice_id, f"timed out after {self.timeout:g} s") from None
        except BotoCoreError as exc:
            raise unavailable(voice_id, f"{type(exc).__name__}: {exc}") from None
        body = resp["Body"]
        try:
            cap = SizeCap(voice_id, self.max_bytes)
            cap.check_declared(resp.get("ContentLength"))
            while chunk := body.read(READ_CHUNK_BYTES):
                cap.add(chunk)
                if time.monotonic() > deadline:
                    raise transient(voice_id, f"timed out after {self.timeout:g} s")
            return Fetched(cap.result(), _version_of(resp))
        except ReadTimeoutError:
            raise transient(voice_id, f"timed out after {self.timeout:g} s") from None
        except BotoCoreError as exc:
            # IncompleteReadError (body cut short), ResponseStreamingError, ...
            raise unavailable(voice_id, f"{type(exc).__name__}: {exc}") from None
        finally:
            body.close()

    def _client_error(self, voice_id: str, exc: ClientError) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = _status(exc)
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
            return not_found(voice_id)
        if status >= 500:
            return transient(voice_id, f"HTTP {status} {code}".strip())
        # NoSuchBucket, AccessDenied, InvalidAccessKeyId, ...: configuration, not the voice.
        return unavailable(voice_id, f"HTTP {status} {code}".strip())

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _version_of(resp: dict[str, Any]) -> ClipVersion:
    etag = resp.get("ETag")
    modified = resp.get("LastModified")
    return ClipVersion(
        etag if isinstance(etag, str) else None,
        format_datetime(modified.astimezone(UTC), usegmt=True)
        if isinstance(modified, datetime) and modified.tzinfo is not None
        else None,
    )
