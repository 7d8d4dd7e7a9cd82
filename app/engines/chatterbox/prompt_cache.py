"""Keys and values of each voice's conditioning prefix, computed once and reused by joiners.

A stream's prefill is the conditioning prefix (speaker embedding, the voice's prompt speech
tokens, and for standard / multilingual the emotion value), then its text and the start of
speech. The prefix comes first and attention is causal, so its keys and values depend on
the prefix alone: the same for every reply in the same voice (and exaggeration). A joiner
whose prefix is cached prefills only its text and start token on top of a copy of them
(at full size on a CPU the prefix is most of a Turbo prefill: 376 of its ~400 positions).

The key is a digest of what the prefix's embeddings are made of (the speaker embedding,
the prompt tokens or their embedding, the emotion value where the model reads it), with
the backbone's dtype and device. It is derived from the content, never from an object's
identity or a voice id, so a voice replaced by a new clip under the same id cannot reuse
the old clip's entry, and two handles of one clip share one entry.

Bounded in bytes, least recently used first out (``CHATTERBOX_PROMPT_CACHE_MB``; 0 = off).
Used from the scheduler's prefill thread; ``stats`` is read from others, so a lock guards
the table.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicCache


@dataclass(frozen=True)
class _Prefix:
    """One voice's prefix: each layer's (keys, values), one row, ``(1, heads, length, dim)``."""

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    nbytes: int


class PromptCache:
    """A bounded LRU of conditioning-prefix keys/values (see the module docstring)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(int(max_bytes), 0)
        self._entries: collections.OrderedDict[str, _Prefix] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.warmed = 0  # prefixes computed ahead of a voice's first reply (``warm``)

    @classmethod
    def from_megabytes(cls, mb: int) -> PromptCache:
        return cls(mb * 1024 * 1024)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes,
                    "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses,
                    "evictions": self.evictions, "warmed": self.warmed}

    def past(self, t3: Any, t3_cond: Any, embeds: torch.Tensor, len_cond: int) -> DynamicCache:
        """A fresh cache holding the prefix (``embeds[:, :len_cond]``) for every row of
        ``embeds``, computed by the backbone on a miss. The rows' prefixes must be equal
        (a guidance row shares its stream's conditioning: ``T3.prepare_input_embeds``)."""
        entry = self._entry(t3, t3_cond, embeds, len_cond, count=True)
        rows = embeds.shape[0]
        # DynamicCache copies what it is given (its layers concatenate onto an empty
        # tensor), so the stream's own forward never writes into the shared entry.
        return DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1),
                                             v.expand(rows, -1, -1, -1))
                                            for k, v in entry.layers])

    def warm(self, t3: Any, t3_cond: Any, embeds: torch.Tensor, len_cond: int) -> None:
        """Compute and keep the prefix ahead of the voice's first reply (counted as
        ``warmed``, neither a hit nor a miss)."""
        self._entry(t3, t3_cond, embeds, len_cond, count=False)

    def _entry(self, t3: Any, t3_cond: Any, embeds: torch.Tensor, len_cond: int, *,
               count: bool) -> _Prefix:
        key = prefix_key(t3, t3_cond, embeds.dtype)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            if count:
                self.hits += entry is not None
                self.misses += entry is None
            elif entry is None:
                self.warmed += 1
        if entry is None:
            out = t3.tfmr(inputs_embeds=embeds[:1, :len_cond], use_cache=True)
            entry = _store(out.past_key_values)
            self._put(key, entry)
        return entry

    def _put(self, key: str, entry: _Prefix) -> None:
        if entry.nbytes > self.max_bytes:
            return  # larger than the whole bound: used once, never kept
        with self._lock:
            if key in self._entries:
                return
            while self._bytes + entry.nbytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.nbytes
                self.evictions += 1
            self._entries[key] = entry
            self._bytes += entry.nbytes


def _store(past: Any) -> _Prefix:
    layers = tuple((layer.keys.clone(), layer.values.clone()) for layer in past.layers)
    nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size()
                 for k, v in layers)
    return _Prefix(layers, nbytes)


def prefix_key(t3: Any, t3_cond: Any, dtype: torch.dtype) -> str:
    """A digest of everything that changes the prefix's embeddings (module docstring)."""
    digest = hashlib.sha256()
    digest.update(f"{dtype}|{t3.device}|".encode())
    parts: list[tuple[str, Any]] = [("speaker", t3_cond.speaker_emb)]
    if t3_cond.cond_prompt_speech_tokens is not None:
        parts.append(("prompt", t3_cond.cond_prompt_speech_tokens))
    else:  # an embedded prompt without its tokens (or none at all)
        parts.append(("prompt_emb", t3_cond.cond_prompt_speech_emb))
    if t3.hp.emotion_adv:
        parts.append(("emotion", t3_cond.emotion_adv))
    parts.append(("clap", t3_cond.clap_emb))  # the library refuses one; keyed all the same
    for name, value in parts:
        digest.update(name.encode())
        if value is None:
            digest.update(b"none")
            continue
        tensor = torch.as_tensor(value).detach()
        if tensor.is_floating_point():
            tensor = tensor.float()  # exact for float16 / bfloat16
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
