"""Loading a Chatterbox model family: device choice, local checkpoints or the Hub download.

``CHATTERBOX_CKPT_DIR`` set: the library's own ``from_local`` reads the directory. Unset:
``from_pretrained`` downloads from Hugging Face into ``HF_HOME``'s cache. A checkpoint may
carry ``t3_backbone_config.json`` (``{"name": ..., "config": {...}}``) to give its T3
backbone a configuration other than the library's built-in one (the tiny test
checkpoints use it); the library looks configurations up in a module-level dict, so the
override is applied only while the model is built, under a lock.

The multilingual tokenizer's constructor reaches the network twice in 0.1.7: it asks the
Hub for ``Cangjie5_TC.json`` (with ``cache_dir`` set to the checkpoint directory, so even
the file ``from_pretrained`` just downloaded there is not found; offline that is about 23 s
of retries) and ``spacy_pkuseg`` downloads its segmenter model, whose ``ConnectionError``
is not caught, so offline the whole load fails. While a multilingual model is built, the
converter reads ``Cangjie5_TC.json`` from the checkpoint directory when it is there, and a
segmenter that cannot be set up only disables Chinese word segmentation, as the library
already does when ``spacy_pkuseg`` is not installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BACKBONE_CONFIG_FILE = "t3_backbone_config.json"
FAMILIES = ("turbo", "standard", "multilingual", "nano")
NANO_T3_FILE = "t3_nano_v1.safetensors"
# Nano: the Turbo architecture on a GPT-2 small backbone (110M). chatterbox-tts 0.1.7 has
# no configuration for it, so it is registered here under its own name.
GPT2_SMALL = {
    "activation_function": "gelu_new", "attn_pdrop": 0.0, "embd_pdrop": 0.0,
    "resid_pdrop": 0.0, "bos_token_id": 50256, "eos_token_id": 50256,
    "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
    "n_ctx": 8196, "n_embd": 768, "hidden_size": 768, "n_head": 12, "n_layer": 12,
    "n_positions": 8196, "vocab_size": 50276,
}
NANO_BACKBONE = "GPT2_small"
DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}

CANGJIE_FILE = "Cangjie5_TC.json"

_CONFIG_LOCK = threading.Lock()
_TOKENIZER_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def resolve_device(setting: str) -> str:
    """``auto`` means CUDA when torch sees a GPU, else CPU; anything else is used as given."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


@contextlib.contextmanager
def backbone_config(name: str, config: dict[str, Any]) -> Iterator[None]:
    """Temporarily replace the library's backbone configuration ``name``."""
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    with _CONFIG_LOCK:
        saved = LLAMA_CONFIGS.get(name)
        LLAMA_CONFIGS[name] = dict(config)
        try:
            yield
        finally:
            if saved is None:
                LLAMA_CONFIGS.pop(name, None)
            else:
                LLAMA_CONFIGS[name] = saved


@contextlib.contextmanager
def offline_safe_cangjie() -> Iterator[None]:
    """While the block runs, the multilingual tokenizer builds an offline-safe converter."""
    from chatterbox.models.tokenizers import tokenizer as mtl

    base = mtl.ChineseCangjieConverter

    class LocalCangjieConverter(base):  # type: ignore[misc, valid-type]
        def _load_cangjie_mapping(self, model_dir: Any = None) -> None:
            local = Path(model_dir) / CANGJIE_FILE if model_dir is not None else None
            if local is None or not local.is_file():
                super()._load_cangjie_mapping(model_dir)
                return
            for entry in json.loads(local.read_text(encoding="utf-8")):
                word, code = entry.split("\t")[:2]
                self.word2cj[word] = code
                self.cj2word.setdefault(code, []).append(word)

        def _init_segmenter(self) -> None:
            try:
                super()._init_segmenter()
            except Exception as exc:  # spacy_pkuseg downloads its model on first use
                log.warning("Chinese word segmentation disabled: pkuseg failed (%s)", exc)
                self.segmenter = None

    with _TOKENIZER_LOCK:
        mtl.ChineseCangjieConverter = LocalCangjieConverter
        try:
            yield
        finally:
            mtl.ChineseCangjieConverter = base


