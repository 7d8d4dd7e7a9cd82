"""The step scheduler's conditioning-prefix cache (``prompt_cache``) on tiny checkpoints (CPU).

Properties: a reply whose voice prefix is cached prefills only its text and start token,
and its first-token logits agree with the full prefill's to 1e-4 (the largest difference
is printed) while every token of the stream is the same, greedy and seeded sampling, Turbo
and standard with guidance; a second reply in the same voice hits, a different voice or a
different exaggeration misses, and the engine's ``stats()`` (``/health``) shows the
counts; the byte bound evicts the least recently used entry and is never exceeded; 0 turns
the cache off; a voice replaced by a new clip under the same id never reuses the old entry;
a voice being prepared (a preload, or its first use) has its prefix computed ahead, so its
first reply is a hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engines.base import SynthesisParams, VoiceClip
from app.presets import PRESETS
from tests.chatterbox_fixtures import (  # noqa: F401  (fixtures)
    make_engine,
    standard_engine,
    tiny_standard_dir,
    tiny_turbo_dir,
    turbo_engine,
)

TEXTS = ["Hello there, how are you doing today?", "Please hold while I check that."]
pytestmark = pytest.mark.chatterbox


def _engine(request: pytest.FixtureRequest, family: str) -> Any:
    # Streams are submitted to the scheduler one at a time, so the shared module-scoped
    # engines (chatterbox_fixtures) serve every test here.
    return request.getfixturevalue(f"{family}_engine")


def _voice(engine: Any, seed: int | None = None, voice_id: str = "caller") -> Any:
    from app.engines.chatterbox.tiny import reference_clip

    if seed is None:
        return asyncio.run(engine.prepare_voice(None))
    clip = VoiceClip(voice_id, reference_clip(5.5, seed=seed), 24000)
    voice = asyncio.run(engine.prepare_voice(clip))
    assert engine._scheduler.wait_warm(120)  # its prefix went into the cache of then
    return voice


def _run(engine: Any, voice: Any, text: str, seed: int, exaggeration: float | None = None,
         **options: Any) -> Any:
    from app.engines.chatterbox import runtime

    preset = "adaptive" if engine.family == "turbo" else "realtime"
    plan = runtime.Plan.build(engine.family, SynthesisParams(preset=PRESETS[preset], seed=seed))
    if exaggeration is not None:
        plan = dataclasses.replace(plan, exaggeration=exaggeration)
    req = runtime.token_request(engine._model, engine.family, text, "en",
                                runtime.request_cond(voice.data, plan), plan)
    stream = engine._scheduler.submit(dataclasses.replace(req, **options))
    stream.wait_for(1 << 30)
    assert stream.error is None
    return stream


@contextlib.contextmanager
def _cache(engine: Any, max_bytes: int) -> Iterator[Any]:
    """A fresh prompt cache of ``max_bytes`` on the engine's scheduler (between streams)."""
    from app.engines.chatterbox.prompt_cache import PromptCache

    sched = engine._scheduler
    saved, sched.prompt_cache = sched.prompt_cache, PromptCache(max_bytes)
    try:
        yield sched.prompt_cache
    finally:
        sched.prompt_cache = saved


@contextlib.contextmanager
def _prefill_lengths(engine: Any) -> Iterator[list[int]]:
    """The positions of every forward the prefill thread runs."""
    lengths: list[int] = []

    def hook(module: object, args: object, kwargs: dict) -> None:
        if threading.current_thread().name == "chatterbox-prefill":
            lengths.append(int(kwargs["inputs_embeds"].shape[1]))

    handle = engine._model.t3.tfmr.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield lengths
    finally:
        handle.remove()


