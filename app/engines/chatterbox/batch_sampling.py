"""Per-row sampling for the step scheduler: each stream's own options and its own generator.

Rows that share their options (the same preset on the same family, the common case) are
processed as one batch by transformers' own logits processors, in the library's order, so
a row gets the values it would get alone: every processor works row by row (sort, cumsum,
softmax and gather/scatter along the vocabulary only). The repetition penalty reads each
row's history from one (streams, capacity) tensor whose unused tail repeats a token already
in the history, which gather/scatter treat exactly like the row's own unpadded history.

Sampling reproduces ``torch.multinomial(probs, 1, generator=g)`` for one row: for a single
sample torch draws ``q ~ Exp(1)`` over the vocabulary from the generator and takes
``argmax(probs / q)``. Each row fills its ``q`` from its own stream's generator (so a seed
gives the library's tokens and no stream's draws depend on who else is in the batch); the
division and argmax then run once for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from app.engines.chatterbox.tokens import Sampling

SPEECH_VOCAB = 6561  # valid speech tokens are below this; 6561 = start, 6562 = stop


@dataclass(frozen=True)
class RowOptions:
    """What decides how a row's logits are processed: rows with equal options batch."""

    turbo: bool
    sampling: Sampling
    greedy: bool = False  # argmax instead of a draw (tests); no generator is used
    fixed_length: bool = False  # end-of-speech and invalid ids masked (benchmarks)


def processors(options: RowOptions) -> Any:
    """The library's processors for a family, in the library's order."""
    s = options.sampling
    if options.turbo:  # T3.inference_turbo: temperature, top-k, top-p, repetition penalty
        procs = LogitsProcessorList()
        if s.temperature > 0 and s.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(s.temperature))
        if s.top_k > 0:
            procs.append(TopKLogitsWarper(s.top_k))
        if s.top_p < 1.0:
            procs.append(TopPLogitsWarper(s.top_p))
        if s.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(s.repetition_penalty))
        return procs
    # T3.inference: repetition penalty, temperature, min-p, top-p
    rep: Any = RepetitionPenaltyLogitsProcessor(penalty=float(s.repetition_penalty))
    min_p: Any = MinPLogitsWarper(min_p=s.min_p)
    top_p: Any = TopPLogitsWarper(top_p=s.top_p)
    temperature = s.temperature

    def standard(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        logits = rep(ids, logits)
        if temperature != 1.0:
            logits = logits / temperature
        return top_p(ids, min_p(ids, logits))

    return standard


class RowSampler:
    """Processes and samples a batch of rows that may have different options."""

    def __init__(self) -> None:
        self._procs: dict[RowOptions, Any] = {}

    def process(self, options: list[RowOptions], history: torch.Tensor, logits: torch.Tensor
                ) -> torch.Tensor:
        """Processed logits (rows, vocab); ``history`` is (rows, capacity) token ids."""
        out = torch.empty_like(logits)
        groups: dict[RowOptions, list[int]] = {}
        for row, opt in enumerate(options):
            groups.setdefault(opt, []).append(row)
        for opt, rows in groups.items():
            procs = self._procs.get(opt)
            if procs is None:
                procs = self._procs[opt] = processors(opt)
            if len(rows) == len(options):
                scores, ids = logits, history
            else:
                index = torch.tensor(rows, device=logits.device)
                scores, ids = logits.index_select(0, index), history.index_select(0, index)
            if opt.fixed_length:
                scores = scores.clone()
                scores[:, SPEECH_VOCAB:] = -float("inf")
            processed = procs(ids, scores)
            if len(rows) == len(options):
                out = processed
            else:
                out[index] = processed
        return out

    @staticmethod
    def sample(options: list[RowOptions], generators: list[torch.Generator | None],
               processed: torch.Tensor) -> torch.Tensor:
        """(rows,) token ids: one draw per row from that row's generator."""
        probs = torch.softmax(processed, dim=-1)
        q = torch.empty_like(probs)
        for row, (opt, gen) in enumerate(zip(options, generators, strict=True)):
            if opt.greedy:
                q[row] = 1.0
            else:
                q[row].exponential_(1, generator=gen)
        return (probs / q).argmax(dim=-1)
