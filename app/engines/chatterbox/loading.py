"""Loading a Chatterbox model family: device choice, local checkpoints or the Hub download.

``CHATTERBOX_CKPT_DIR`` set: the library's own ``from_local`` reads the directory. Unset:
``from_pretrained`` downloads from Hugging Face into ``HF_HOME``'s cache. A checkpoint may
carry ``t3_backbone_config.json`` (``{"name": ..., "config": {...}}``) to give its T3
backbone a configuration other than the library's built-in one (the tiny test
checkpoints use it); the library looks configurations up in a module-level dict, so the
override is applied only while the model is built, under a lock.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BACKBONE_CONFIG_FILE = "t3_backbone_config.json"
FAMILIES = ("turbo", "standard", "multilingual")

_CONFIG_LOCK = threading.Lock()


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
