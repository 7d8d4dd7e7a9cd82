"""The step scheduler on tiny random-weight checkpoints (CPU): batching changes nobody's tokens.

Properties: N streams generated together give each stream exactly the tokens it gets alone
with the same seed (sampled with per-stream generators, and greedy), which for a seed are
the library's own tokens; the logits of a batched row agree with the row alone to 1e-4 (a
batched matmul and a masked attention may round differently; measured here: the largest
difference is printed); a stream that joins or leaves mid-way changes nobody else's tokens;
a cancelled stream gets no token after the step in flight; on a CPU the step in flight and
a chunk decode pause while a joiner's prefill runs; an engine at its budget answers
``busy`` at once and ``stats()`` (shown by ``/health``) reports streams and headroom.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path

import pytest

from app.engines.base import SynthesisParams
from app.errors import Busy
from app.presets import PRESETS
from tests.chatterbox_fixtures import (  # noqa: F401  (fixtures)
    make_engine,
    tiny_standard_dir,
    tiny_turbo_dir,
)

TEXTS = [
    "Hello there, how are you doing today?",
    "Good morning, thanks for calling us.",
    "One two three four five.",
    "Please hold while I check that.",
    "Your appointment is on Tuesday.",
]
BUDGET = 3


@pytest.fixture(scope="module")
def batch_turbo(tiny_turbo_dir: Path):  # noqa: F811
    engine = make_engine("turbo", tiny_turbo_dir, max_concurrent_streams=8,
                         chatterbox_stream_budget=BUDGET)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def batch_standard(tiny_standard_dir: Path):  # noqa: F811
    engine = make_engine("standard", tiny_standard_dir, chatterbox_stream_budget=4)
    yield engine
    asyncio.run(engine.aclose())


def _engine(request: pytest.FixtureRequest, family: str):
    return request.getfixturevalue(f"batch_{family}")


def request_for(engine, text: str, seed: int, **options):
    from app.engines.chatterbox import runtime

    voice = asyncio.run(engine.prepare_voice(None))
    preset = "adaptive" if engine.family == "turbo" else "realtime"
    plan = runtime.Plan.build(engine.family, SynthesisParams(preset=PRESETS[preset], seed=seed))
    req = runtime.token_request(engine._model, engine.family, text, "en",
                                runtime.request_cond(voice.data, plan), plan)
    return dataclasses.replace(req, **options)


def run_alone(engine, text: str, seed: int, **options):
    stream = engine._scheduler.submit(request_for(engine, text, seed, **options))
    stream.wait_for(1 << 30)
    return stream


def run_together(engine, specs: list[tuple[str, int]], **options):
    requests = [request_for(engine, t, s, **options) for t, s in specs]  # then all at once
    streams = [engine._scheduler.submit(r) for r in requests]
    for stream in streams:
        stream.wait_for(1 << 30)
    return streams


@pytest.mark.chatterbox
@pytest.mark.parametrize("family", ["turbo", "standard"])
@pytest.mark.parametrize("greedy", [False, True], ids=["sampled", "greedy"])
def test_streams_batched_together_get_exactly_their_solo_tokens(request, family, greedy) -> None:
    engine = _engine(request, family)
    specs = [(text, 20 + i) for i, text in enumerate(TEXTS[:4])]
    alone = [run_alone(engine, t, s, greedy=greedy, record_logits=True) for t, s in specs]
    together = run_together(engine, specs, greedy=greedy, record_logits=True)
    assert any(size == 4 for size, _ in engine._scheduler.step_log)  # really batched
    worst = 0.0
    for a, b in zip(alone, together, strict=True):
        assert b.tokens == a.tokens and len(a.tokens) > 10
        assert len(a.logits) == len(b.logits)
        for la, lb in zip(a.logits, b.logits, strict=True):
            finite = la.isfinite()
            worst = max(worst, float((la[finite] - lb[finite]).abs().max()))
    print(f"{family} {'greedy' if greedy else 'sampled'}: largest logit difference "
          f"batched vs alone {worst:.2e}")
    assert worst <= 1e-4


@pytest.mark.chatterbox
@pytest.mark.parametrize("family", ["turbo", "standard"])
def test_a_seed_gives_the_library_tokens_through_the_scheduler(request, family) -> None:
    from app.engines.chatterbox import runtime

    engine = _engine(request, family)
    voice = asyncio.run(engine.prepare_voice(None))
    preset = "adaptive" if family == "turbo" else "realtime"
    plan = runtime.Plan.build(family, SynthesisParams(preset=PRESETS[preset], seed=7))
    # The one-stream loop reproduces the library's own T3 loop (test_chatterbox.py).
    reference = list(runtime.token_stream(engine._model, family, TEXTS[0], "en",
                                          runtime.request_cond(voice.data, plan), plan,
                                          threading.Event()))
    assert run_alone(engine, TEXTS[0], 7).tokens == reference


@pytest.mark.chatterbox
@pytest.mark.parametrize("family", ["turbo", "standard"])
def test_joining_and_leaving_mid_way_changes_nobody_elses_tokens(request, family) -> None:
    engine = _engine(request, family)
    sched = engine._scheduler
    solo_a = run_alone(engine, TEXTS[0], 31).tokens
    solo_b = run_alone(engine, TEXTS[1], 32).tokens
    a = sched.submit(request_for(engine, TEXTS[0], 31))
    leaver = sched.submit(request_for(engine, TEXTS[3], 33))
    assert a.wait_for(8)
    b = sched.submit(request_for(engine, TEXTS[1], 32))  # joins while a is mid-way
    assert leaver.wait_for(12)
    leaver.cancel()  # leaves while a and b go on
    assert b.wait_for(5)
    late = sched.submit(request_for(engine, TEXTS[4], 34))  # a longer prefill joins late
    for s in (a, b, leaver, late):
        s.wait_for(1 << 30)
    assert a.tokens == solo_a
    assert b.tokens == solo_b
    assert late.tokens == run_alone(engine, TEXTS[4], 34).tokens
    assert leaver.done and len(leaver.tokens) < len(run_alone(engine, TEXTS[3], 33).tokens)


@pytest.mark.chatterbox
def test_history_grows_with_the_stream_not_to_its_limit(batch_turbo, monkeypatch) -> None:
    """The repetition penalty reads every history column at every step: a long stream
    (here a million tokens allowed) must not make everyone's step slow from its first
    token, and widening the history on the way changes nobody's tokens."""
    from app.engines.chatterbox import scheduler

    engine = batch_turbo
    specs = [(text, 50 + i) for i, text in enumerate(TEXTS[:3])]
    alone = [run_alone(engine, t, s).tokens for t, s in specs]
    monkeypatch.setattr(scheduler, "HISTORY_COLUMNS", 8)  # widened 8 -> 16 -> 32 -> 64
    together = run_together(engine, specs)
    assert [s.tokens for s in together] == alone and max(map(len, alone)) > 32
    long = engine._scheduler.submit(request_for(engine, TEXTS[0], 5, fixed_tokens=1 << 20))
    try:
        assert long.wait_for(20)
        width = engine._scheduler._history.shape[1]
        assert width <= 64, width
    finally:
        long.cancel()
        long.wait_for(1 << 30)


