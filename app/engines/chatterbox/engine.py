"""The Chatterbox engine: true token streaming on one GPU, one model per process.

Generation runs on one dedicated worker thread (``ThreadPoolExecutor(max_workers=1)``).
Every stream is a blocking generator driven by ``iterate_blocking``: each ``next()`` is one
chunk's work (``chunk_size`` T3 steps, then one decode), so concurrent streams interleave
chunk by chunk on the worker instead of one waiting for another's whole reply; each has its
own KV cache, decoder state and per-request conditioning, so interleaving shares nothing
mutable. At most ``MAX_CONCURRENT_STREAMS`` streams are admitted; the next gets ``Busy``
before any work is queued, so latency cannot grow without bound. Closing a stream sets its
stop event, which the token loop checks before every step.

torch and chatterbox are imported only in ``load()``, so this module imports without the
extra installed.
"""

from __future__ import annotations

import asyncio
import re
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
    iterate_blocking,
)
from app.errors import Busy, EngineError, EngineUnavailable, InvalidRequest, VoiceInvalid

SAMPLE_RATE = 24000
OVERLAP_SAMPLES = 4 * 480  # decoder.OVERLAP_FRAMES * SAMPLES_PER_FRAME (kept import-free)
TURBO_DECODER_STEPS = 2  # Turbo's mean-flow decoder is distilled for 2 steps: its own count
S3GEN_SIL = 4299  # chatterbox.models.s3gen.const.S3GEN_SIL: Turbo appends 3 after the tokens
MAX_SENTENCE_CHARS = 300  # about 20 s of speech: Turbo degrades past 20-25 s
WARMUP_TEXT = "Hello, this is a warm-up."
MULTILINGUAL_LANGUAGES = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja", "ko", "ms", "nl",
    "no", "pl", "pt", "ru", "sv", "sw", "tr", "zh",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def capabilities_for(family: str) -> EngineCapabilities:
    """What the running family offers; ``preset_fields`` lists the preset fields it uses."""
    common = ("chunk_size", "first_chunk_size", "temperature")
    if family == "turbo":
        return EngineCapabilities(
            cloning=True, streaming="token", languages=("en",), paralinguistic_tags=True,
            preset_fields=common, max_overlap_samples=OVERLAP_SAMPLES,
            notes="Turbo ignores cfg_weight, exaggeration and min-p; its decoder uses its "
            f"own {TURBO_DECODER_STEPS} steps.",
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
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatterbox")
        self._lock = threading.Lock()
        self._active = 0
        self._model: Any = None
        self._default_conds: Any = None
        self._alignment: Any = None
        self._watermarker: Any = None

    # --- lifecycle ---
    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def active_streams(self) -> int:
        return self._active

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_sync)

    def _load_sync(self) -> None:
        from app.engines.chatterbox import runtime
        from app.engines.chatterbox.loading import load_model, resolve_device
        from app.engines.chatterbox.voices import builtin_conditionals

        self.device = resolve_device(self.settings.chatterbox_device)
        model = load_model(self.family, self.settings.chatterbox_ckpt_dir, self.device)
        self._default_conds = builtin_conditionals(model)
        model.conds = None  # nobody reads the shared slot; every voice has its own
        self._watermarker = model.watermarker if self.settings.watermark else None
        if self.family == "multilingual":
            self._alignment = runtime.install_alignment(model.t3)
        self._model = model
        if self._default_conds is not None:
            voice = VoiceHandle(DEFAULT_VOICE_ID, builtin=True, data=self._default_conds)
            params = SynthesisParams(preset=_warmup_preset())
            # One non-final and one final decode: every module and the watermark run once.
            for _ in self._generate(WARMUP_TEXT, voice, params, threading.Event(), 14):
                pass

    async def aclose(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, True)
        self._model = None
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
        return VoiceHandle(clip.voice_id, builtin=False, data=conds)

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
        """Chunks as they are decoded; ``Busy`` (before any work) when the queue is full."""
        self._require_loaded()
        self._validate(voice, params)
        with self._lock:
            if self._active >= self.max_streams:
                raise Busy(
                    f"Chatterbox is busy: {self._active} of {self.max_streams} streams "
                    "in progress"
                )
            self._active += 1
        try:
            def factory(stop: threading.Event) -> Iterator[AudioChunk]:
                return self._generate(text, voice, params, stop)

            async for chunk in iterate_blocking(factory, self._executor):
                yield chunk
        finally:
            with self._lock:
                self._active -= 1

    def _generate(
        self,
        text: str,
        voice: VoiceHandle,
        params: SynthesisParams,
        stop: threading.Event,
        max_tokens: int | None = None,
    ) -> Iterator[AudioChunk]:
        """Runs on the worker thread: sentences, then tokens, then decoded chunks."""
        from app.engines.chatterbox import runtime

        model = self._model
        if model is None:
            return
        plan = runtime.Plan.build(self.family, params, max_tokens)
        first, later = params.preset.chunk_sizes()
        t3_cond = runtime.request_cond(voice.data, plan)
        for sentence in split_sentences(text):
            if stop.is_set():
                return
            tokens = runtime.token_stream(model, self.family, sentence, params.language,
                                          t3_cond, plan, stop, self._alignment)
            decoder = runtime.new_decoder(model, voice.data, plan)
            done: list[int] = []
            next_at = first
            for token in tokens:
                done.append(token)
                if len(done) >= next_at:
                    next_at += later
                    chunk = decoder.decode(done, final=False)
                    if chunk is not None:
                        yield self._finish(chunk.samples, chunk.overlap)
                    if stop.is_set():
                        return
            if stop.is_set():
                return
            if self.family == "turbo":
                done += [S3GEN_SIL] * 3
            chunk = decoder.decode(done, final=True)
            if chunk is not None:
                yield self._finish(chunk.samples, chunk.overlap)

    def _finish(self, samples: np.ndarray, overlap: int) -> AudioChunk:
        """Watermark a whole chunk (perth works on whole signals) and wrap it."""
        if self._watermarker is not None and len(samples):
            marked = self._watermarker.apply_watermark(samples, sample_rate=SAMPLE_RATE)
            marked = np.asarray(marked, dtype=np.float32).reshape(-1)
            if len(marked) == len(samples):
                samples = marked
        return AudioChunk(np.ascontiguousarray(samples, dtype=np.float32), overlap)


def _warmup_preset() -> Any:
    from app.presets import PRESETS

    return PRESETS["realtime"]
