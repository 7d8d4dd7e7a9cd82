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
FAMILIES = ("turbo", "standard", "multilingual")

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
    if family == "turbo":
        from chatterbox.tts_turbo import ChatterboxTurboTTS

        return ChatterboxTurboTTS
    if family == "standard":
        from chatterbox.tts import ChatterboxTTS

        return ChatterboxTTS
    if family == "multilingual":
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS

        return ChatterboxMultilingualTTS
    raise ValueError(f"unknown Chatterbox family {family!r}; expected one of {FAMILIES}")


def load_model(family: str, ckpt_dir: str | Path | None, device: str) -> Any:
    """The library's model object for ``family`` with its modules in eval mode on ``device``."""
    cls = _model_class(family)
    if family == "multilingual":
        with offline_safe_cangjie():
            return _load(cls, ckpt_dir, device)
    return _load(cls, ckpt_dir, device)


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
