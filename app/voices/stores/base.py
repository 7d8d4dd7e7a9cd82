"""The voice store contract and what every backend shares: object keys, errors, retries.

A store answers one question: the bytes of ``voices/{voice_id}/sample.wav``. It knows
nothing about caches or audio. Its failures are the service's typed errors:

- ``VoiceNotFound``: the object does not exist (HTTP 404/410, S3 ``NoSuchKey``, no file).
- ``VoiceInvalid``: the object is larger than the size cap (a distinct message, code
  ``voice_invalid``), found from ``Content-Length`` or while streaming.
- ``StorageUnavailable``: the store cannot answer: 5xx or timeouts after the retries,
  connection refused, a body cut short, credentials or bucket refused.

Only 5xx answers and timeouts are retried (``TransientStorageError``); a 4xx never is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

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


async def with_retries(
    attempt: Callable[[], Awaitable[bytes]],
    *,
    retries: int,
    backoff_s: float,
    what: str,
) -> bytes:
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


@runtime_checkable
class VoiceStore(Protocol):
    """Where reference clips live. Implementations: public URL, S3 API, local directory."""

    async def fetch(self, voice_id: str) -> bytes:
        """The clip's bytes; raises ``VoiceNotFound``, ``StorageUnavailable`` or
        ``VoiceInvalid`` (over the size cap). ``voice_id`` must already be validated."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads the store owns."""
        ...

    def describe(self) -> str:
        """A short, credential-free description for logs and stats."""
        ...
