"""Voices: reference clips from storage (R2 public URL, S3 API, local dir) and their caches.

``VoiceManager.get(voice_id)`` is the one entry point the rest of the service needs; the
stores, caches and decoding behind it are importable for tests and tools.
"""

from app.voices.manager import VoiceManager
from app.voices.stores import (
    LocalDirStore,
    PublicUrlStore,
    S3Store,
    VoiceStore,
    build_store,
)
from app.voices.validation import MAX_VOICE_ID_LENGTH, validate_voice_id

__all__ = [
    "MAX_VOICE_ID_LENGTH",
    "LocalDirStore",
    "PublicUrlStore",
    "S3Store",
    "VoiceManager",
    "VoiceStore",
    "build_store",
    "validate_voice_id",
]
