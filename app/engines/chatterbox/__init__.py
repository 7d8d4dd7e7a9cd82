"""Chatterbox (chatterbox-tts 0.1.7) as a streaming engine: turbo, standard or multilingual.

Importing this package never imports torch or chatterbox: ``extra_installed()`` and
``cuda_available()`` let engine selection decide, and ``ChatterboxEngine`` loads the heavy
modules in ``load()``. Modules: ``engine`` (the contract, worker thread, admission),
``runtime`` (per-request glue), ``tokens`` (T3 sampling loops), ``decoder`` (streaming
S3Gen + HiFT), ``voices`` (per-voice conditioning), ``loading`` (checkpoints, device),
``tiny`` (random-weight test checkpoints).
"""

from __future__ import annotations

import importlib.util

from app.engines.chatterbox.engine import ChatterboxEngine, capabilities_for, split_sentences

__all__ = ["ChatterboxEngine", "capabilities_for", "cuda_available", "extra_installed",
           "split_sentences"]


def extra_installed() -> bool:
    """True when chatterbox-tts, torch and torchaudio can be imported (checked without
    importing them)."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("chatterbox", "torch", "torchaudio", "perth"))


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (this one imports torch)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch
    except Exception:  # a broken install is "no CUDA", not a crash at start-up
        return False
    return bool(torch.cuda.is_available())
