"""The step scheduler: one thread per model runs every active stream's next token in one forward.

A stream joins with ``submit`` and gets a ``TokenStream`` handle. A prefill thread beside
the token loop runs the joiner's prefill apart (batch of one, or two rows for
classifier-free guidance, exactly as the library's loop does) and draws its first token at
once, so a joiner's first token waits for its own prefill only, not for the step in
flight. Between steps the token loop samples a token for every active stream (per-row
options and generators, ``batch_sampling``), hands each token to its stream, drops the
streams that ended, splices in the prefilled joiners' key/value rows (``SlotCache``) and
runs one batched forward for all. On a GPU nobody's step waits for a joiner's prefill.
On a CPU, where they share the cores, the prefill comes first: the loop starts no step
while one runs, and a step in flight and any chunk decode pause at their next module
(``batch_gate``). (Measured on CPU, tiny Turbo: README, "Chatterbox: many calls per GPU".)
With the multilingual attention spy, which must see every forward in order, joins are
prefilled on the token loop instead.

A joiner whose voice (and exaggeration) was prefilled before starts from a copy of that
conditioning prefix's keys and values (``prompt_cache``) and runs the backbone over its
text and start token only. Off with the attention spy: the alignment analyzer reads the
prefill's attention rows from the prefix on.

Cancel sets a flag that is read before every sample and every forward, so a cancelled
stream gets no further token and leaves the batch before the next step. Rows are left-padded
(see ``batch_cache``); each row gets its own positions and attention mask, so its tokens
are the ones it gets alone: sampled tokens are identical, and the logits agree to float
rounding (a batched matmul may round differently from a one-row one).

Families: ``turbo`` (and ``nano``; GPT-2 backbone, absolute positions, no guidance) and
``standard`` / ``multilingual`` (Llama backbone, learned speech positions added to the
input, a guidance row per stream when ``cfg_weight > 0``). The multilingual alignment
analyzer, when the backbone is deep enough to have its heads, reads each stream's own
attention row (``AttentionSpy``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from app.engines.chatterbox.batch_cache import SlotCache
from app.engines.chatterbox.batch_gate import PrefillGate
from app.engines.chatterbox.batch_sampling import SPEECH_VOCAB, RowOptions, RowSampler
from app.engines.chatterbox.batch_stream import TokenRequest, TokenStream
from app.engines.chatterbox.prompt_cache import PromptCache

__all__ = ["AttentionSpy", "StepScheduler", "TokenRequest", "TokenStream"]

log = logging.getLogger(__name__)
HISTORY_COLUMNS = 64  # a stream's first history width; doubled as it grows


@dataclass
class _Active:
    """Scheduler-side state of one stream in the batch."""

    stream: TokenStream
    options: RowOptions
    rows: int  # 1, or 2 with a guidance row
    cfg: float
    limit: int  # samples before the stream ends
    steps: int = 0  # samples drawn so far
    emitted: int = 0
    hist_len: int = 1
    attn: list[torch.Tensor] | None = field(default=None, repr=False)

    @property
    def generator(self) -> torch.Generator | None:
        return self.stream.request.generator


@dataclass
class _Joiner:
    """A prefilled stream with its first token drawn, waiting to be spliced into the batch."""

    active: _Active
    past: Any  # its prefill's key/value cache
    logits: torch.Tensor
    history: torch.Tensor
    token: torch.Tensor  # (1,) its first token: its row's input to the next forward


class StepScheduler:
    """Owns the token loop of one T3 model for every stream (see the module docstring)."""

    def __init__(self, t3: Any, family: str, spy: Any = None,
                 yield_to_prefill: bool | None = None,
                 prompt_cache: PromptCache | None = None) -> None:
        self.t3 = t3
        # Voices' conditioning-prefix keys/values; None (or 0 bytes) prefills everything.
        self.prompt_cache = prompt_cache if spy is None else None
        # On a CPU the prefill and the step share the same cores: running both at once only
        # makes the joiner's prefill slower, so the loop waits for a running prefill at the
        # next step boundary. On a GPU the two overlap (launch overhead, other kernels).
        self.yield_to_prefill = (t3.device.type == "cpu" if yield_to_prefill is None
                                 else yield_to_prefill)
        # ... and a step in flight (or a decode, ``give_way``) pauses at its next module.
        self.gate = PrefillGate() if self.yield_to_prefill else None
        self.turbo = family in ("turbo", "nano")
        self.spy = spy
        self._kv: SlotCache | None = None
        self._active: list[_Active] = []
        self._logits: torch.Tensor | None = None  # (streams, vocab), float32
        self._history: torch.Tensor | None = None  # (streams, capacity)
        self._sampler = RowSampler()
        self._pending: collections.deque[TokenStream] = collections.deque()
        self._ready: list[_Joiner] = []  # prefilled on the prefill thread, first token out
        # (cache, T3Cond) to compute ahead; ``_warming`` counts them until they are done
        self._warm: collections.deque[tuple[PromptCache, Any]] = collections.deque()
        self._warming = 0
        self._preparing = 0
        self._cond = threading.Condition()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._next = torch.zeros(0, dtype=torch.long)
        self.step_log: collections.deque[tuple[int, float]] = collections.deque(maxlen=4096)

    # --- public ---
    def start(self) -> None:
        """The token loop's thread and, unless an attention spy must see every forward in
        order (multilingual), a prefill thread beside it."""
        targets = [(self._run, "chatterbox-steps")]
        if self.spy is None:
            targets.append((self._prefill_loop, "chatterbox-prefill"))
        for target, name in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        # The backbone's blocks and their halves: tfmr -> h / layers -> block -> attn, mlp
        self.give_way(self.t3.tfmr, depth=3)

    def give_way(self, module: Any, depth: int | None = None) -> None:
        """On a CPU, ``module`` (S3Gen, the watermark network) pauses at its next submodule
        while a joiner's prefill runs on the prefill thread (``batch_gate``)."""
        if self.gate is not None and len(self._threads) > 1:
            self.gate.hold(module, depth)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        if self.gate is not None:
            self.gate.release()
        gone = RuntimeError("the step scheduler closed")
        for s in ([a.stream for a in self._active] + list(self._pending)
                  + [j.active.stream for j in self._ready]):
            s._finish(gone)

    def submit(self, request: TokenRequest) -> TokenStream:
        stream = TokenStream(request)
        with self._cond:
            if self._closed:
                raise RuntimeError("the step scheduler is closed")
            self._pending.append(stream)
            self._cond.notify_all()
        return stream

    def warm(self, t3_cond: Any) -> bool:
        """Put a voice's conditioning prefix into the prompt cache before its first reply
        (a voice being prepared or preloaded). Runs on the prefill thread when no joiner
        is waiting, without pausing anybody (no gate): it is nobody's first token.
        False, doing nothing, without a cache or a prefill thread."""
        cache = self.prompt_cache  # the cache of now, should another replace it meanwhile
        if cache is None or not cache.enabled or len(self._threads) < 2:
            return False
        with self._cond:
            if self._closed:
                return False
            self._warm.append((cache, t3_cond))
            self._warming += 1
            self._cond.notify_all()
        return True

    def wait_warm(self, timeout: float) -> bool:
        """Wait until every prefix ``warm`` was given is computed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed or not self._warming, timeout)

    def run_once(self, join: TokenStream | None = None) -> None:
        """One iteration on the calling thread, for a scheduler that was never started
        (the benchmark's one-stream-at-a-time baseline)."""
        with torch.inference_mode():
            self._iteration(join, [])

    @property
    def streams(self) -> int:
        """Streams in the batch or waiting to join."""
        return len(self._active) + len(self._pending) + len(self._ready) + self._preparing

    # --- the loop ---
    def _run(self) -> None:
        inline = len(self._threads) == 1  # no prefill thread: joins are prefilled here

        def due() -> bool:
            if self._closed or self._ready:
                return True
            if self.yield_to_prefill and self._preparing:
                return False
            return bool(self._active or (inline and self._pending))

        while True:
            with self._cond:
                self._cond.wait_for(due)
                if self._closed:
                    break
                join = self._pending.popleft() if inline and self._pending else None
                ready, self._ready = self._ready, []
            try:
                with torch.inference_mode():
                    self._iteration(join, ready)
            except Exception as exc:  # a failed step fails its streams, not the thread
                log.exception("Chatterbox step failed")
                for s in ([a.stream for a in self._active] + ([join] if join else [])
                          + [j.active.stream for j in ready]):
                    s._finish(exc)
                self._reset()

    def _iteration(self, join: TokenStream | None, ready: list[_Joiner]) -> None:
        self._drop([a for a in self._active if a.stream.cancelled])
        if join is not None:
            joiner = self._prepare(join)
            ready = ready + ([joiner] if joiner is not None else [])
        if self._active:
            assert self._logits is not None and self._history is not None
            tokens, ended, self._history = self._sample(self._sampler, self._active,
                                                        self._logits, self._history)
            self._next = tokens
            self._drop(ended + [a for a in self._active if a.stream.cancelled])
        for joiner in ready:
            self._splice(joiner)
        if self._active:
            self._forward()

    # --- joining: the prefill and the first token, apart from the batch ---
    def _prefill_loop(self) -> None:
        """Prefills joining streams while the token loop goes on: a joiner's first token
        waits for its own prefill only, and the batch waits for nobody's prefill."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._pending or self._warm))
                if self._closed:
                    break
                if not self._pending:  # joiners first: a warm-up is nobody's first token
                    cache, t3_cond = self._warm.popleft()
                    stream = None
                else:
                    stream = self._pending.popleft()
                    self._preparing += 1
            if stream is None:
                try:
                    with torch.inference_mode():
                        self._warm_prefix(cache, t3_cond)
                except Exception:  # the voice's first reply computes it instead
                    log.exception("Chatterbox prompt warm-up failed")
                with self._cond:
                    self._warming -= 1
                    self._cond.notify_all()
                continue
            joiner = None
            try:
                with torch.inference_mode(), self._prefilling():
                    joiner = self._prepare(stream)
            except Exception as exc:  # fails this stream only
                log.exception("Chatterbox prefill failed")
                stream._finish(exc)
            with self._cond:
                self._preparing -= 1
                if joiner is not None:
                    self._ready.append(joiner)
                self._cond.notify_all()

    def _prefilling(self) -> contextlib.AbstractContextManager[None]:
        return self.gate.prefill() if self.gate is not None else contextlib.nullcontext()

    def _prepare(self, stream: TokenStream) -> _Joiner | None:
        """Prefill one stream and draw its first token; None if it already ended."""
        if stream.cancelled:
            stream._finish()
            return None
        req = stream.request
        s = req.sampling
        guided = not self.turbo and s.cfg_weight > 0.0
        limit = s.max_new_tokens + (1 if self.turbo else 0)
        if req.fixed_tokens is not None:
            limit = req.fixed_tokens
        options = RowOptions(self.turbo, s, greedy=req.greedy,
                             fixed_length=req.fixed_tokens is not None)
        past, logits = self._prefill(req, guided)
        active = _Active(stream, options, rows=2 if guided else 1, cfg=s.cfg_weight,
                         limit=limit)
        if self.spy is not None:
            active.attn = self.spy.rows(0, 0)
        combined = self._combine(logits, [active])
        # The history grows with the stream (``_widen``), not to its limit up front: the
        # repetition penalty reads every column of every row at every step.
        hist = torch.full((1, min(limit + 2, HISTORY_COLUMNS)), self.t3.hp.start_speech_token,
                          dtype=torch.long, device=combined.device)
        sampler = self._sampler if self.spy is not None else RowSampler()
        token, ended, hist = self._sample(sampler, [active], combined, hist)
        if ended or stream.cancelled:
            stream._finish()
            return None
        return _Joiner(active, past, combined, hist, token)

    def _splice(self, joiner: _Joiner) -> None:
        """Add a prefilled stream's cache rows and state to the batch, between steps."""
        if joiner.active.stream.cancelled:
            joiner.active.stream._finish()
            return
        past = joiner.past
        if self._kv is None:
            layer = past.layers[0].keys
            self._kv = SlotCache(len(past.layers), layer.dtype, layer.device)
        self._kv.add(past)
        if not self._active:
            self._logits, self._history, self._next = joiner.logits, joiner.history, joiner.token
        else:
            assert self._logits is not None and self._history is not None
            self._logits = torch.cat([self._logits, joiner.logits])
            self._history = _cat_padded(self._history, joiner.history)
            self._next = torch.cat([self._next, joiner.token])
        self._active.append(joiner.active)

    def _prefill(self, req: TokenRequest, guided: bool) -> tuple[Any, torch.Tensor]:
        """The library's first forward for one stream: (its cache, its last logits rows)."""
        t3 = self.t3
        text = req.text_tokens.to(dtype=torch.long, device=t3.device)
        if guided:
            text = torch.cat([text, text], dim=0)
        embeds, len_cond = self._embeds(req.t3_cond, text,
                                        req.sampling.cfg_weight if guided else 0.0)
        past = None
        if self.prompt_cache is not None and self.prompt_cache.enabled:
            # The prefix from the cache; positions continue from its length (the backbone
            # counts them from the cache: GPT-2's absolute, Llama's rotary).
            past = self.prompt_cache.past(t3, req.t3_cond, embeds, len_cond)
            embeds = embeds[:, len_cond:]
        out = t3.tfmr(inputs_embeds=embeds, past_key_values=past, use_cache=True)
        if self.turbo:
            return out.past_key_values, t3.speech_head(out[0][:, -1:])[:, -1, :].float()
        # The library projects the whole prefill; a one-row matmul can round differently.
        return out.past_key_values, t3.speech_head(out[0])[:, -1, :].float()

    def _embeds(self, t3_cond: Any, text: torch.Tensor, cfg_weight: float
                ) -> tuple[torch.Tensor, int]:
        """The prefill's input embeddings (conditioning, text, start of speech) and the
        conditioning's length, as the library builds them."""
        t3 = self.t3
        hp = t3.hp
        start = hp.start_speech_token * torch.ones_like(text[:, :1])
        dtype = t3.speech_head.weight.dtype
        if dtype != torch.float32:  # CHATTERBOX_DTYPE: this request's own T3Cond, cast
            t3_cond.to(dtype=dtype)
        embeds, len_cond = t3.prepare_input_embeds(
            t3_cond=t3_cond, text_tokens=text, speech_tokens=start, cfg_weight=cfg_weight)
        if not self.turbo:
            bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=embeds.device)
            bos_embed = t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)
            embeds = torch.cat([embeds, bos_embed.expand(embeds.shape[0], -1, -1)], dim=1)
        return embeds, int(len_cond)

    def _warm_prefix(self, cache: PromptCache, t3_cond: Any) -> None:
        """Compute a voice's conditioning prefix into ``cache`` (``warm``)."""
        text = torch.full((1, 1), self.t3.hp.start_text_token, dtype=torch.long,
                          device=self.t3.device)
        embeds, len_cond = self._embeds(t3_cond, text, 0.0)
        cache.warm(self.t3, t3_cond, embeds, len_cond)

    # --- one step ---
    def _combine(self, rows: torch.Tensor, streams: list[_Active]) -> torch.Tensor:
        """Guidance: cond + w * (cond - uncond) for streams with a guidance row."""
        if all(a.rows == 1 for a in streams):
            return rows
        out, r = [], 0
        for a in streams:
            cond = rows[r : r + 1]
            if a.rows == 2:
                w = torch.as_tensor(a.cfg, device=cond.device, dtype=cond.dtype)
                cond = cond + w * (cond - rows[r + 1 : r + 2])
            out.append(cond)
            r += a.rows
        return torch.cat(out)

    def _sample(self, sampler: RowSampler, streams: list[_Active], logits: torch.Tensor,
                history: torch.Tensor) -> tuple[torch.Tensor, list[_Active], torch.Tensor]:
        """Draw every row's next token and hand it to its stream: (tokens, the streams
        that ended, the history with the tokens in it)."""
        for i, a in enumerate(streams):
            if a.stream.request.record_logits:
                a.stream.logits.append(logits[i].detach().cpu().clone())
            analyzer = a.stream.request.analyzer
            if analyzer is not None and a.attn is not None:
                analyzer.last_aligned_attns = a.attn
                last = int(history[i, a.hist_len - 1])
                logits[i : i + 1] = analyzer.step(logits[i : i + 1], next_token=last)
        options = [a.options for a in streams]
        processed = sampler.process(options, history, logits)
        tokens = sampler.sample(options, [a.generator for a in streams], processed)
        exhausted = (processed == -float("inf")).all(dim=-1).tolist() if self.turbo else None
        values = tokens.tolist()
        stop = self.t3.hp.stop_speech_token
        # Room for one more id per row, doubling; the new columns repeat each row's first
        # id, which the repetition penalty treats like the row's own history.
        history = _pad_columns(history, max(a.hist_len for a in streams) + 1, double=True)
        ended: list[_Active] = []
        for i, (a, value) in enumerate(zip(streams, values, strict=True)):
            if self.turbo and a.steps > 0 and exhausted is not None and exhausted[i]:
                ended.append(a)
                continue
            a.steps += 1
            if self.turbo and a.steps == 1:
                history[i].fill_(value)  # Turbo's history starts at the first token
            else:
                history[i, a.hist_len] = value
                a.hist_len += 1
            if value == stop and (a.steps > 1 or not self.turbo):
                ended.append(a)
                continue
            if value < SPEECH_VOCAB:
                a.stream._push(value)
                a.emitted += 1
            if a.steps >= a.limit or (a.options.fixed_length and a.emitted >= a.limit):
                ended.append(a)
        return tokens, ended, history

    def _forward(self) -> None:
        assert self._kv is not None
        t3 = self.t3
        kv = self._kv
        tokens = self._next[:, None]
        embeds = t3.speech_emb(tokens)
        if not self.turbo:
            steps = torch.tensor([[a.steps] for a in self._active], device=tokens.device)
            embeds = embeds + t3.speech_pos_emb.emb(steps)
        if any(a.rows == 2 for a in self._active):
            index = [i for i, a in enumerate(self._active) for _ in range(a.rows)]
            embeds = embeds.index_select(0, torch.tensor(index, device=embeds.device))
        mask = positions = None
        if kv.padded:
            mask, positions = kv.step_mask(), kv.positions()
        began = time.perf_counter()
        out = t3.tfmr(inputs_embeds=embeds, past_key_values=kv.cache(), attention_mask=mask,
                      position_ids=positions, use_cache=True)
        kv.commit()
        rows = t3.speech_head(out[0])[:, -1, :].float()
        self._logits = self._combine(rows, self._active)
        self.step_log.append((len(self._active), time.perf_counter() - began))
        if self.spy is not None:
            r = 0
            for a in self._active:
                a.attn = self.spy.rows(r, kv.length - int(kv.pos[r]))
                r += a.rows

    # --- leaving ---
    def _drop(self, leaving: list[_Active]) -> None:
        if not leaving:
            return
        gone = {id(a) for a in leaving}
        keep_rows: list[int] = []
        keep_idx: list[int] = []
        kept: list[_Active] = []
        r = 0
        for i, a in enumerate(self._active):
            if id(a) in gone:
                a.stream._finish()
            else:
                keep_rows.extend(range(r, r + a.rows))
                keep_idx.append(i)
                kept.append(a)
            r += a.rows
        self._active = kept
        if self._kv is not None:
            self._kv.keep(keep_rows)
        if not kept:
            self._logits = self._history = None
            return
        assert self._logits is not None and self._history is not None
        index = torch.tensor(keep_idx, device=self._logits.device)
        self._logits = self._logits.index_select(0, index)
        self._history = self._history.index_select(0, index)
        if len(self._next) == len(keep_idx) + len(gone):
            self._next = self._next.index_select(0, index.to(self._next.device))

    def _reset(self) -> None:
        self._active = []
        self._logits = self._history = None
        if self._kv is not None:
            self._kv.keep([])


