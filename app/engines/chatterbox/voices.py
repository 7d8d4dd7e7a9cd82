"""Voice conditioning: prepared once per voice, kept per voice, never in ``model.conds``.

``prepare_conditionals`` in the library reads a file and overwrites the model's shared
``conds``; with several voices on one model that leaks one caller's voice into another's
request. Here the same computation runs on a clip already in memory and returns a
``Conditionals`` object that the caller keeps (the voice cache holds it in a handle).
Exaggeration only changes the T3 emotion value, so each request gets a fresh ``T3Cond``
that shares the voice's tensors; T3 caches the prompt embedding on that per-request object,
never on the voice's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

S3GEN_SR = 24000
S3_SR = 16000


def prepare_conditionals(model: Any, family: str, samples: np.ndarray, sample_rate: int) -> Any:
    """The library's ``prepare_conditionals`` for an in-memory clip, without touching the model.

    ``samples`` is float32 mono; it is resampled to 24 kHz (S3Gen) and 16 kHz (tokenizer
    and voice encoder) inside, as the library does after ``librosa.load``.
    """
    import librosa
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    conditionals_cls = _conditionals_cls(family)
    wav = np.asarray(samples, dtype=np.float32)
    if sample_rate != S3GEN_SR:
        wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=S3GEN_SR)
    if family == "turbo":
        if len(wav) / S3GEN_SR <= 5.0:
            raise ValueError("Turbo needs a reference clip longer than 5 seconds")
        wav = model.norm_loudness(wav, S3GEN_SR)
    ref_16k = librosa.resample(wav, orig_sr=S3GEN_SR, target_sr=S3_SR)
    device = model.device
    with torch.inference_mode():
        ref_dict = model.s3gen.embed_ref(wav[: model.DEC_COND_LEN], S3GEN_SR, device=device)
        plen = model.t3.hp.speech_cond_prompt_len
        prompt_tokens, _ = model.s3gen.tokenizer.forward(
            [ref_16k[: model.ENC_COND_LEN]], max_len=plen
        )
        prompt_tokens = torch.atleast_2d(prompt_tokens).to(device)
        ve = torch.from_numpy(model.ve.embeds_from_wavs([ref_16k], sample_rate=S3_SR))
        ve = ve.mean(dim=0, keepdim=True).to(device)
        t3_cond = T3Cond(
            speaker_emb=ve,
            cond_prompt_speech_tokens=prompt_tokens,
            emotion_adv=0.5 * torch.ones(1, 1, 1),
        ).to(device=device)
    return conditionals_cls(t3_cond, _cast_ref(model, ref_dict))


def _cast_ref(model: Any, ref: dict[str, Any]) -> dict[str, Any]:
    """Device and dtype casting that ``S3Token2Mel.forward`` does on every call, done once."""
    out = {}
    for key, value in ref.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if torch.is_tensor(value):
            if value.is_floating_point():
                value = value.to(device=model.s3gen.device, dtype=model.s3gen.dtype)
            else:
                value = value.to(device=model.s3gen.device)
        out[key] = value
    return out


def builtin_conditionals(model: Any) -> Any:
    """The checkpoint's own voice (``conds.pt``) as a private copy, detached from the model."""
    if model.conds is None:
        return None
    conds = model.conds
    copy = type(conds)(_fresh_t3_cond(conds.t3, None), _cast_ref(model, dict(conds.gen)))
    return copy


def request_t3_cond(voice_conds: Any, exaggeration: float | None) -> Any:
    """A per-request ``T3Cond`` for the voice, with ``exaggeration`` when the family uses it."""
    return _fresh_t3_cond(voice_conds.t3, exaggeration)


def _fresh_t3_cond(cond: Any, exaggeration: float | None) -> Any:
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    emotion = cond.emotion_adv
    if exaggeration is not None:
        device = cond.speaker_emb.device
        emotion = exaggeration * torch.ones(1, 1, 1, device=device)
    return T3Cond(
        speaker_emb=cond.speaker_emb,
        clap_emb=cond.clap_emb,
        cond_prompt_speech_tokens=cond.cond_prompt_speech_tokens,
        cond_prompt_speech_emb=None,  # T3 embeds the prompt on this per-request object
        emotion_adv=emotion,
    )


def _conditionals_cls(family: str) -> Any:
    if family == "turbo":
        from chatterbox.tts_turbo import Conditionals
    elif family == "multilingual":
        from chatterbox.mtl_tts import Conditionals
    else:
        from chatterbox.tts import Conditionals
    return Conditionals
