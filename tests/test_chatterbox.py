"""Chatterbox engine on tiny random-weight checkpoints of the real architectures (CPU).

Properties: chunks stream before generation ends and follow the preset's chunk sizes; the
stitched stream has the one-shot length; a seed gives the library's own tokens; closing a
stream stops the token loop within one step; streams beyond the limit get ``busy``; voices
never leak conditioning into each other.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.engines.base import AudioChunk, SynthesisParams, VoiceClip
from app.engines.chatterbox import capabilities_for, extra_installed, split_sentences
from app.errors import Busy
from app.presets import PRESETS
from tests.chatterbox_fixtures import (  # noqa: F401  (fixtures)
    standard_engine,
    tiny_standard_dir,
    tiny_turbo_dir,
    turbo_engine,
)

# Building a tiny checkpoint and loading its engine (shared by the session) counts against
# the first test that needs it: minutes on a loaded 2-core machine, so no tight limit.
pytestmark = pytest.mark.timeout(900)

TEXT = "Hello there, how are you doing today?"
TOKEN = 960  # samples per speech token at 24 kHz


# --- no torch needed ---
def test_package_imports_without_loading_torch_and_reports_capabilities() -> None:
    caps = capabilities_for("turbo")
    assert caps.paralinguistic_tags and caps.streaming == "token" and caps.cloning
    assert "cfg_weight" not in caps.preset_fields and "exaggeration" not in caps.preset_fields
    assert {"cfg_weight", "exaggeration", "decoder_steps"} <= set(
        capabilities_for("standard").preset_fields
    )
    assert "fr" in capabilities_for("multilingual").languages
    assert caps.max_overlap_samples == 480  # one 20 ms frame
    assert isinstance(extra_installed(), bool)


def test_long_text_is_split_into_sentences_under_the_limit() -> None:
    text = " ".join(f"This is sentence number {i} of a long reply." for i in range(40))
    parts = split_sentences(text, limit=120)
    assert len(parts) > 5 and all(len(p) <= 120 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_sentences("Hi.") == ["Hi."]


# --- helpers ---
def collect(engine, text, voice, preset="adaptive", seed=1) -> tuple[list[AudioChunk], list]:
    async def run():
        chunks, times = [], []
        t0 = time.perf_counter()
        params = SynthesisParams(preset=PRESETS[preset], seed=seed)
        async for chunk in engine.stream(text, voice, params):
            chunks.append(chunk)
            times.append(time.perf_counter() - t0)
        return chunks, times

    return asyncio.run(run())


def stitched(chunks: list[AudioChunk], max_overlap: int) -> np.ndarray:
    from app.audio.crossfade import Crossfader

    fader = Crossfader(max_overlap)
    out = [fader.push(c) for c in chunks] + [fader.flush()]
    return np.concatenate(out)


def library_tokens(engine, text: str, preset: str, seed: int) -> list[int]:
    """Tokens from the library's own sampling loop (T3.inference / inference_turbo)."""
    import torch

    from app.engines.chatterbox.runtime import text_tokens
    from app.engines.chatterbox.tokens import Sampling
    from app.engines.chatterbox.voices import request_t3_cond

    model, family, p = engine._model, engine.family, PRESETS[preset]
    voice = asyncio.run(engine.prepare_voice(None))
    s = Sampling.for_family(family, p.temperature, p.cfg_weight)
    tokens = text_tokens(model, family, text, "en")
    torch.manual_seed(seed)
    if family == "turbo":
        out = model.t3.inference_turbo(
            request_t3_cond(voice.data, None), tokens, temperature=s.temperature,
            top_k=s.top_k, top_p=s.top_p, repetition_penalty=s.repetition_penalty,
        )[0]
    else:
        both = torch.cat([tokens, tokens])
        out = model.t3.inference(
            t3_cond=request_t3_cond(voice.data, p.exaggeration), text_tokens=both,
            max_new_tokens=1000, temperature=s.temperature, cfg_weight=s.cfg_weight,
            repetition_penalty=s.repetition_penalty, min_p=s.min_p, top_p=s.top_p,
        )[0]
    return [int(t) for t in out if t < 6561]