@pytest.mark.parametrize("family", ["turbo", "standard"])
@pytest.mark.parametrize("greedy", [False, True], ids=["sampled", "greedy"])
def test_a_cached_prefix_gives_the_full_prefills_logits_and_tokens(request, family,
                                                                   greedy) -> None:
    engine = _engine(request, family)
    voice = _voice(engine)
    with _cache(engine, 0), _prefill_lengths(engine) as full:
        reference = _run(engine, voice, TEXTS[0], 11, greedy=greedy, record_logits=True)
    with _cache(engine, 1 << 30) as cache, _prefill_lengths(engine) as cached:
        first = _run(engine, voice, TEXTS[0], 11, greedy=greedy, record_logits=True)
        again = _run(engine, voice, TEXTS[0], 11, greedy=greedy, record_logits=True)
        assert (cache.misses, cache.hits) == (1, 1)
    # Uncached: one forward over the whole prefill. Cached: the prefix once (the miss),
    # then each reply's text and start token on top of it.
    assert len(full) == 1
    assert len(cached) == 3 and cached[0] + cached[1] == full[0] and cached[2] == cached[1]
    first_token = worst = 0.0
    for stream in (first, again):
        assert stream.tokens == reference.tokens and len(reference.tokens) > 10
        assert len(stream.logits) == len(reference.logits)
        for i, (a, b) in enumerate(zip(reference.logits, stream.logits, strict=True)):
            finite = a.isfinite()
            diff = float((a[finite] - b[finite]).abs().max())
            worst = max(worst, diff)
            if i == 0:
                first_token = max(first_token, diff)
    print(f"{family} {'greedy' if greedy else 'sampled'}: cached prefix vs full prefill, "
          f"largest logit difference at the first token {first_token:.2e}, any step {worst:.2e}")
    assert first_token <= 1e-4 and worst <= 1e-4


def test_a_second_reply_in_the_same_voice_hits_and_health_shows_it(
        standard_engine) -> None:  # noqa: F811
    engine = standard_engine
    default, other = _voice(engine), _voice(engine, seed=3)
    with _cache(engine, 1 << 30) as cache:
        _run(engine, default, TEXTS[0], 1, exaggeration=0.5)
        _run(engine, default, TEXTS[1], 2, exaggeration=0.5)  # other text, same prefix
        assert (cache.misses, cache.hits) == (1, 1)
        _run(engine, default, TEXTS[0], 1, exaggeration=0.7)  # the emotion value differs
        assert (cache.misses, cache.hits) == (2, 1)
        _run(engine, other, TEXTS[0], 1, exaggeration=0.5)  # another voice
        assert (cache.misses, cache.hits) == (3, 1)
        _run(engine, other, TEXTS[1], 3, exaggeration=0.5)
        stats = engine.stats()["prompt_cache"]
    assert stats["hits"] == 2 and stats["misses"] == 3 and stats["entries"] == 3
    assert 0 < stats["bytes"] <= stats["max_bytes"]


def test_turbo_ignores_exaggeration_so_its_prefix_is_shared(
        turbo_engine) -> None:  # noqa: F811
    engine = turbo_engine
    voice = _voice(engine)
    with _cache(engine, 1 << 30) as cache:
        _run(engine, voice, TEXTS[0], 1, exaggeration=0.3)
        _run(engine, voice, TEXTS[0], 1, exaggeration=0.9)
        assert (cache.misses, cache.hits) == (1, 1)


