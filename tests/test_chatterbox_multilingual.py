"""Chatterbox multilingual on a tiny random-weight checkpoint (CPU).

The checkpoint (``app.engines.chatterbox.tiny``, family ``multilingual``) has the files
``ChatterboxMultilingualTTS.from_local`` reads and a 2-layer Llama backbone, so the engine
loads it through the library's own loader. Properties: a French request streams chunks
before generation ends and the stitched stream has the one-shot S3Gen length; the language
tag reaches the text tokens; an unsupported language is an ``InvalidRequest``; capabilities
list the library's 23 languages and the CFG / exaggeration preset fields.

The alignment analyzer cannot run on the tiny checkpoint: it hooks attention heads in
layers 9, 12 and 13 (``LLAMA_ALIGNED_HEADS``), so it needs a backbone of at least 14
layers, and the engine runs without it there. For the same reason the library's own
``T3.inference`` (which always builds an analyzer for a multilingual T3) cannot run on it,
so the tokens are not compared with the library's loop here; the standard family's test
covers that loop, which multilingual shares. The analyzer's hooks are checked on a
separate small 14-layer Llama instead.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.engines.base import AudioChunk, SynthesisParams
from app.errors import InvalidRequest
from app.presets import PRESETS
from tests.chatterbox_fixtures import (  # noqa: F401  (fixtures)
    multilingual_engine,
    tiny_multilingual_dir,
)

TEXT_FR = "Bonjour, ça va très bien aujourd'hui."
TOKEN = 960  # samples per speech token at 24 kHz

pytestmark = pytest.mark.chatterbox


def collect(engine, text, voice, language, preset="realtime", seed=7):
    async def run() -> tuple[list[AudioChunk], list[float]]:
        chunks, times = [], []
        t0 = time.perf_counter()
        params = SynthesisParams(preset=PRESETS[preset], language=language, seed=seed)
        async for chunk in engine.stream(text, voice, params):
            chunks.append(chunk)
            times.append(time.perf_counter() - t0)
        return chunks, times

    return asyncio.run(run())


def test_tiny_multilingual_checkpoint_loads_through_the_library_loader(
    multilingual_engine, tiny_multilingual_dir  # noqa: F811
) -> None:
    from chatterbox.mtl_tts import ChatterboxMultilingualTTS

    from app.engines.chatterbox.tiny import MTL_FILES

    assert all((tiny_multilingual_dir / f).is_file() for f in MTL_FILES.values())
    assert (tiny_multilingual_dir / "conds.pt").is_file()
    model = multilingual_engine._model
    assert isinstance(model, ChatterboxMultilingualTTS)
    assert model.t3.hp.is_multilingual and model.t3.cfg.num_hidden_layers == 2
    # The Cangjie table came from the checkpoint directory, not the Hub.
    assert model.tokenizer.cangjie_converter.word2cj["你"] == "onf"
    # Too few layers for the analyzer's heads (9, 12, 13): the engine runs without it.
    assert multilingual_engine._scheduler.spy is None
    assert asyncio.run(multilingual_engine.prepare_voice(None)).builtin


def test_language_tag_and_accents_reach_the_text_tokens(multilingual_engine) -> None:  # noqa: F811
    from app.engines.chatterbox.runtime import text_tokens

    model = multilingual_engine._model
    vocab = model.tokenizer.tokenizer.get_vocab()
    ids = text_tokens(model, "multilingual", TEXT_FR, "FR")[0].tolist()
    hp = model.t3.hp
    assert ids[0] == hp.start_text_token and ids[-1] == hp.stop_text_token
    assert ids[1] == vocab["[fr]"]
    assert vocab["[UNK]"] not in ids  # NFKD: "ç" is "c" + a combining cedilla, both known
    assert max(ids) < hp.text_tokens_dict_size


def test_french_stream_arrives_early_and_has_one_shot_length(multilingual_engine) -> None:  # noqa: F811
    import torch

    from app.audio.crossfade import Crossfader
    from app.engines.chatterbox.runtime import Plan, request_cond, token_stream

    engine = multilingual_engine
    voice = asyncio.run(engine.prepare_voice(None))
    chunks, times = collect(engine, TEXT_FR, voice, "fr")

    # Same seed through the engine's own token loop: the tokens the stream decoded.
    params = SynthesisParams(preset=PRESETS["realtime"], language="fr", seed=7)
    plan = Plan.build("multilingual", params)
    tokens = list(token_stream(engine._model, "multilingual", TEXT_FR, "fr",
                               request_cond(voice.data, plan), plan, threading.Event()))
    assert 20 < len(tokens) < 60  # EOS shaped after about 30 tokens

    wav, _ = engine._model.s3gen.inference(
        speech_tokens=torch.tensor(tokens), ref_dict=voice.data.gen, n_cfm_timesteps=2
    )
    one_shot = int(wav.shape[1])
    assert sum(len(c.samples) - c.overlap for c in chunks) == one_shot
    fader = Crossfader(engine.capabilities.max_overlap_samples)
    stitched = np.concatenate([fader.push(c) for c in chunks] + [fader.flush()])
    assert len(stitched) == one_shot
    assert all(np.isfinite(c.samples).all() for c in chunks)

    new = [len(c.samples) - c.overlap for c in chunks]
    assert len(chunks) >= 3 and all(n == 10 * TOKEN for n in new[1:-1])  # realtime: 10
    assert times[0] < 0.6 * times[-1]
    assert engine.active_streams == 0


def test_unsupported_language_is_an_invalid_request(multilingual_engine) -> None:  # noqa: F811
    voice = asyncio.run(multilingual_engine.prepare_voice(None))

    async def run(language: str) -> None:
        params = SynthesisParams(preset=PRESETS["realtime"], language=language)
        agen = multilingual_engine.stream("Hola.", voice, params)
        try:
            await agen.__anext__()
        finally:
            await agen.aclose()

    for language in ("xx", "en-US", "yue"):
        with pytest.raises(InvalidRequest) as err:
            asyncio.run(run(language))
        assert err.value.code == "invalid_request" and "not supported" in str(err.value)
    assert multilingual_engine.active_streams == 0


def test_capabilities_list_the_library_languages_and_cfg_fields(multilingual_engine) -> None:  # noqa: F811
    from chatterbox.mtl_tts import SUPPORTED_LANGUAGES

    caps = multilingual_engine.capabilities
    assert set(caps.languages) == set(SUPPORTED_LANGUAGES) and len(caps.languages) == 23
    assert {"cfg_weight", "exaggeration", "decoder_steps"} <= set(caps.preset_fields)
    assert caps.streaming == "token" and caps.cloning


def test_alignment_analyzer_hooks_fill_on_a_14_layer_backbone() -> None:
    """The analyzer needs >= 14 layers, so it is checked on a small-width 14-layer Llama
    (not a T3): ``install_alignment`` installs it, a forward pass fills its attention
    buffers, and per-request copies share them with fresh state."""
    pytest.importorskip("chatterbox")
    import torch
    from transformers import LlamaConfig, LlamaModel

    from app.engines.chatterbox.runtime import install_alignment, request_analyzer

    cfg = LlamaConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=14,
                      num_attention_heads=16, num_key_value_heads=16, head_dim=4,
                      vocab_size=8, attn_implementation="sdpa")
    tfmr = LlamaModel(cfg).eval()

    class FakeT3:
        def __init__(self) -> None:
            self.tfmr, self.cfg = tfmr, cfg
            self.hp = type("hp", (), {"stop_speech_token": 6562})()

    shared = install_alignment(FakeT3())
    assert shared is not None
    first = request_analyzer(shared, len_cond=3, text_len=5)
    second = request_analyzer(shared, len_cond=4, text_len=6)
    assert first.last_aligned_attns is shared.last_aligned_attns is second.last_aligned_attns
    assert first.text_tokens_slice == (3, 8) and first.alignment.shape == (0, 5)
    with torch.inference_mode():
        tfmr(inputs_embeds=torch.randn(1, 12, 64), use_cache=True)
    assert all(a is not None and a.shape == (12, 12) for a in shared.last_aligned_attns)
    logits = first.step(torch.zeros(1, 6563), next_token=0)
    assert logits.shape == (1, 6563) and first.alignment.shape == (12 - 8, 5)