def one_shot_length(engine, tokens: list[int]) -> int:
    import torch

    model = engine._model
    voice = asyncio.run(engine.prepare_voice(None))
    if engine.family == "turbo":
        tokens = tokens + [4299] * 3  # S3GEN_SIL, as ChatterboxTurboTTS.generate appends
    wav, _ = model.s3gen.inference(speech_tokens=torch.tensor(tokens), ref_dict=voice.data.gen,
                                   n_cfm_timesteps=2)
    return int(wav.shape[1])


def short_frames(engine) -> int:
    import torch

    gen = asyncio.run(engine.prepare_voice(None)).data.gen
    return int(gen["prompt_feat"].shape[1] - 2 * torch.atleast_2d(gen["prompt_token"]).shape[1])


# --- streaming ---
@pytest.mark.chatterbox
@pytest.mark.parametrize("family", ["turbo", "standard"])
def test_seeded_stream_uses_library_tokens_and_has_one_shot_length(
    family, turbo_engine, standard_engine  # noqa: F811
) -> None:
    engine = turbo_engine if family == "turbo" else standard_engine
    preset = "adaptive" if family == "turbo" else "realtime"
    voice = asyncio.run(engine.prepare_voice(None))
    chunks, _ = collect(engine, TEXT, voice, preset, seed=7)
    lib = library_tokens(engine, TEXT, preset, seed=7)

    # The engine's own token generator, same seed: the library's tokens exactly.
    from app.engines.chatterbox.runtime import Plan, request_cond, token_stream

    params = SynthesisParams(preset=PRESETS[preset], seed=7)
    plan = Plan.build(family, params)
    ours = list(token_stream(engine._model, family, TEXT, "en", request_cond(voice.data, plan),
                             plan, threading.Event()))
    assert ours == lib and len(lib) > 20

    total = sum(len(c.samples) - c.overlap for c in chunks)
    one_shot = one_shot_length(engine, lib)
    assert total == one_shot
    assert len(stitched(chunks, engine.capabilities.max_overlap_samples)) == one_shot
    assert all(np.isfinite(c.samples).all() for c in chunks)


@pytest.mark.chatterbox
def test_turbo_chunks_follow_adaptive_preset_and_first_arrives_early(turbo_engine) -> None:  # noqa: F811
    voice = asyncio.run(turbo_engine.prepare_voice(None))
    chunks, times = collect(turbo_engine, TEXT, voice, "adaptive")
    new = [len(c.samples) - c.overlap for c in chunks]
    assert len(chunks) >= 3
    # First chunk after 12 tokens (its last frames wait as the decoder's look-ahead),
    # then one chunk per 24 tokens; the final chunk flushes the rest.
    from app.engines.chatterbox.decoder import HELD_FRAMES

    assert new[0] == 12 * TOKEN - (HELD_FRAMES + short_frames(turbo_engine)) * 480
    assert all(n == 24 * TOKEN for n in new[1:-1])
    assert chunks[0].overlap == 0 and all(c.overlap == 480 for c in chunks[1:])
    assert times[0] < 0.6 * times[-1]


@pytest.mark.chatterbox
def test_standard_chunks_follow_realtime_preset(standard_engine) -> None:  # noqa: F811
    voice = asyncio.run(standard_engine.prepare_voice(None))
    chunks, times = collect(standard_engine, TEXT, voice, "realtime")
    new = [len(c.samples) - c.overlap for c in chunks]
    assert len(chunks) >= 3
    from app.engines.chatterbox.decoder import HELD_FRAMES

    assert new[0] == 10 * TOKEN - (HELD_FRAMES + short_frames(standard_engine)) * 480
    assert all(n == 10 * TOKEN for n in new[1:-1])
    assert times[0] < 0.6 * times[-1]