@pytest.mark.chatterbox
def test_a_joiner_gets_its_first_token_while_the_batch_step_is_in_flight(batch_turbo) -> None:
    """The joiner's prefill and first draw run beside the token loop: here the running
    stream's step is held until the joiner has its first token (on the old design, where
    the loop prefilled joiners between steps, this waited forever)."""
    engine = batch_turbo
    sched = engine._scheduler
    running = sched.submit(request_for(engine, TEXTS[0], 61, fixed_tokens=1 << 20))
    assert running.wait_for(3)
    joiner_first = threading.Event()
    holding = threading.Event()
    held: list[bool] = []

    def hold_the_step(module: object, args: object, kwargs: dict) -> None:
        embeds = kwargs.get("inputs_embeds")
        on_loop = threading.current_thread().name == "chatterbox-steps"
        if on_loop and embeds is not None and embeds.shape[1] == 1 and not holding.is_set():
            holding.set()
            held.append(joiner_first.wait(timeout=60))

    handle = engine._model.t3.tfmr.register_forward_pre_hook(hold_the_step, with_kwargs=True)
    try:
        assert holding.wait(timeout=60)  # the running stream's step is in flight, held
        joiner = sched.submit(request_for(engine, TEXTS[1], 62))
        assert joiner.wait_for(1, timeout=60)
        joiner_first.set()
        for _ in range(600):
            if held:
                break
            time.sleep(0.1)
    finally:
        joiner_first.set()
        handle.remove()
        running.cancel()
    assert held == [True]  # released by the joiner's first token, not by the timeout
    joiner.wait_for(1 << 30)
    assert joiner.tokens == run_alone(engine, TEXTS[1], 62).tokens


