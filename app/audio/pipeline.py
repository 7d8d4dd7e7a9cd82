"""The post-engine chain of one utterance: crossfader -> level -> resampler -> encoder -> framer.

``AudioPipeline.push(chunk)`` takes an engine ``AudioChunk`` and returns the output units
that are complete (20 ms frames, or one byte string per push when unframed);
``flush()`` returns the rest, the only padded frame included. Every stage keeps its state
for the utterance, so the output does not depend on how the engine cut its audio.
Per-stage wall time is kept in ``timings`` for the latency report.
"""

from __future__ import annotations

import time

import numpy as np

from app.audio.chunk import AudioChunk
from app.audio.codecs import Encoder, make_encoder
from app.audio.crossfade import Crossfader
from app.audio.formats import OutputFormat
from app.audio.framing import Framer
from app.audio.level import LevelStage
from app.audio.resample import DEFAULT_QUALITY, StreamResampler


class AudioPipeline:
    def __init__(
        self,
        engine_rate: int,
        encoding: str,
        out_rate: int,
        *,
        frame_ms: int | None = 20,
        max_overlap: int = 0,
        quality: str = DEFAULT_QUALITY,
        level: LevelStage | None = None,
    ) -> None:
        if level is not None and level.rate != engine_rate:
            raise ValueError("the level stage runs at the engine rate")
        self.engine_rate = engine_rate
        self.out_rate = out_rate
        self.encoding = encoding
        self.crossfader = Crossfader(max_overlap)
        self.level = level  # None: the engine's level goes out as it is
        self.resampler = StreamResampler(engine_rate, out_rate, quality)
        self.encoder: Encoder = make_encoder(encoding)
        self.framer: Framer | None = None
        if frame_ms is not None:
            samples = out_rate * frame_ms
            if samples % 1000:
                raise ValueError(f"{frame_ms} ms is not a whole number of samples at {out_rate}")
            self.framer = Framer(samples // 1000 * self.encoder.bytes_per_sample, self.silence_byte)
        self.timings: dict[str, float] = {
            "crossfade_ms": 0.0,
            "resample_ms": 0.0,
            "encode_ms": 0.0,
            "frame_ms": 0.0,
        }
        if level is not None:
            self.timings["level_ms"] = 0.0
        self.samples_in = 0  # engine samples after the crossfade
        self.samples_out = 0  # samples at out_rate

    @classmethod
    def for_format(
        cls,
        engine_rate: int,
        fmt: OutputFormat,
        max_overlap: int = 0,
        framed: bool = True,
        quality: str = DEFAULT_QUALITY,
        level: LevelStage | None = None,
    ) -> AudioPipeline:
        return cls(
            engine_rate,
            fmt.encoding,
            fmt.sample_rate,
            frame_ms=fmt.frame_ms if framed else None,
            max_overlap=max_overlap,
            quality=quality,
            level=level,
        )

    @property
    def silence_byte(self) -> int:
        return self.encoder.silence_byte

    @property
    def frame_bytes(self) -> int | None:
        return self.framer.frame_bytes if self.framer is not None else None

    def push(self, chunk: AudioChunk) -> list[bytes]:
        t0 = time.perf_counter()
        x = self.crossfader.push(chunk)
        t1 = time.perf_counter()
        return self._downstream(x, t0, t1, last=False)

    def flush(self) -> list[bytes]:
        t0 = time.perf_counter()
        x = self.crossfader.flush()
        t1 = time.perf_counter()
        return self._downstream(x, t0, t1, last=True)

    def _downstream(self, x: np.ndarray, t0: float, t1: float, *, last: bool) -> list[bytes]:
        tm = self.timings
        tm["crossfade_ms"] += (t1 - t0) * 1000.0
        if self.level is not None:
            x = self.level.push(x)
            if last:
                tail = self.level.flush()
                if len(tail):
                    x = np.concatenate((x, tail)) if len(x) else tail
            t_level = time.perf_counter()
            tm["level_ms"] += (t_level - t1) * 1000.0
            t1 = t_level
        self.samples_in += len(x)
        y = self.resampler.push(x)
        if last:
            tail = self.resampler.flush()
            if len(tail):
                y = np.concatenate((y, tail)) if len(y) else tail
        t2 = time.perf_counter()
        tm["resample_ms"] += (t2 - t1) * 1000.0
        self.samples_out += len(y)
        data = self.encoder.push(y)
        if last:
            data += self.encoder.flush()
        t3 = time.perf_counter()
        tm["encode_ms"] += (t3 - t2) * 1000.0
        if self.framer is None:
            out = [data] if data else []
        else:
            out = self.framer.push(data)
            if last:
                out.extend(self.framer.flush())
        tm["frame_ms"] += (time.perf_counter() - t3) * 1000.0
        return out