def test_the_byte_bound_evicts_the_least_recently_used_and_is_never_exceeded(
        standard_engine) -> None:  # noqa: F811
    engine = standard_engine
    voice = _voice(engine)  # entries differ by exaggeration
    with _cache(engine, 1 << 30) as probe:
        _run(engine, voice, TEXTS[0], 1, exaggeration=0.1, fixed_tokens=2)
        entry = probe.nbytes
    assert entry > 0
    sizes: list[int] = []
    with _cache(engine, 2 * entry + entry // 2) as cache:  # room for two entries
        for exaggeration in (0.1, 0.2, 0.1, 0.3):  # 0.1 is used again before 0.3 comes
            _run(engine, voice, TEXTS[0], 1, exaggeration=exaggeration, fixed_tokens=2)
            sizes.append(cache.nbytes)
        assert (cache.misses, cache.hits, cache.evictions) == (3, 1, 1)  # 0.2 went out
        _run(engine, voice, TEXTS[0], 1, exaggeration=0.1, fixed_tokens=2)
        assert cache.hits == 2
        _run(engine, voice, TEXTS[0], 1, exaggeration=0.2, fixed_tokens=2)
        assert cache.misses == 4
        sizes.append(cache.nbytes)
    assert max(sizes) <= 2 * entry + entry // 2 and sizes[-1] == 2 * entry
    with _cache(engine, entry - 1) as tiny:  # no entry fits: computed, used, not kept
        _run(engine, voice, TEXTS[0], 1, exaggeration=0.1, fixed_tokens=2)
        assert tiny.nbytes == 0 and tiny.stats()["entries"] == 0


def test_zero_megabytes_turns_the_cache_off(tiny_turbo_dir: Path) -> None:  # noqa: F811
    engine = make_engine("turbo", tiny_turbo_dir, chatterbox_prompt_cache_mb=0)
    try:
        voice = _voice(engine)
        with _prefill_lengths(engine) as lengths:
            _run(engine, voice, TEXTS[0], 1, fixed_tokens=2)
            _run(engine, voice, TEXTS[0], 1, fixed_tokens=2)
        assert len(lengths) == 2 and lengths[0] == lengths[1]  # the whole prefill, twice
        stats = engine.stats()["prompt_cache"]
        assert stats["max_bytes"] == 0 and stats["hits"] == 0 and stats["entries"] == 0
    finally:
        asyncio.run(engine.aclose())


def test_a_replaced_voice_never_reuses_the_old_entry(turbo_engine) -> None:  # noqa: F811
    """On the tiny model two clips give the same tokens, but not the same logits: the
    new clip's reply must get the new clip's logits, not those of the old entry."""
    engine = turbo_engine
    old, new = _voice(engine, seed=1, voice_id="agent"), _voice(engine, seed=2, voice_id="agent")
    with _cache(engine, 0):
        expected = _run(engine, new, TEXTS[0], 5, fixed_tokens=2, record_logits=True)
    with _cache(engine, 1 << 30) as cache:
        before = _run(engine, old, TEXTS[0], 5, fixed_tokens=2, record_logits=True)
        after = _run(engine, new, TEXTS[0], 5, fixed_tokens=2, record_logits=True)
        assert (cache.misses, cache.hits) == (2, 0)

    def diff(stream: Any) -> float:
        return float((stream.logits[0] - expected.logits[0]).abs().max())

    print(f"first-token logits against the new clip's full prefill: new clip {diff(after):.1e}, "
          f"old clip {diff(before):.1e}")
    assert diff(after) <= 1e-5 < diff(before)


@pytest.mark.parametrize("family", ["turbo", "standard"])
def test_a_prepared_voice_is_cached_before_its_first_reply(request, family) -> None:
    from app.engines.chatterbox.tiny import reference_clip

    engine = _engine(request, family)
    exaggeration = None if family == "turbo" else PRESETS["balanced"].exaggeration
    with _cache(engine, 1 << 30) as cache:
        clip = VoiceClip("preloaded", reference_clip(5.5, seed=31), 24000)
        voice = asyncio.run(engine.prepare_voice(clip))  # what /preload runs
        assert engine._scheduler.wait_warm(120)
        assert cache.stats()["entries"] == 1 and (cache.warmed, cache.misses) == (1, 0)
        with _prefill_lengths(engine) as lengths:
            _run(engine, voice, TEXTS[1], 5, exaggeration=exaggeration, fixed_tokens=2)
        assert (cache.hits, cache.misses, cache.warmed) == (1, 0, 1)
        assert len(lengths) == 1  # one forward: its text and start token, no prefix


def test_nothing_is_warmed_without_a_cache(tiny_turbo_dir: Path) -> None:  # noqa: F811
    from app.engines.chatterbox.tiny import reference_clip

    engine = make_engine("turbo", tiny_turbo_dir, chatterbox_prompt_cache_mb=0)
    try:
        clip = VoiceClip("preloaded", reference_clip(5.5, seed=31), 24000)
        with _prefill_lengths(engine) as lengths:
            asyncio.run(engine.prepare_voice(clip))
            assert engine._scheduler.wait_warm(5)
        assert lengths == [] and engine.stats()["prompt_cache"]["warmed"] == 0
    finally:
        asyncio.run(engine.aclose())


def test_the_builtin_voice_is_warmed_at_startup_for_the_default_preset(
        standard_engine) -> None:  # noqa: F811
    """The startup generation runs ``realtime`` (exaggeration 0.4); the warm-up after it
    caches the default preset's prefix (0.5), so a default reply's first token is a hit."""
    from app.engines.chatterbox import runtime
    from app.engines.chatterbox.prompt_cache import prefix_key
    from app.presets import DEFAULT_PRESET

    engine = standard_engine
    cache = engine._scheduler.prompt_cache
    voice = _voice(engine)
    plan = runtime.Plan.build("standard", SynthesisParams(preset=PRESETS[DEFAULT_PRESET]))
    t3 = engine._model.t3
    key = prefix_key(t3, runtime.request_cond(voice.data, plan), t3.speech_head.weight.dtype)
    assert key in cache._entries  # before any reply in the default preset
    before = cache.stats()
    _run(engine, voice, TEXTS[1], 5, exaggeration=plan.exaggeration, fixed_tokens=2)
    after = cache.stats()
    assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"])
