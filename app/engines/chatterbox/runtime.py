"""Per-request glue between the engine and the torch modules (imported on the worker only).

``Plan`` turns a preset into what the family uses; ``token_request`` tokenizes one sentence
as the library's ``generate`` does and builds what the step scheduler needs (its own
seeded generator included); ``new_scheduler`` starts the model's scheduler;
``token_stream`` is the one-stream generator of the same loop (tests, benchmarks);
``new_decoder`` builds the streaming S3Gen state; ``install_alignment`` sets up the
multilingual alignment analyzer once per model.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from app.engines.base import SynthesisParams
from app.engines.chatterbox.decoder import LOOKAHEAD, StreamingDecoder
from app.engines.chatterbox.prompt_cache import PromptCache
from app.engines.chatterbox.scheduler import (
    AttentionSpy,
    StepScheduler,
    TokenRequest,
)
from app.engines.chatterbox.tokens import Sampling, standard_tokens, turbo_tokens
from app.engines.chatterbox.vocoder import HOLD_FRAMES
from app.engines.chatterbox.voices import request_t3_cond

TURBO_DECODER_STEPS = 2
TURBO_LIKE = ("turbo", "nano")


@dataclass(frozen=True)
class Plan:
    """What one request runs with, copied from its preset at the start."""

    family: str
    sampling: Sampling
    exaggeration: float | None
    decoder_steps: int
    seed: int

    @classmethod
    def build(cls, family: str, params: SynthesisParams, max_tokens: int | None = None) -> Plan:
        preset = params.preset
        turbo = family in TURBO_LIKE
        sampling = Sampling.for_family("turbo" if turbo else family, preset.temperature,
                                       preset.cfg_weight)
        if max_tokens is not None:
            sampling = dataclasses.replace(sampling, max_new_tokens=max_tokens)
        if isinstance(params.extra.get("top_p"), float):  # a client's nucleus sampling
            sampling = dataclasses.replace(sampling, top_p=params.extra["top_p"])
        # Every stream draws from its own generators seeded with this (never torch's global
        # one), so a seed gives the library's tokens whatever else runs.
        seed = params.seed if params.seed is not None else random.randrange(2**31)
        return cls(
            family=family,
            sampling=sampling,
            exaggeration=None if turbo else preset.exaggeration,
            decoder_steps=TURBO_DECODER_STEPS if turbo else preset.decoder_steps,
            seed=seed,
        )


def request_cond(voice_conds: Any, plan: Plan) -> Any:
    return request_t3_cond(voice_conds, plan.exaggeration)


def _punc_norm(family: str) -> Any:
    if family in TURBO_LIKE:
        from chatterbox.tts_turbo import punc_norm
    elif family == "multilingual":
        from chatterbox.mtl_tts import punc_norm
    else:
        from chatterbox.tts import punc_norm
    return punc_norm


def text_tokens(model: Any, family: str, text: str, language: str) -> torch.Tensor:
    """(1, L) text tokens exactly as the family's ``generate`` builds them (one CFG row)."""
    text = _punc_norm(family)(text)
    if family in TURBO_LIKE:
        ids = model.tokenizer(text, return_tensors="pt", padding=True, truncation=True)
        return ids.input_ids.to(model.device)
    if family == "multilingual":
        tokens = model.tokenizer.text_to_tokens(text, language_id=language.lower())
    else:
        tokens = model.tokenizer.text_to_tokens(text)
    hp = model.t3.hp
    tokens = F.pad(tokens, (1, 0), value=hp.start_text_token)
    tokens = F.pad(tokens, (0, 1), value=hp.stop_text_token)
    return tokens.to(model.device)


def token_generator(device: Any, seed: int) -> torch.Generator:
    """The stream's sampling generator: on the model's device, as the library's global
    generator is after ``torch.manual_seed(seed)``, so the draws are the same."""
    return torch.Generator(device=device).manual_seed(seed)


def token_stream(
    model: Any,
    family: str,
    text: str,
    language: str,
    t3_cond: Any,
    plan: Plan,
    stop: threading.Event,
    alignment: Any = None,
) -> Iterator[int]:
    tokens = text_tokens(model, family, text, language)
    generator = token_generator(model.t3.device, plan.seed)
    if family in TURBO_LIKE:
        return turbo_tokens(model.t3, t3_cond, tokens, plan.sampling, stop, generator)
    analyzer = None
    if alignment is not None:
        len_cond = _cond_length(model.t3, t3_cond)
        analyzer = request_analyzer(alignment, len_cond, tokens.shape[1])
    return standard_tokens(model.t3, t3_cond, tokens, plan.sampling, stop, analyzer,
                           generator)


