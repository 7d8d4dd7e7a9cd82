"""Random-weight Chatterbox checkpoints at the real sizes, for capacity measurements.

A step's cost does not depend on the weights' values, so a checkpoint with random weights
and the real shapes gives true per-step and per-decode times without downloading anything:
Turbo (GPT-2 medium T3, 350M, with the full mean-flow S3Gen), standard (the 0.5B Llama
T3 with the full S3Gen) and Nano (the Turbo architecture on GPT-2 small, 110M, saved as
``t3_nano_v1.safetensors`` and loaded with ``CHATTERBOX_MODEL=nano``). Random weights say
nothing about when speech ends, so measurements run with a fixed token count
(``TokenRequest.fixed_tokens``, end-of-speech masked). Text tokenizers are the small ones
of the tiny checkpoints: text length, not vocabulary, is what costs.
"""

from __future__ import annotations

from pathlib import Path

FULL_SIZE_FAMILIES = ("turbo", "standard", "nano")
T3_FILES = {"turbo": "t3_turbo_v1.safetensors", "standard": "t3_cfg.safetensors",
            "nano": "t3_nano_v1.safetensors"}


def build_fullsize_checkpoint(family: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Write a loadable random-weight checkpoint of ``family`` at its real size.

    About 2.5 GB (Turbo), 3 GB (standard) or 1.6 GB (Nano) of disk; a minute or two of CPU.
    """
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder
    from safetensors.torch import save_file

    from app.engines.chatterbox.loading import (
        GPT2_SMALL,
        NANO_BACKBONE,
        backbone_config,
        load_model,
        nano_hp,
    )
    from app.engines.chatterbox.tiny import _write_tokenizer, reference_clip

    if family not in FULL_SIZE_FAMILIES:
        raise ValueError(f"full-size random checkpoints exist for {FULL_SIZE_FAMILIES}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    turbo_like = family in ("turbo", "nano")

    def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}

    save_file(state(VoiceEncoder()), str(out / "ve.safetensors"))
    s3gen_file = "s3gen_meanflow.safetensors" if turbo_like else "s3gen.safetensors"
    save_file(state(S3Gen(meanflow=turbo_like)), str(out / s3gen_file))
    if family == "nano":
        with backbone_config(NANO_BACKBONE, GPT2_SMALL):
            t3 = T3(nano_hp())
    elif family == "turbo":
        hp = T3Config(text_tokens_dict_size=50276)
        hp.llama_config_name = "GPT2_medium"
        hp.speech_tokens_dict_size = 6563
        hp.input_pos_emb = None
        hp.speech_cond_prompt_len = 375
        hp.use_perceiver_resampler = False
        hp.emotion_adv = False
        t3 = T3(hp)
    else:
        t3 = T3()
    save_file(state(t3), str(out / T3_FILES[family]))
    del t3
    _write_tokenizer("turbo" if turbo_like else "standard", out)
    clip = out / "reference.wav"
    sf.write(str(clip), reference_clip(10.0, seed=seed), 24000)
    model = load_model(family, out, "cpu")
    model.prepare_conditionals(str(clip), exaggeration=0.5)
    model.conds.save(out / "conds.pt")
    return out