def _model_class(family: str) -> Any:
    if family in ("turbo", "nano"):
        from chatterbox.tts_turbo import ChatterboxTurboTTS

        return ChatterboxTurboTTS
    if family == "standard":
        from chatterbox.tts import ChatterboxTTS

        return ChatterboxTTS
    if family == "multilingual":
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS

        return ChatterboxMultilingualTTS
    raise ValueError(f"unknown Chatterbox family {family!r}; expected one of {FAMILIES}")


def resolve_dtype(setting: str, device: str) -> str:
    """``auto``: bfloat16 on CUDA, float32 elsewhere; anything else as given."""
    if setting == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return DTYPES[setting]


def load_model(family: str, ckpt_dir: str | Path | None, device: str,
               dtype: str = "float32") -> Any:
    """The library's model object for ``family`` with its modules in eval mode on ``device``.

    ``dtype`` applies to T3 (the token loop's backbone, embeddings and heads); S3Gen, the
    voice encoder and sampling stay float32. TF32 matmuls are allowed on CUDA.
    """
    import torch

    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if family == "nano":
        model = _load_nano(ckpt_dir, device)
    elif family == "multilingual":
        with offline_safe_cangjie():
            model = _load(_model_class(family), ckpt_dir, device)
    else:
        model = _load(_model_class(family), ckpt_dir, device)
    dt = getattr(torch, resolve_dtype(dtype, device))
    if dt != torch.float32:
        model.t3.to(dtype=dt)
    return model


def _load_nano(ckpt_dir: str | Path | None, device: str) -> Any:
    """Nano from a local directory: Turbo's ``from_local`` with the GPT-2 small T3.

    Written out rather than patched into the library's loader, which hard-codes both the
    backbone name and the T3 file name. A ``t3_backbone_config.json`` in the directory
    gives the backbone other dimensions (its ``config``; the name stays Nano's), as for
    the other families' test checkpoints.
    """
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS, Conditionals
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    if ckpt_dir is None:
        raise FileNotFoundError("CHATTERBOX_MODEL=nano needs CHATTERBOX_CKPT_DIR")
    ckpt = Path(ckpt_dir)
    if not (ckpt / NANO_T3_FILE).is_file():
        raise FileNotFoundError(f"{ckpt / NANO_T3_FILE} is missing")
    config = GPT2_SMALL
    override = ckpt / BACKBONE_CONFIG_FILE
    if override.exists():  # a test checkpoint's smaller backbone, under Nano's own name
        config = json.loads(override.read_text())["config"]
    ve = VoiceEncoder()
    ve.load_state_dict(load_file(ckpt / "ve.safetensors"))
    ve.to(device).eval()
    with backbone_config(NANO_BACKBONE, config):
        t3 = T3(nano_hp())
    t3.load_state_dict(load_file(ckpt / NANO_T3_FILE))
    del t3.tfmr.wte
    t3.to(device).eval()
    s3gen = S3Gen(meanflow=True)
    s3gen.load_state_dict(load_file(ckpt / "s3gen_meanflow.safetensors"), strict=True)
    s3gen.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    conds = None
    if (ckpt / "conds.pt").exists():
        where = torch.device("cpu") if device in ("cpu", "mps") else None
        conds = Conditionals.load(ckpt / "conds.pt", map_location=where).to(device)
    return ChatterboxTurboTTS(t3, s3gen, ve, tokenizer, device, conds=conds)


def nano_hp() -> Any:
    """Turbo's T3 hyper-parameters with the GPT-2 small backbone."""
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = NANO_BACKBONE
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def _load(cls: Any, ckpt_dir: str | Path | None, device: str) -> Any:
    if ckpt_dir is None:
        return cls.from_pretrained(device=device)
    ckpt = Path(ckpt_dir)
    if not ckpt.is_dir():
        raise FileNotFoundError(f"CHATTERBOX_CKPT_DIR {ckpt} is not a directory")
    override = ckpt / BACKBONE_CONFIG_FILE
    if override.exists():
        spec = json.loads(override.read_text())
        with backbone_config(spec["name"], spec["config"]):
            return cls.from_local(ckpt, device)
    return cls.from_local(ckpt, device)