# --- cancel and capacity ---
@pytest.mark.chatterbox
def test_closing_a_stream_stops_the_token_loop_within_one_step(turbo_engine) -> None:  # noqa: F811
    t3 = turbo_engine._model.t3
    voice = asyncio.run(turbo_engine.prepare_voice(None))
    steps = [0]

    async def run() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        mid_chunk = asyncio.Event()

        def count(*_: object) -> None:  # runs on the worker thread after each T3 step
            steps[0] += 1
            if steps[0] == 20:  # mid-way through the second chunk's token loop
                loop.call_soon_threadsafe(mid_chunk.set)

        handle = t3.tfmr.register_forward_hook(count)
        try:
            params = SynthesisParams(preset=PRESETS["balanced"], seed=3)
            agen = turbo_engine.stream(TEXT, voice, params)
            await agen.__anext__()
            pending = asyncio.ensure_future(agen.__anext__())
            await mid_chunk.wait()
            at_cancel = steps[0]
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            await agen.aclose()
            after_close = steps[0]
            await asyncio.sleep(0.3)
            assert steps[0] == after_close, "generation went on after the stream was closed"
        finally:
            handle.remove()
        return at_cancel, after_close

    at_cancel, after_close = asyncio.run(run())
    # The step running at the cancel finishes; no further step starts.
    assert after_close - at_cancel <= 2
    assert turbo_engine.active_streams == 0


@pytest.mark.chatterbox
def test_streams_beyond_the_limit_get_busy(turbo_engine) -> None:  # noqa: F811
    voice = asyncio.run(turbo_engine.prepare_voice(None))

    async def run() -> None:
        params = SynthesisParams(preset=PRESETS["realtime"])
        open_streams = [turbo_engine.stream(TEXT, voice, params) for _ in range(2)]
        for s in open_streams:
            await s.__anext__()  # both hold a slot (limit 2)
        extra = turbo_engine.stream(TEXT, voice, params)
        with pytest.raises(Busy) as err:
            await extra.__anext__()
        assert err.value.code == "busy" and err.value.retryable
        for s in open_streams:
            await s.aclose()
        again = turbo_engine.stream("Hi there, friend.", voice, params)
        assert isinstance(await again.__anext__(), AudioChunk)  # slots are released
        await again.aclose()

    asyncio.run(run())
    assert turbo_engine.active_streams == 0


# --- voices ---
@pytest.mark.chatterbox
def test_two_voices_in_turn_never_leak_conditioning(turbo_engine) -> None:  # noqa: F811
    import torch

    from app.engines.chatterbox.tiny import reference_clip

    def clip(voice_id: str, seed: int) -> VoiceClip:
        return VoiceClip(voice_id, reference_clip(5.3, seed=seed), 24000)

    a = asyncio.run(turbo_engine.prepare_voice(clip("alice", 11)))
    b = asyncio.run(turbo_engine.prepare_voice(clip("bob", 12)))
    assert not a.builtin and not b.builtin
    a_emb = a.data.t3.speaker_emb.clone()
    a_prompt = a.data.gen["prompt_feat"].clone()
    text = "Good morning, thanks for calling."

    first_a = np.concatenate([c.samples for c in collect(turbo_engine, text, a, seed=5)[0]])
    audio_b = np.concatenate([c.samples for c in collect(turbo_engine, text, b, seed=5)[0]])
    again_a = np.concatenate([c.samples for c in collect(turbo_engine, text, a, seed=5)[0]])

    np.testing.assert_array_equal(first_a, again_a)
    assert first_a.shape != audio_b.shape or not np.allclose(first_a, audio_b)
    assert torch.equal(a.data.t3.speaker_emb, a_emb)
    assert torch.equal(a.data.gen["prompt_feat"], a_prompt)
    assert a.data.t3.cond_prompt_speech_emb is None  # never cached on the voice itself
    assert turbo_engine._model.conds is None  # the shared slot is never used


@pytest.mark.chatterbox
def test_exaggeration_changes_only_the_request_emotion(standard_engine) -> None:  # noqa: F811
    from app.engines.chatterbox.voices import request_t3_cond

    voice = asyncio.run(standard_engine.prepare_voice(None))
    before = voice.data.t3.emotion_adv.clone()
    cond = request_t3_cond(voice.data, 0.9)
    assert float(cond.emotion_adv.flatten()[0]) == pytest.approx(0.9)
    assert cond.speaker_emb is voice.data.t3.speaker_emb
    assert float(voice.data.t3.emotion_adv.flatten()[0]) == float(before.flatten()[0])
