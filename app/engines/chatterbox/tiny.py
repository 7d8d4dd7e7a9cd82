"""Tiny random-weight Chatterbox checkpoints of the real architectures, for tests and CPU runs.

The files are the ones the library's own ``from_local`` reads, so loading them exercises
the real loaders, modules and shapes; only the T3 backbone is shrunk (2 layers), through a
``t3_backbone_config.json`` that ``loading.py`` honours. S3Gen and the voice encoder keep
their full size (their constructors hard-code it).

Random weights never emit end-of-speech, so the builder shapes T3: the speech position
embeddings carry a large component along one direction before position ``eos_after`` and
the opposite one after it, and the EOS row of ``speech_head`` points along it, so EOS
comes after about ``eos_after`` tokens. A second direction, present at every position,
keeps the invalid speech tokens (start token, padding ids) from ever being sampled.
Turbo's GPT-2 has absolute positions over the whole sequence (conditioning and text
included), so its EOS position also moves with the text and prompt length.

The vocoder is voiced: a random f0 predictor outputs a few hundredths of a hertz, below
HiFT's 10 Hz voicing threshold, so every frame would be unvoiced noise and no seam in
the sine source could show. The builder sets the predictor's last (linear) layer so that
f0 is about 155 Hz plus 32 Hz times a fixed projection of its features, normalised on the
flow's own output: speech-range pitch (roughly 80-250 Hz) that varies with the mel.

The multilingual checkpoint has the files ``ChatterboxMultilingualTTS.from_local`` reads
(``ve.pt``, ``t3_mtl23ls_v2.safetensors``, ``s3gen.pt``, the grapheme tokenizer
``grapheme_mtl_merged_expanded_v1.json``, ``conds.pt``) plus a few-entry
``Cangjie5_TC.json``. Its T3 is the standard Llama T3 with the multilingual text vocabulary
(2454); its character-level tokenizer covers lowercase Latin letters, the combining marks
that NFKD leaves after accented letters, the Greek, Cyrillic, Hebrew, Arabic, Devanagari,
kana and Hangul jamo blocks, the Cangjie code tokens and the ``[xx]`` language tags of all
23 languages. Two layers are far fewer than the alignment analyzer's heads need (layers 9,
12 and 13), so the engine runs it without that analyzer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.engines.chatterbox.engine import MULTILINGUAL_LANGUAGES

TINY_LLAMA = {
    "vocab_size": 8,
    "max_position_embeddings": 4096,
    "hidden_size": 1024,  # the perceiver hard-codes 1024
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 16,
    "attn_implementation": "sdpa",
    "head_dim": 64,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "mlp_bias": False,
    "model_type": "llama",
    "num_key_value_heads": 16,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "use_cache": True,
}

TINY_GPT2 = {
    "activation_function": "gelu_new",
    "attn_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "resid_pdrop": 0.0,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 2048,
    "n_embd": 256,
    "hidden_size": 256,
    "n_head": 4,
    "n_layer": 2,
    "n_positions": 2048,
    "vocab_size": 50276,
}

MTL_TEXT_VOCAB = 2454  # T3Config.multilingual().text_tokens_dict_size
MTL_FILES = {  # what ChatterboxMultilingualTTS.from_local reads
    "ve": "ve.pt",
    "t3": "t3_mtl23ls_v2.safetensors",
    "s3gen": "s3gen.pt",
    "tokenizer": "grapheme_mtl_merged_expanded_v1.json",
}
_MTL_SCRIPTS = (  # (first, last) code points, inclusive
    (0x0300, 0x036F),  # combining marks: NFKD splits accented letters into base + mark
    (0x03B1, 0x03C9),  # Greek lowercase
    (0x0430, 0x044F),  # Cyrillic lowercase
    (0x05D0, 0x05EA),  # Hebrew letters
    (0x0621, 0x064A),  # Arabic letters
    (0x0900, 0x097F),  # Devanagari
    (0x1100, 0x11FF),  # Hangul jamo (Korean is decomposed before tokenizing)
    (0x3041, 0x3096),  # Hiragana
    (0x30A1, 0x30FA),  # Katakana
)
_CANGJIE = ["你\tonf", "好\tvnd", "我\thqi", "是\tamyo", "中\tl", "文\tyk"]

_CORPUS = (
    "Hello, thanks for calling. How can I help you today? Your appointment is confirmed "
    "for Tuesday at three thirty. Please hold while I check that for you. The quick brown "
    "fox jumps over the lazy dog. One two three four five six seven eight nine ten."
)


def reference_clip(seconds: float = 5.5, sr: int = 24000, seed: int = 0) -> np.ndarray:
    """A speech-like test clip: a gliding harmonic tone with syllable-rate envelope and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + seed) + 10 * rng.standard_normal()
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) ** 2
    x = 0.2 * voiced * envelope + 0.01 * rng.standard_normal(len(t))
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim)
    return v / np.linalg.norm(v)