def token_request(
    model: Any, family: str, text: str, language: str, t3_cond: Any, plan: Plan,
    *, fixed_tokens: int | None = None, greedy: bool = False,
) -> TokenRequest:
    """What the scheduler needs for one sentence; the stream's generator is seeded here."""
    tokens = text_tokens(model, family, text, language)
    analyzer = None
    if family == "multilingual" and _has_alignment_heads(model.t3):
        analyzer = request_analyzer(_bare_analyzer(model.t3), _cond_length(model.t3, t3_cond),
                                    tokens.shape[1])
    generator = token_generator(model.t3.device, plan.seed)
    return TokenRequest(t3_cond, tokens, plan.sampling, generator=generator,
                        analyzer=analyzer, greedy=greedy, fixed_tokens=fixed_tokens)


def new_scheduler(model: Any, family: str, prompt_cache_mb: int = 0) -> StepScheduler:
    """The model's step scheduler; multilingual with alignment heads gets an attention spy.

    ``prompt_cache_mb``: the bound of the voices' conditioning-prefix cache (0 = off)."""
    spy = None
    if family == "multilingual" and _has_alignment_heads(model.t3):
        from chatterbox.models.t3.inference.alignment_stream_analyzer import LLAMA_ALIGNED_HEADS

        spy = AttentionSpy(model.t3.tfmr, list(LLAMA_ALIGNED_HEADS))
    return StepScheduler(model.t3, family, spy=spy,
                         prompt_cache=PromptCache.from_megabytes(prompt_cache_mb))


@dataclass(frozen=True)
class DecoderTuning:
    """The streaming decoder's latency/fidelity trade, from settings (defaults: the decoder's).

    ``context_tokens`` None re-reads the whole sentence on every flow run.
    """

    lookahead: int = LOOKAHEAD
    hold_frames: int = HOLD_FRAMES
    context_tokens: int | None = None


def new_decoder(model: Any, voice_conds: Any, plan: Plan,
                tuning: DecoderTuning = DecoderTuning()) -> StreamingDecoder:
    return StreamingDecoder(
        model.s3gen,
        voice_conds.gen,
        meanflow=plan.family in TURBO_LIKE,
        n_timesteps=plan.decoder_steps,
        seed=plan.seed,
        lookahead=tuning.lookahead,
        context_tokens=tuning.context_tokens,
        vocoder={"hold_frames": tuning.hold_frames},
    )


# --- multilingual alignment analyzer ---
def install_alignment(t3: Any) -> Any:
    """One analyzer whose hooks feed every request's copy; None if the backbone is too small.

    The library builds a new analyzer per ``inference`` call and never removes its hooks,
    so they pile up. Here the hooks are installed once; each request gets a shallow copy
    with fresh state that reads the same attention buffer. Steps of different streams never
    overlap (one worker thread), so the buffer always holds the current step's attention.
    """
    from chatterbox.models.t3.inference.alignment_stream_analyzer import (
        LLAMA_ALIGNED_HEADS,
        AlignmentStreamAnalyzer,
    )

    if t3.cfg.num_hidden_layers <= max(layer for layer, _ in LLAMA_ALIGNED_HEADS):
        return None
    return AlignmentStreamAnalyzer(
        t3.tfmr, None, text_tokens_slice=(0, 1), alignment_layer_idx=9,
        eos_idx=t3.hp.stop_speech_token,
    )


def _has_alignment_heads(t3: Any) -> bool:
    from chatterbox.models.t3.inference.alignment_stream_analyzer import LLAMA_ALIGNED_HEADS

    return bool(t3.cfg.num_hidden_layers > max(layer for layer, _ in LLAMA_ALIGNED_HEADS))


def _bare_analyzer(t3: Any) -> Any:
    """An analyzer without hooks: the scheduler's ``AttentionSpy`` feeds it its own row."""
    from chatterbox.models.t3.inference.alignment_stream_analyzer import (
        AlignmentStreamAnalyzer,
    )

    analyzer = AlignmentStreamAnalyzer.__new__(AlignmentStreamAnalyzer)
    analyzer.eos_idx = t3.hp.stop_speech_token
    analyzer.last_aligned_attns = []
    return analyzer


def request_analyzer(shared: Any, len_cond: int, text_len: int) -> Any:
    analyzer = copy.copy(shared)  # shares last_aligned_attns, which the hooks fill
    i, j = len_cond, len_cond + text_len
    analyzer.text_tokens_slice = (i, j)
    analyzer.alignment = torch.zeros(0, j - i)
    analyzer.curr_frame_pos = 0
    analyzer.text_position = 0
    analyzer.started = False
    analyzer.started_at = None
    analyzer.complete = False
    analyzer.completed_at = None
    analyzer.generated_tokens = []
    return analyzer


def _cond_length(t3: Any, t3_cond: Any) -> int:
    with torch.inference_mode():
        return int(t3.prepare_conditioning(t3_cond).shape[1])