@pytest.mark.chatterbox
def test_on_a_cpu_the_step_and_a_decode_pause_while_a_joiner_prefills(batch_turbo) -> None:
    """A joiner's prefill comes first on a CPU: the token loop's step in flight and a chunk
    decode on the decode worker wait at their next module until it ends, then go on."""
    from app.engines.chatterbox import runtime

    engine = batch_turbo
    sched = engine._scheduler
    gate = sched.gate
    assert gate is not None  # a CPU model
    running = sched.submit(request_for(engine, TEXTS[0], 71, fixed_tokens=1 << 20))
    try:
        assert running.wait_for(24)
        voice = asyncio.run(engine.prepare_voice(None))
        plan = runtime.Plan.build("turbo", SynthesisParams(preset=PRESETS["balanced"], seed=71))
        decoder = runtime.new_decoder(engine._model, voice.data, plan)
        with gate.prefill():  # this thread stands in for the prefill thread
            # S3Gen alone (the watermark network gives way too, but would hide S3Gen's pause)
            decode = engine._decoders.submit(decoder.decode, running.tokens[:24], final=False)
            paused = {"chatterbox-steps", "chatterbox-decode_0"}
            for _ in range(6000):
                if paused <= gate.waiting:
                    break
                time.sleep(0.01)
            assert paused <= gate.waiting, gate.waiting
            assert not decode.done()
            count = len(running.tokens)
        chunk = decode.result(timeout=120)
        assert chunk is not None and len(chunk.samples) > 0
        assert running.wait_for(count + 2, timeout=60)  # the loop went on
    finally:
        running.cancel()
        running.wait_for(1 << 30)


@pytest.mark.chatterbox
def test_a_cancelled_stream_gets_no_token_after_the_step_in_flight(batch_turbo) -> None:
    engine = batch_turbo
    sched = engine._scheduler
    solo_other = run_alone(engine, TEXTS[1], 42).tokens
    other = sched.submit(request_for(engine, TEXTS[1], 42))
    victim = sched.submit(request_for(engine, TEXTS[0], 41))
    at_cancel: list[int] = []

    def cancel_mid_step(*_: object) -> None:  # runs on the scheduler thread, inside a step
        if not at_cancel and len(victim.tokens) >= 10:
            at_cancel.append(len(victim.tokens))
            victim.cancel()

    handle = engine._model.t3.tfmr.register_forward_hook(cancel_mid_step)
    try:
        victim.wait_for(1 << 30)
        other.wait_for(1 << 30)
    finally:
        handle.remove()
    assert at_cancel and len(victim.tokens) == at_cancel[0]  # the step in flight is its last
    assert victim.done and other.tokens == solo_other


@pytest.mark.chatterbox
def test_streams_beyond_the_budget_get_busy_at_once(batch_turbo) -> None:
    engine = batch_turbo
    voice = asyncio.run(engine.prepare_voice(None))
    assert engine.capacity == BUDGET < engine.max_streams

    async def run() -> None:
        params = SynthesisParams(preset=PRESETS["realtime"], seed=1)
        running = [engine.stream(TEXTS[i], voice, params) for i in range(BUDGET)]
        for s in running:
            await s.__anext__()
        stats = engine.stats()
        assert stats["active_streams"] == BUDGET and stats["headroom"] == 0
        with pytest.raises(Busy) as err:
            await engine.stream(TEXTS[4], voice, params).__anext__()
        assert err.value.code == "busy"
        for s in running:
            await s.aclose()
        assert engine.stats()["headroom"] == BUDGET

    asyncio.run(run())
    for _ in range(200):  # the closed streams leave at the scheduler's next step
        if engine._scheduler.streams == 0:
            break
        time.sleep(0.01)
    assert engine._scheduler.streams == 0


def test_each_stream_reads_its_own_attention_row_on_a_14_layer_backbone() -> None:
    """The multilingual analyzer's heads (layers 9, 12, 13) need >= 14 layers, so the spy is
    checked on a small 14-layer Llama: in a left-padded batch, a row's attention without
    its padding columns is the attention that row gets alone."""
    pytest.importorskip("chatterbox")
    import torch
    from chatterbox.models.t3.inference.alignment_stream_analyzer import LLAMA_ALIGNED_HEADS
    from transformers import LlamaConfig, LlamaModel

    from app.engines.chatterbox.scheduler import AttentionSpy

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=14,
                      num_attention_heads=16, num_key_value_heads=16, head_dim=4,
                      vocab_size=8, attn_implementation="sdpa")
    tfmr = LlamaModel(cfg).eval()
    spy = AttentionSpy(tfmr, list(LLAMA_ALIGNED_HEADS))
    short, long = torch.randn(1, 5, 64), torch.randn(1, 9, 64)
    with torch.inference_mode():
        tfmr(inputs_embeds=short)
        alone = spy.rows(0, 0)
        pad = long.shape[1] - short.shape[1]
        batch = torch.cat([torch.cat([torch.zeros(1, pad, 64), short], 1), long])
        mask = torch.ones(2, long.shape[1], dtype=torch.long)
        mask[0, :pad] = 0
        positions = torch.stack([torch.clamp(torch.arange(9) - pad, min=0), torch.arange(9)])
        tfmr(inputs_embeds=batch, attention_mask=mask, position_ids=positions)
        padded = spy.rows(0, pad)
    assert len(alone) == len(padded) == 3
    for a, b in zip(alone, padded, strict=True):
        assert torch.allclose(a, b[pad:], atol=1e-5)  # its own queries, its own columns
