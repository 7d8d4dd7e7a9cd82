"""The voice store contract and what every backend shares: object keys, errors, retries.

A store answers one question: the bytes of ``voices/{voice_id}/sample.wav``. It knows
nothing about caches or audio. Its failures are the service's typed errors:

- ``VoiceNotFound``: the object does not exist (HTTP 404/410, S3 ``NoSuchKey``, no file).
- ``VoiceInvalid``: the object is larger than the size cap (a distinct message, code
  ``voice_invalid``), found from ``Content-Length`` or while streaming.
- ``StorageUnavailable``: the store cannot answer: 5xx or timeouts after the retries,
  connection refused, a body cut short, credentials or bucket refused.

Only 5xx answers and timeouts are retried (``TransientStorageError``); a 4xx never is.

Every fetch also says which version of the object it got (``ClipVersion``: the ETag and
Last-Modified the store sent), and a fetch can be conditional on a version already held:
the store then answers "not modified" (``Fetched.data is None``) without sending the body.
That is how a replica revalidates a cached clip cheaply (``VOICE_REVALIDATE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from app.errors import StorageUnavailable, VoiceInvalid, VoiceNotFound

logger = logging.getLogger(__name__)

# Bytes read per step while streaming a download.
READ_CHUNK_BYTES = 64 * 1024


def object_key(voice_id: str) -> str:
    """The object key (and relative path) of a voice's reference clip."""
    return f"voices/{voice_id}/sample.wav"


class TransientStorageError(StorageUnavailable):
    """A failure worth another attempt (5xx, timeout); still a 503 once retries run out."""


def not_found(voice_id: str) -> VoiceNotFound:
    return VoiceNotFound(f"Voice not found: {voice_id}")


def too_large(voice_id: str, max_bytes: int) -> VoiceInvalid:
    return VoiceInvalid(f"Voice clip too large: {voice_id} is over the {max_bytes}-byte limit")


def unavailable(voice_id: str, reason: str) -> StorageUnavailable:
    return StorageUnavailable(f"Voice storage unavailable for {voice_id}: {reason}")


def transient(voice_id: str, reason: str) -> TransientStorageError:
    return TransientStorageError(f"Voice storage unavailable for {voice_id}: {reason}")


class SizeCap:
    """Accumulates a streamed body and raises ``too_large`` the moment it passes the cap."""

    def __init__(self, voice_id: str, max_bytes: int) -> None:
        self.voice_id = voice_id
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0

    def check_declared(self, length: int | str | None) -> None:
        """Reject early when the declared length (Content-Length) is already over the cap."""
        if length is None:
            return
        try:
            declared = int(length)
        except (TypeError, ValueError):
            return
        if declared > self.max_bytes:
            raise too_large(self.voice_id, self.max_bytes)

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self.max_bytes:
            raise too_large(self.voice_id, self.max_bytes)
        self._parts.append(chunk)

    def result(self) -> bytes:
        return b"".join(self._parts)


T = TypeVar("T")


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff_s: float,
    what: str,
) -> T:
    """Run ``attempt`` up to ``retries + 1`` times, retrying only ``TransientStorageError``.

    Backoff doubles from ``backoff_s``. The last transient error is raised as is (it is a
    ``StorageUnavailable``) with the attempt count added to its message.
    """
    attempts = retries + 1
    for n in range(1, attempts + 1):
        try:
            return await attempt()
        except TransientStorageError as exc:
            if n == attempts:
                if attempts > 1:
                    exc.message = f"{exc.message} (after {attempts} attempts)"
                    exc.args = (exc.message,)
                raise
            logger.warning("voice fetch %s failed (%s), retry %d of %d", what, exc, n, retries)
            await asyncio.sleep(backoff_s * (2 ** (n - 1)))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ClipVersion:
    """What identifies one content of a stored clip: the validators the store sent.

    ``etag`` is sent back as ``If-None-Match``; ``last_modified`` (an HTTP date) as
    ``If-Modified-Since`` only when there is no ETag, because Last-Modified has a
    one-second resolution and a clip replaced within that second would be missed.
    """

    etag: str | None = None
    last_modified: str | None = None

    @property
    def known(self) -> bool:
        return self.etag is not None or self.last_modified is not None

    def to_dict(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified}

    @classmethod
    def from_dict(cls, raw: object) -> ClipVersion:
        if not isinstance(raw, dict):
            return cls()
        etag, modified = raw.get("etag"), raw.get("last_modified")
        return cls(
            etag if isinstance(etag, str) else None,
            modified if isinstance(modified, str) else None,
        )


NO_VERSION = ClipVersion()


@dataclass(frozen=True)
class Fetched:
    """A store's answer: the bytes and their version, or ``data=None`` for not modified."""

    data: bytes | None
    version: ClipVersion


@runtime_checkable
class VoiceStore(Protocol):
    """Where reference clips live. Implementations: public URL, S3 API, local directory."""

    async def fetch(self, voice_id: str) -> bytes:
        """The clip's bytes; raises ``VoiceNotFound``, ``StorageUnavailable`` or
        ``VoiceInvalid`` (over the size cap). ``voice_id`` must already be validated."""
        ...

    async def fetch_versioned(
        self, voice_id: str, known: ClipVersion = NO_VERSION
    ) -> Fetched:
        """Like ``fetch``, with the version; when ``known`` still matches the stored
        object the answer is ``Fetched(None, version)`` and no body is transferred."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads the store owns."""
        ...

    def describe(self) -> str:
        """A short, credential-free description for logs and stats."""
        ...


class VersionedStore:
    """``fetch`` for a store that implements ``fetch_versioned`` (an unconditional fetch)."""

    async def fetch_versioned(
        self, voice_id: str, known: ClipVersion = NO_VERSION
    ) -> Fetched:
        raise NotImplementedError

    async def fetch(self, voice_id: str) -> bytes:
        fetched = await self.fetch_versioned(voice_id)
        if fetched.data is None:  # only a conditional fetch may answer "not modified"
            raise unavailable(voice_id, "store answered not modified to a plain fetch")
        return fetched.data
