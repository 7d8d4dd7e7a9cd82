"""Nano (``CHATTERBOX_MODEL=nano``): the Turbo architecture read from ``t3_nano_v1.safetensors``
with the backbone configuration registered by us, through the real loading path.

The checkpoint is the tiny Turbo one laid out as Nano's (its T3 file under Nano's name, its
small backbone given by ``t3_backbone_config.json`` under Nano's backbone name), so the
test costs one engine load and a few decodes (about 20 s on the 2-core test machine).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from app.engines.base import SynthesisParams
from app.presets import PRESETS
from tests.chatterbox_fixtures import make_engine, tiny_turbo_dir  # noqa: F401  (fixture)

TEXT = "Hello there, how are you doing today?"


@pytest.fixture(scope="module")
def tiny_nano_dir(tiny_turbo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    from app.engines.chatterbox.loading import BACKBONE_CONFIG_FILE, NANO_BACKBONE, NANO_T3_FILE

    out = tmp_path_factory.mktemp("tiny-nano")
    skip = {"t3_turbo_v1.safetensors", BACKBONE_CONFIG_FILE}
    for f in tiny_turbo_dir.iterdir():
        if f.is_file() and f.name not in skip:
            (out / f.name).symlink_to(f)
    (out / NANO_T3_FILE).symlink_to(tiny_turbo_dir / "t3_turbo_v1.safetensors")
    spec = json.loads((tiny_turbo_dir / BACKBONE_CONFIG_FILE).read_text())
    (out / BACKBONE_CONFIG_FILE).write_text(
        json.dumps({"name": NANO_BACKBONE, "config": spec["config"]}))
    return out


@pytest.fixture(scope="module")
def nano(tiny_nano_dir: Path):
    engine = make_engine("nano", tiny_nano_dir, chatterbox_stream_budget=2, watermark=False)
    yield engine
    asyncio.run(engine.aclose())


@pytest.mark.chatterbox
def test_nano_needs_its_own_t3_file(tiny_turbo_dir: Path) -> None:  # noqa: F811
    from app.engines.chatterbox.loading import load_model

    with pytest.raises(FileNotFoundError, match="t3_nano_v1.safetensors"):
        load_model("nano", tiny_turbo_dir, "cpu")


@pytest.mark.chatterbox
def test_nano_loads_as_turbo_with_its_own_backbone_name(nano) -> None:
    model = nano._model
    assert type(model).__name__ == "ChatterboxTurboTTS"
    assert model.t3.hp.llama_config_name == "GPT2_small"
    assert nano.capabilities.preset_fields == ("chunk_size", "first_chunk_size", "temperature")


@pytest.mark.chatterbox
def test_nano_gives_the_library_tokens_and_audio_through_the_scheduler(nano) -> None:
    import torch

    from app.engines.chatterbox import runtime

    voice = asyncio.run(nano.prepare_voice(None))
    params = SynthesisParams(preset=PRESETS["balanced"], seed=5)
    plan = runtime.Plan.build("nano", params)
    cond = runtime.request_cond(voice.data, plan)
    request = runtime.token_request(nano._model, "nano", TEXT, "en", cond, plan)
    stream = nano._scheduler.submit(request)
    stream.wait_for(1 << 30)
    s = plan.sampling
    torch.manual_seed(5)
    library = nano._model.t3.inference_turbo(
        cond, runtime.text_tokens(nano._model, "nano", TEXT, "en"), temperature=s.temperature,
        top_k=s.top_k, top_p=s.top_p, repetition_penalty=s.repetition_penalty)[0]
    assert stream.tokens == [int(t) for t in library if t < 6561] and len(stream.tokens) > 24

    async def speak() -> list:
        return [c async for c in nano.stream(TEXT, voice, params)]

    chunks = asyncio.run(speak())
    assert len(chunks) >= 2  # a chunk at 24 tokens, then the rest
    audio = np.concatenate([c.samples for c in chunks])
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
