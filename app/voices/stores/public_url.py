"""The public-bucket store: a plain HTTPS GET of ``{base_url}/voices/{voice_id}/sample.wav``.

One shared ``httpx.AsyncClient`` (connection reuse across fetches; the app may pass its own).
Each attempt has a total deadline (``asyncio.timeout``) on top of httpx's per-operation
timeouts, so a server that drips bytes cannot hold a fetch open forever. The size cap is
checked against ``Content-Length`` first and again while the body streams. A conditional
fetch sends ``If-None-Match`` (or ``If-Modified-Since`` when the bucket sent no ETag); a 304
means the cached clip is still current.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

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

_NOT_FOUND_STATUSES = frozenset({404, 410})


class PublicUrlStore(VersionedStore):
    """Clips read over HTTP(S) from a public bucket URL (``CLOUDFLARE_R2_PUBLIC_URL``)."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient | None = None,
        *,
        max_bytes: int,
        timeout: float,
        retries: int,
        backoff_s: float = 0.2,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"voice store URL must be http(s)://host[/prefix], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s

    def url_for(self, voice_id: str) -> str:
        return f"{self.base_url}/{object_key(validate_voice_id(voice_id))}"

    def describe(self) -> str:
        return f"public-url {self.base_url}"

    async def fetch_versioned(self, voice_id: str, known: ClipVersion = NO_VERSION) -> Fetched:
        url = self.url_for(voice_id)
        headers: dict[str, str] = {}
        if known.etag is not None:
            headers["If-None-Match"] = known.etag
        elif known.last_modified is not None:
            headers["If-Modified-Since"] = known.last_modified
        return await with_retries(
            lambda: self._attempt(voice_id, url, headers, known),
            retries=self.retries,
            backoff_s=self.backoff_s,
            what=voice_id,
        )

    async def _attempt(
        self, voice_id: str, url: str, headers: dict[str, str], known: ClipVersion
    ) -> Fetched:
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream(
                    "GET", url, headers=headers, timeout=self.timeout
                ) as resp:
                    version = ClipVersion(
                        resp.headers.get("etag"), resp.headers.get("last-modified")
                    )
                    if resp.status_code == 304 and headers:
                        # A 304 may repeat the validators or leave them out.
                        return Fetched(None, version if version.known else known)
                    return Fetched(await self._read(voice_id, resp), version)
        except (TimeoutError, httpx.TimeoutException):
            raise transient(voice_id, f"timed out after {self.timeout:g} s") from None
        except httpx.RemoteProtocolError as exc:
            # h11 raises this for a body shorter than its Content-Length, among others.
            raise unavailable(voice_id, f"connection broken ({exc})") from None
        except httpx.TransportError as exc:
            raise unavailable(voice_id, f"{type(exc).__name__}: {exc}") from None

    async def _read(self, voice_id: str, resp: httpx.Response) -> bytes:
        status = resp.status_code
        if status in _NOT_FOUND_STATUSES:
            raise not_found(voice_id)
        if status >= 500:
            raise transient(voice_id, f"HTTP {status}")
        if status != 200:
            raise unavailable(voice_id, f"HTTP {status}")
        cap = SizeCap(voice_id, self.max_bytes)
        cap.check_declared(resp.headers.get("content-length"))
        # aiter_bytes yields decoded bytes, so a compressed body is capped after inflation.
        async for chunk in resp.aiter_bytes(READ_CHUNK_BYTES):
            cap.add(chunk)
        return cap.result()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
