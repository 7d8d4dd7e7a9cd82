"""What a replica knows about the freshness of a cached clip, and the revalidation counters.

Every replica caches clips on its own, so a clip replaced in the bucket reaches a replica
only when that replica asks the store again. ``Freshness`` records, per voice, the store's
version of the cached clip (ETag / Last-Modified), the clip's SHA-256 (so a store that
ignores conditional requests and resends the same bytes does not cause a new
preparation) and when the store last confirmed it. The manager asks again, conditionally,
once ``VOICE_REVALIDATE_SECONDS`` have passed and the voice is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from app.voices.stores.base import NO_VERSION, ClipVersion


async def digest(data: bytes) -> str:
    """SHA-256 of a clip, on a worker thread (hashlib releases the GIL on large inputs)."""
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class Freshness:
    version: ClipVersion
    digest: str
    checked_at: float  # the manager's clock when the store last confirmed this content

    def checked(self, now: float, version: ClipVersion | None = None) -> Freshness:
        """The same content, confirmed at ``now`` (with the store's newer validators)."""
        if version is None or not version.known:
            version = self.version
        return Freshness(version, self.digest, now)

    def to_meta(self, now: float) -> dict[str, Any]:
        """The disk sidecar: wall-clock time, because the manager's clock restarts."""
        age = max(0.0, now - self.checked_at)
        return {**self.version.to_dict(), "sha256": self.digest, "checked": time.time() - age}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], data_digest: str, now: float) -> Freshness:
        """From a disk sidecar; a sidecar for other bytes (or none) means "check now"."""
        checked = meta.get("checked")
        if meta.get("sha256") != data_digest or not isinstance(checked, int | float):
            return cls(NO_VERSION, data_digest, float("-inf"))
        age = max(0.0, time.time() - float(checked))
        return cls(ClipVersion.from_dict(meta), data_digest, now - age)
