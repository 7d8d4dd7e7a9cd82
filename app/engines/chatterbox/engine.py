"""The Chatterbox engine: true token streaming on one GPU, one model per process, many calls.

Token generation belongs to one ``StepScheduler`` per model (its own thread): every active
stream's next token comes out of one batched forward, and a stream joins or leaves
between steps. Each stream's coroutine here waits for its tokens, and every ``chunk_size``
tokens hands a decode (S3Gen, then the watermark) to the decode worker(s), so decoding never
holds up the token loop. Voice preparation and loading run on a third executor.

Admission: ``capacity`` streams at most, the smaller of ``MAX_CONCURRENT_STREAMS`` and the
budget (``CHATTERBOX_STREAM_BUDGET``, or measured at load: the most streams whose batched
step still leaves real time, see ``budget``). The next stream gets ``Busy`` before any work
is queued. Closing a stream cancels it in the scheduler, which drops it before the next step.

torch and chatterbox are imported only in ``load()``, so this module imports without the
extra installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import threading
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from app.config import Settings
from app.engines.base import (
    DEFAULT_VOICE_ID,
    AudioChunk,
    EngineCapabilities,
    SynthesisParams,
    VoiceClip,
    VoiceHandle,
)
from app.errors import Busy, EngineError, EngineUnavailable, InvalidRequest, VoiceInvalid

SAMPLE_RATE = 24000
OVERLAP_SAMPLES = 1 * 480  # vocoder.OVERLAP_FRAMES * SAMPLES_PER_FRAME (kept import-free)
TURBO_DECODER_STEPS = 2  # Turbo's mean-flow decoder is distilled for 2 steps: its own count
TURBO_LIKE = ("turbo", "nano")  # the Turbo architecture: GPT-2 backbone, mean-flow decoder
S3GEN_SIL = 4299  # chatterbox.models.s3gen.const.S3GEN_SIL: Turbo appends 3 after the tokens
MAX_SENTENCE_CHARS = 300  # about 20 s of speech: Turbo degrades past 20-25 s
DECODE_NICE = 10  # decode workers' niceness: the token loop comes first
WARMUP_TEXT = "Hello, this is a warm-up."
MULTILINGUAL_LANGUAGES = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja", "ko", "ms", "nl",
    "no", "pl", "pt", "ru", "sv", "sw", "tr", "zh",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def capabilities_for(family: str) -> EngineCapabilities:
    """What the running family offers; ``preset_fields`` lists the preset fields it uses."""
    common = ("chunk_size", "first_chunk_size", "temperature")
    if family in TURBO_LIKE:  # Nano is the Turbo architecture: the same fields apply
        return EngineCapabilities(
            cloning=True, streaming="token", languages=("en",), paralinguistic_tags=True,
            preset_fields=common, max_overlap_samples=OVERLAP_SAMPLES,
            notes=f"{family.capitalize()} ignores cfg_weight, exaggeration and min-p; its "
            f"decoder uses its own {TURBO_DECODER_STEPS} steps.",
        )
    fields = common + ("exaggeration", "cfg_weight", "decoder_steps")
    languages = MULTILINGUAL_LANGUAGES if family == "multilingual" else ("en",)
    return EngineCapabilities(
        cloning=True, streaming="token", languages=languages, preset_fields=fields,
        max_overlap_samples=OVERLAP_SAMPLES,
    )


def split_sentences(text: str, limit: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences of ``text``, short ones joined up to ``limit`` characters, long ones cut
    at the last comma or space before it."""
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        while len(sentence) > limit:
            cut = max(sentence.rfind(", ", 0, limit), sentence.rfind(" ", 0, limit))
            cut = cut + 1 if cut > 0 else limit
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if not sentence:
            continue
        if out and len(out[-1]) + 1 + len(sentence) <= limit // 2:
            out[-1] = f"{out[-1]} {sentence}"
        else:
            out.append(sentence)
    return out


