"""Speech-token generators: the T3 sampling loops of chatterbox-tts 0.1.7, one token at a time.

The library's ``T3.inference`` / ``T3.inference_turbo`` run to the end before returning.
These generators make the same calls in the same order (so a seeded run samples the same
tokens as the library), but yield each valid speech token as soon as it is sampled and
check a stop event before every step, so a closed stream stops within one step.

Sampling draws from the stream's own ``torch.Generator`` (on the model's device), never
from torch's global one: seeded like the library's global generator it gives the
library's tokens, and streams that interleave (or a vocoder that draws noise between
steps) cannot shift each other's samples.

Each step runs in its own ``torch.inference_mode()`` block instead of one block around the
generator: generators of different streams interleave on the worker thread, and a
context manager held open across ``yield`` would be restored out of order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

SPEECH_VOCAB = 6561  # valid speech tokens are below this; 6561 = start, 6562 = stop


@dataclass(frozen=True)
class Sampling:
    """Sampling options of one request (library defaults per family in ``for_family``)."""

    temperature: float
    cfg_weight: float = 0.5
    min_p: float = 0.05
    top_p: float = 1.0
    top_k: int = 1000
    repetition_penalty: float = 1.2
    max_new_tokens: int = 1000

    @classmethod
    def for_family(cls, family: str, temperature: float, cfg_weight: float) -> Sampling:
        if family == "turbo":  # ChatterboxTurboTTS.generate defaults; no CFG, no min-p
            return cls(temperature, cfg_weight=0.0, min_p=0.0, top_p=0.95, top_k=1000)
        if family == "multilingual":
            return cls(temperature, cfg_weight=cfg_weight, repetition_penalty=2.0)
        return cls(temperature, cfg_weight=cfg_weight)


def standard_tokens(
    t3: Any,
    t3_cond: Any,
    text_tokens: torch.Tensor,
    sampling: Sampling,
    stop: threading.Event,
    analyzer: Any = None,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """The standard / multilingual T3 loop (``T3.inference``), CFG batch of two when w > 0.

    ``text_tokens`` is (1, L) with start and stop text tokens already added.
    """
    hp = t3.hp
    cfg = sampling.cfg_weight
    guided = cfg > 0.0
    with torch.inference_mode():
        text = text_tokens.to(dtype=torch.long, device=t3.device)
        if guided:
            text = torch.cat([text, text], dim=0)
        start = hp.start_speech_token * torch.ones_like(text[:, :1])
        embeds, _ = t3.prepare_input_embeds(
            t3_cond=t3_cond, text_tokens=text, speech_tokens=start, cfg_weight=cfg
        )
        bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=embeds.device)
        bos_embed = t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)
        if guided:
            bos_embed = torch.cat([bos_embed, bos_embed])
        out = t3.tfmr(inputs_embeds=torch.cat([embeds, bos_embed], dim=1), use_cache=True)
        past = out.past_key_values
        # The library projects the whole prefill; a one-row matmul can round differently.
        logits_all = t3.speech_head(out[0])[:, -1, :]
        generated = bos.clone()
        rep = RepetitionPenaltyLogitsProcessor(penalty=float(sampling.repetition_penalty))
        min_p = MinPLogitsWarper(min_p=sampling.min_p)
        top_p = TopPLogitsWarper(top_p=sampling.top_p)

    for i in range(sampling.max_new_tokens):
        if stop.is_set():
            return
        with torch.inference_mode():
            if guided:
                cond, uncond = logits_all[0:1], logits_all[1:2]
                w = torch.as_tensor(cfg, device=cond.device, dtype=cond.dtype)
                logits = cond + w * (cond - uncond)
            else:
                logits = logits_all[0:1]
            if analyzer is not None:
                logits = analyzer.step(logits, next_token=generated[0, -1].item())
            ids: Any = generated[:1]
            logits = rep(ids, logits)
            if sampling.temperature != 1.0:
                logits = logits / sampling.temperature
            logits = top_p(ids, min_p(ids, logits))
            token = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1,
                                      generator=generator)
            generated = torch.cat([generated, token], dim=1)
            value = int(token.item())
            if value == hp.stop_speech_token:
                return
            embed = t3.speech_emb(token) + t3.speech_pos_emb.get_fixed_embedding(i + 1)
            if guided:
                embed = torch.cat([embed, embed])
        if value < SPEECH_VOCAB:
            yield value
        if stop.is_set():
            return
        with torch.inference_mode():
            out = t3.tfmr(inputs_embeds=embed, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits_all = t3.speech_head(out[0])[:, -1, :]


def turbo_tokens(
    t3: Any,
    t3_cond: Any,
    text_tokens: torch.Tensor,
    sampling: Sampling,
    stop: threading.Event,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """The Turbo T3 loop (``T3.inference_turbo``): batch of one, GPT-2 positions, no CFG.

    Processor order as in the library: temperature, top-k, top-p, repetition penalty.
    """
    hp = t3.hp
    procs = LogitsProcessorList()
    if sampling.temperature > 0 and sampling.temperature != 1.0:
        procs.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k > 0:
        procs.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        procs.append(TopPLogitsWarper(sampling.top_p))
    if sampling.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))

    with torch.inference_mode():
        text = text_tokens.to(device=t3.device)
        start = hp.start_speech_token * torch.ones_like(text[:, :1])
        embeds, _ = t3.prepare_input_embeds(
            t3_cond=t3_cond, text_tokens=text, speech_tokens=start, cfg_weight=0.0
        )
        out = t3.tfmr(inputs_embeds=embeds, use_cache=True)
        past = out.past_key_values
        logits = t3.speech_head(out[0][:, -1:])[:, -1, :]
        history = start

    # The library's loop body runs at most max_new_tokens times after the first sample.
    for step in range(sampling.max_new_tokens + 1):
        if stop.is_set():
            return
        with torch.inference_mode():
            processed = procs(history, logits)
            if step > 0 and torch.all(processed == -float("inf")):
                return
            token = torch.multinomial(F.softmax(processed, dim=-1), num_samples=1,
                                      generator=generator)
            history = token if step == 0 else torch.cat([history, token], dim=1)
            value = int(token.item())
        if step > 0 and value == hp.stop_speech_token:
            return
        if value < SPEECH_VOCAB:
            yield value
        if stop.is_set() or step == sampling.max_new_tokens:
            return
        with torch.inference_mode():
            out = t3.tfmr(inputs_embeds=t3.speech_emb(token), past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = t3.speech_head(out[0])[:, -1, :]
