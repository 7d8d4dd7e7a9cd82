"""How many bytes a prepared voice holds, for the byte bound of the prepared-voice cache.

Engines need not know about the cache: the size comes from the arrays and tensors inside
the handle (``MAX_CACHED_VOICE_BYTES`` bounds their sum).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from app.engines.base import VoiceHandle


def handle_nbytes(handle: VoiceHandle) -> int:
    """Bytes a prepared voice holds: what the engine reports, else the sum over the arrays
    and tensors found inside ``handle.data``.

    An engine reports by giving its handle, or the handle's ``data``, an integer
    ``nbytes``. Otherwise the walk looks inside dataclasses, mappings, sequences and plain
    objects a few levels deep, counting each ``nbytes``-bearing value once (numpy arrays
    and torch tensors have one), so Chatterbox's ``Conditionals`` bundle is measured
    without the engine knowing about the cache.
    """
    reported = _nbytes_of(handle)
    if reported is not None:
        return reported
    seen: set[int] = set()
    return _walk_nbytes(handle.data, seen, depth=4)


def _nbytes_of(obj: object) -> int | None:
    n = getattr(obj, "nbytes", None)
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n
    return None


def _walk_nbytes(obj: object, seen: set[int], depth: int) -> int:
    if obj is None or id(obj) in seen or isinstance(obj, str | bytes | int | float):
        return 0
    seen.add(id(obj))
    n = _nbytes_of(obj)
    if n is not None:
        return n
    if depth == 0:
        return 0
    if isinstance(obj, dict):
        children: Iterable[object] = obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        children = obj
    elif dataclasses.is_dataclass(obj):
        children = (getattr(obj, f.name, None) for f in dataclasses.fields(obj))
    else:
        children = getattr(obj, "__dict__", {}).values()
    return sum(_walk_nbytes(child, seen, depth - 1) for child in children)