def _shape_t3(t3, eos_from: int, positions, seed: int) -> None:
    """Make EOS likely from position ``eos_from`` on and invalid speech tokens impossible."""
    import torch

    rng = np.random.default_rng(seed + 1)
    dim = positions.shape[1]
    d_eos = torch.tensor(_unit(rng, dim), dtype=torch.float32)
    d_ok = torch.tensor(_unit(rng, dim), dtype=torch.float32)
    d_ok = d_ok - (d_ok @ d_eos) * d_eos
    d_ok = d_ok / d_ok.norm()
    big, gain = 60.0, 1.5
    with torch.no_grad():
        sign = torch.where(torch.arange(positions.shape[0]) >= eos_from, 1.0, -1.0)
        positions += big * sign[:, None] * d_eos[None] + big * d_ok[None]
        head = t3.speech_head.weight
        head[6561:] = -gain * d_ok  # start token and padding ids: never sampled
        head[6562] = gain * d_eos
        if t3.speech_head.bias is not None:
            t3.speech_head.bias[6561:] = 0.0


F0_CENTER_HZ = 155.0
F0_SPREAD_HZ = 32.0


def _voice_f0(s3gen, model, seed: int) -> None:
    """Make ``s3gen``'s f0 predictor output speech-range pitch on the flow's own mel.

    The statistics come from one short flow run of the loaded model (same weights) on the
    built-in voice's own tokens, so f0 is centred on what the vocoder will really see.
    """
    import torch

    from app.engines.chatterbox.decoder import flow_mel

    rng = torch.Generator().manual_seed(seed + 2)
    ref = dict(model.conds.gen)
    ref["prompt_token"] = torch.atleast_2d(ref["prompt_token"])[:, :10]
    ref["prompt_feat"] = ref["prompt_feat"][:, :20]
    tokens = torch.atleast_2d(model.conds.gen["prompt_token"])[:, 10:70]
    z = torch.randn(1, 80, 2 * (10 + tokens.shape[1]), generator=rng)
    with torch.inference_mode():
        mel = flow_mel(model.s3gen, ref, tokens, z, meanflow=model.s3gen.meanflow,
                       n_timesteps=2)
        feats = model.s3gen.mel2wav.f0_predictor.condnet(mel)[0]  # (512, frames)
    direction = torch.randn(feats.shape[0], generator=rng)
    direction = direction / direction.norm()
    proj = direction @ feats
    mean, std = float(proj.mean()), float(proj.std())
    classifier = s3gen.mel2wav.f0_predictor.classifier
    with torch.no_grad():
        classifier.weight.copy_((F0_SPREAD_HZ / std) * direction[None])
        classifier.bias.fill_(F0_CENTER_HZ - F0_SPREAD_HZ * mean / std)


def _mtl_vocab() -> tuple[list[str], list[str]]:
    """(special tokens, single characters) of the tiny multilingual grapheme tokenizer."""
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]", "[START]"]
    specials += [f"[{lang}]" for lang in MULTILINGUAL_LANGUAGES]
    specials += [f"[cj_{c}]" for c in "abcdefghijklmnopqrstuvwxyz."]
    chars = set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-;:()ßæøœıçğşþðłđ¿¡、，。？！")
    for first, last in _MTL_SCRIPTS:
        chars.update(chr(c) for c in range(first, last + 1))
    return specials, sorted(chars)