class ChatterboxEngine:
    """``app.engines.base.Engine`` for chatterbox-tts 0.1.7 (turbo, standard, multilingual)."""

    name = "chatterbox"
    sample_rate = SAMPLE_RATE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.family = settings.chatterbox_model
        self.device = settings.chatterbox_device
        self.capabilities = capabilities_for(self.family)
        self.max_streams = settings.max_concurrent_streams
        self.capacity = self.max_streams
        self.budget: dict[str, Any] = {}
        # Loading and voice preparation; decoding and watermarking; the token loop is the
        # scheduler's own thread. None of them waits for another's work.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatterbox")
        # Text preparation (tokenizing a sentence) must not queue behind decodes.
        self._text = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatterbox-text")
        self._decoders = ThreadPoolExecutor(max_workers=settings.chatterbox_decode_workers,
                                            thread_name_prefix="chatterbox-decode",
                                            initializer=_below_the_token_loop)
        self._lock = threading.Lock()
        self._active = 0
        self._model: Any = None
        self._scheduler: Any = None
        self._default_conds: Any = None
        self._watermarker: Any = None
        self._tuning: Any = None  # runtime.DecoderTuning, built with the model

    # --- lifecycle ---
    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def active_streams(self) -> int:
        return self._active

    def stats(self) -> dict[str, Any]:
        """What ``/health`` shows: streams running, the admission limit and what is left."""
        return {
            "active_streams": self._active,
            "capacity": self.capacity,
            "headroom": max(self.capacity - self._active, 0),
            "budget": self.budget,
            "dtype": self.settings.chatterbox_dtype,
            "prompt_cache": self._prompt_cache_stats(),
        }

    def _prompt_cache_stats(self) -> dict[str, Any] | None:
        cache = self._scheduler.prompt_cache if self._scheduler is not None else None
        return cache.stats() if cache is not None else None

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_sync)

    def _load_sync(self) -> None:
        from app.engines.chatterbox import runtime
        from app.engines.chatterbox.budget import measure_capacity
        from app.engines.chatterbox.loading import load_model, resolve_device
        from app.engines.chatterbox.voices import builtin_conditionals

        self.device = resolve_device(self.settings.chatterbox_device)
        model = load_model(self.family, self.settings.chatterbox_ckpt_dir, self.device,
                           self.settings.chatterbox_dtype)
        self._default_conds = builtin_conditionals(model)
        model.conds = None  # nobody reads the shared slot; every voice has its own
        self._watermarker = model.watermarker if self.settings.watermark else None
        self._tuning = runtime.DecoderTuning(
            lookahead=self.settings.chatterbox_lookahead_tokens,
            hold_frames=self.settings.chatterbox_vocoder_hold_frames,
            context_tokens=self.settings.chatterbox_flow_context_tokens or None,
        )
        self._scheduler = runtime.new_scheduler(model, self.family,
                                                self.settings.chatterbox_prompt_cache_mb)
        self._scheduler.start()
        # On a CPU a joiner's prefill comes before decodes: they pause for it.
        self._scheduler.give_way(model.s3gen)
        if self._watermarker is not None and hasattr(self._watermarker, "perth_net"):
            self._scheduler.give_way(self._watermarker.perth_net)
        self._model = model
        if self._default_conds is not None:
            voice = VoiceHandle(DEFAULT_VOICE_ID, builtin=True, data=self._default_conds)
            params = SynthesisParams(preset=_warmup_preset())
            # One non-final and one final decode: every module and the watermark run once.
            for _ in self._generate_sync(WARMUP_TEXT, voice, params, 14):
                pass
            self._warm_prompt(self._default_conds)  # the default preset's prefix
            self._scheduler.wait_warm(120)  # before any measurement below
        budget = self.settings.chatterbox_stream_budget
        if budget == 0 and self._default_conds is not None:
            self.budget = measure_capacity(self._scheduler, model, self.family,
                                           self._default_conds, self.max_streams)
            budget = self.budget["streams"]
        elif budget:
            self.budget = {"streams": budget, "source": "CHATTERBOX_STREAM_BUDGET"}
        self.capacity = min(self.max_streams, budget) if budget else self.max_streams

    async def aclose(self) -> None:
        if self._scheduler is not None:
            await asyncio.to_thread(self._scheduler.close)
        await asyncio.to_thread(self._decoders.shutdown, True)
        await asyncio.to_thread(self._text.shutdown, True)
        await asyncio.to_thread(self._executor.shutdown, True)
        self._model = None
        self._scheduler = None
        self._default_conds = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    # --- voices ---
    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        self._require_loaded()
        if clip is None:
            if self._default_conds is None:
                raise EngineError("this checkpoint has no built-in voice (conds.pt)")
            return VoiceHandle(DEFAULT_VOICE_ID, builtin=True, data=self._default_conds)
        loop = asyncio.get_running_loop()
        try:
            conds = await loop.run_in_executor(self._executor, self._prepare_sync, clip)
        except ValueError as exc:
            raise VoiceInvalid(f"Voice {clip.voice_id} is not usable: {exc}") from exc
        self._warm_prompt(conds)
        return VoiceHandle(clip.voice_id, builtin=False, data=conds)

    def _warm_prompt(self, conds: Any) -> None:
        """Cache the new voice's conditioning prefix before its first reply (a preload or
        the first use), for the default preset's exaggeration where the family reads it:
        that reply then prefills only its text (README, "Voice prompt cache")."""
        from app.engines.chatterbox import runtime
        from app.presets import get_preset

        if self._scheduler is None:
            return
        plan = runtime.Plan.build(self.family, SynthesisParams(preset=get_preset(None)))
        self._scheduler.warm(runtime.request_cond(conds, plan))

    def _prepare_sync(self, clip: VoiceClip) -> Any:
        from app.engines.chatterbox.voices import prepare_conditionals

        return prepare_conditionals(self._model, self.family, clip.samples, clip.sample_rate)

    # --- streaming ---
    def _require_loaded(self) -> None:
        if self._model is None:
            raise EngineUnavailable("Chatterbox model is not loaded")

    def _validate(self, voice: VoiceHandle, params: SynthesisParams) -> None:
        if params.language.lower() not in self.capabilities.languages:
            langs = ", ".join(self.capabilities.languages)
            raise InvalidRequest(
                f"Language {params.language!s:.16} is not supported by Chatterbox "
                f"{self.family}; supported: {langs}"
            )
        if voice.data is None:
            raise EngineError(f"voice {voice.voice_id} was not prepared by this engine")

    async def stream(
        self, text: str, voice: VoiceHandle, params: SynthesisParams
    ) -> AsyncGenerator[AudioChunk, None]:
        """Chunks as they are decoded; ``Busy`` (before any work) beyond ``capacity``."""
        self._require_loaded()
        self._validate(voice, params)
        with self._lock:
            if self._active >= self.capacity:
                raise Busy(
                    f"Chatterbox is busy: {self._active} of {self.capacity} streams "
                    "in progress"
                )
            self._active += 1
        try:
            async for chunk in self._generate(text, voice, params):
                yield chunk
        finally:
            with self._lock:
                self._active -= 1

    async def _generate(
        self, text: str, voice: VoiceHandle, params: SynthesisParams
    ) -> AsyncGenerator[AudioChunk, None]:
        """Sentences, then tokens from the scheduler, then chunks decoded off the loop."""
        from app.engines.chatterbox import runtime

        model = self._model
        loop = asyncio.get_running_loop()
        plan = runtime.Plan.build(self.family, params)
        first, later = params.preset.chunk_sizes()
        t3_cond = runtime.request_cond(voice.data, plan)
        for sentence in split_sentences(text):
            request = await loop.run_in_executor(
                self._text, runtime.token_request, model, self.family, sentence,
                params.language, t3_cond, plan)
            tokens = self._scheduler.submit(request)
            try:
                decoder = runtime.new_decoder(model, voice.data, plan, self._tuning)
                next_at = first
                while True:
                    await tokens.until(next_at)
                    if len(tokens.tokens) < next_at:
                        break
                    chunk = await loop.run_in_executor(
                        self._decoders, self._decode, decoder, tokens.tokens[:next_at], False)
                    next_at += later
                    if chunk is not None:
                        yield chunk
                done = list(tokens.tokens)
            finally:
                tokens.cancel()
            chunk = await loop.run_in_executor(self._decoders, self._decode, decoder, done, True)
            if chunk is not None:
                yield chunk

    def _generate_sync(
        self, text: str, voice: VoiceHandle, params: SynthesisParams, max_tokens: int
    ) -> Iterator[AudioChunk]:
        """The same work on the calling thread (warm-up): one sentence, bounded tokens."""
        from app.engines.chatterbox import runtime

        plan = runtime.Plan.build(self.family, params, max_tokens)
        first, _ = params.preset.chunk_sizes()
        request = runtime.token_request(self._model, self.family, text, params.language,
                                        runtime.request_cond(voice.data, plan), plan)
        tokens = self._scheduler.submit(request)
        decoder = runtime.new_decoder(self._model, voice.data, plan, self._tuning)
        if tokens.wait_for(first):
            chunk = self._decode(decoder, tokens.tokens[:first], False)
            if chunk is not None:
                yield chunk
        tokens.wait_for(1 << 30)
        chunk = self._decode(decoder, list(tokens.tokens), True)
        if chunk is not None:
            yield chunk

    def _decode(self, decoder: Any, tokens: list[int], final: bool) -> AudioChunk | None:
        """Runs on a decode worker: S3Gen for the new frames, then the watermark."""
        if final and self.family in TURBO_LIKE:
            tokens = tokens + [S3GEN_SIL] * 3
        chunk = decoder.decode(tokens, final=final)
        if chunk is None:
            return None
        return self._finish(chunk.samples, chunk.overlap)

    def _finish(self, samples: np.ndarray, overlap: int) -> AudioChunk:
        """Watermark a whole chunk (perth works on whole signals) and wrap it."""
        if self._watermarker is not None and len(samples):
            marked = self._watermarker.apply_watermark(samples, sample_rate=SAMPLE_RATE)
            marked = np.asarray(marked, dtype=np.float32).reshape(-1)
            if len(marked) == len(samples):
                samples = marked
        return AudioChunk(np.ascontiguousarray(samples, dtype=np.float32), overlap)


def _below_the_token_loop() -> None:
    """Decode workers run at a lower CPU priority than the token loop (Linux: per thread).

    On a CPU-bound host a decode (S3Gen, then the watermark) takes hundreds of milliseconds
    and would otherwise slow every stream's next step and every joining call's prefill. The
    worker's own torch threads are created after this and inherit the priority.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICE)


def _warmup_preset() -> Any:
    from app.presets import PRESETS

    return PRESETS["realtime"]