def _pad_columns(history: torch.Tensor, width: int, double: bool = False) -> torch.Tensor:
    """``history`` widened to ``width`` columns (``double``: at least twice as wide), each
    row padded with its own first id."""
    if history.shape[1] >= width:
        return history
    if double:
        width = max(width, 2 * history.shape[1])
    return torch.cat([history, history[:, :1].expand(-1, width - history.shape[1])], dim=1)


def _cat_padded(history: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Stack histories of different capacities, padding each row with its own first id."""
    width = max(history.shape[1], new.shape[1])
    return torch.cat([_pad_columns(history, width), _pad_columns(new, width)])


class AttentionSpy:
    """Keeps the full attention of the alignment heads' layers after every forward.

    The library's analyzer hook keeps batch row 0 only; here each stream reads its own row
    (``rows(row, pad)``), without the columns that are padding in a batched step.
    """

    def __init__(self, tfmr: Any, heads: list[tuple[int, int]]) -> None:
        self.heads = heads
        self.last: list[torch.Tensor | None] = [None] * len(heads)
        for slot, (layer, _) in enumerate(heads):
            tfmr.layers[layer].self_attn.register_forward_hook(self._hook(slot))
        if getattr(tfmr.config, "_attn_implementation", None) == "sdpa":
            tfmr.config._attn_implementation = "eager"  # attention weights need eager
        tfmr.config.output_attentions = True

    def _hook(self, slot: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
                self.last[slot] = output[1].detach().float().cpu()

        return hook

    def rows(self, row: int, pad: int) -> list[torch.Tensor]:
        return [att[row, head, :, pad:] for att, (_, head) in
                zip(self.last, self.heads, strict=True) if att is not None]