def _write_tokenizer(family: str, out: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    if family == "multilingual":
        specials, chars = _mtl_vocab()
        vocab = {s: i for i, s in enumerate(specials + chars)}
        assert len(vocab) <= MTL_TEXT_VOCAB, len(vocab)
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
        tok.add_special_tokens(specials)  # matched whole, before the character split
        tok.save(str(out / MTL_FILES["tokenizer"]))
        (out / "Cangjie5_TC.json").write_text(json.dumps(_CANGJIE, ensure_ascii=False),
                                               encoding="utf-8")
        return

    if family == "turbo":
        from tokenizers import ByteLevelBPETokenizer
        from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]

        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator([_CORPUS] * 4, vocab_size=400, min_frequency=1,
                                special_tokens=["<|endoftext|>"])
        tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                bos_token="<|endoftext|>", unk_token="<|endoftext|>")
        tok.save_pretrained(str(out))
        return
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]", "[START]"]
    chars = sorted(set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-;:()[]"
    ))
    vocab = {s: i for i, s in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.add_special_tokens(specials)
    tok.save(str(out / "tokenizer.json"))


def build_tiny_checkpoint(
    family: str, out_dir: str | Path, *, eos_after: int = 48, seed: int = 0,
    clip_seconds: float = 5.5,
) -> Path:
    """Write a loadable tiny checkpoint for ``family`` (``turbo``, ``standard`` or
    ``multilingual``) to ``out_dir``.

    Returns the directory. Takes a few seconds and about 1.2 GB of disk (S3Gen is full size).
    """
    import soundfile as sf
    import torch
    from safetensors.torch import save_file

    from app.engines.chatterbox.loading import BACKBONE_CONFIG_FILE, load_model

    if family not in ("turbo", "standard", "multilingual"):
        raise ValueError("tiny checkpoints exist for turbo, standard and multilingual")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder

    from app.engines.chatterbox.loading import backbone_config

    turbo = family == "turbo"
    mtl = family == "multilingual"
    name = "GPT2_medium" if turbo else "Llama_520M"
    cfg = TINY_GPT2 if turbo else TINY_LLAMA
    (out / BACKBONE_CONFIG_FILE).write_text(json.dumps({"name": name, "config": cfg}))

    def state(module) -> dict:
        return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}

    s3gen = S3Gen(meanflow=turbo)
    if mtl:  # the multilingual loader reads plain torch state dicts for these two
        torch.save(state(VoiceEncoder()), out / MTL_FILES["ve"])
        torch.save(state(s3gen), out / MTL_FILES["s3gen"])
    else:
        save_file(state(VoiceEncoder()), str(out / "ve.safetensors"))
        save_file(state(s3gen),
                  str(out / ("s3gen_meanflow.safetensors" if turbo else "s3gen.safetensors")))
    with backbone_config(name, cfg):
        if turbo:
            hp = T3Config(text_tokens_dict_size=50276)
            hp.llama_config_name = "GPT2_medium"
            hp.speech_tokens_dict_size = 6563
            hp.input_pos_emb = None
            hp.speech_cond_prompt_len = 375
            hp.use_perceiver_resampler = False
            hp.emotion_adv = False
            t3 = T3(hp)
        elif mtl:
            t3 = T3(T3Config.multilingual())
        else:
            t3 = T3()
    t3_names = {"turbo": "t3_turbo_v1.safetensors", "standard": "t3_cfg.safetensors",
                "multilingual": MTL_FILES["t3"]}
    t3_file = out / t3_names[family]
    save_file(state(t3), str(t3_file))
    _write_tokenizer(family, out)

    # The built-in voice: the library's own prepare_conditionals on a generated clip.
    clip_path = out / "reference.wav"
    sf.write(str(clip_path), reference_clip(clip_seconds, seed=seed), 24000)
    model = load_model(family, out, "cpu")
    model.prepare_conditionals(str(clip_path), exaggeration=0.5)
    model.conds.save(out / "conds.pt")

    _voice_f0(s3gen, model, seed)
    if mtl:
        torch.save(state(s3gen), out / MTL_FILES["s3gen"])
    else:
        save_file(state(s3gen),
                  str(out / ("s3gen_meanflow.safetensors" if turbo else "s3gen.safetensors")))

    # Shape EOS now that the conditioning length is known (Turbo positions are absolute).
    if turbo:
        len_cond = 1 + model.conds.t3.cond_prompt_speech_tokens.shape[1]
        eos_from = len_cond + 24 + eos_after  # about 24 text tokens in a test sentence
        _shape_t3(t3, eos_from, t3.tfmr.wpe.weight, seed)
    else:
        _shape_t3(t3, eos_after, t3.speech_pos_emb.emb.weight, seed)
    save_file(state(t3), str(t3_file))
    return out
