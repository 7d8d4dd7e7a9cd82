"""Incremental MP3 and Ogg/Opus encoders: the bindings we chose against the alternatives.

Run: ``.venv/bin/python benchmarks/encoders.py`` (``--quick`` for a short run).

For 10 s of a speech-like signal (the synthetic engine's rendering of a sentence, 24 kHz)
pushed in chunks of 20, 100 and 400 ms, single thread, median of repeats, it reports per
encoder how much audio had been pushed when the first compressed bytes came out, and the
average audio between two pushes that gave bytes (``output_every_ms``: how often a stream
can send), and the speed in multiples of real time:

- MP3: ``lameenc`` (ours: ``app.audio.compressed.Mp3Encoder``), PyAV's ``libmp3lame``,
  and libsndfile's MP3 writer through ``soundfile`` (whose close seeks back to the start
  to rewrite a header: counted, since a socket cannot take it back);
- Ogg/Opus: PyAV (ours: ``OggOpusEncoder``, one page per 20 ms packet) and libsndfile's.

Speed figures are relative: each encoder is measured in the same run on the same machine,
and the ratio to ours is what to quote. Results: ``benchmarks/results/encoders.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from app.audio.compressed import Mp3Encoder, OggOpusEncoder  # noqa: E402
from app.engines.synthetic import render  # noqa: E402

RATE = 24_000
RESULTS = Path(__file__).resolve().parent / "results" / "encoders.json"

Push = Callable[[bytes], int]  # bytes out for this push
Factory = Callable[[], tuple[Push, Callable[[], int]]]


def signal(seconds: float) -> bytes:
    text = "Thanks for calling the clinic, how can I help you today? " * 8
    audio = render(text)[: int(seconds * RATE)]
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def ours_mp3() -> tuple[Push, Callable[[], int]]:
    enc = Mp3Encoder(RATE, 64)
    return (lambda b: len(enc.push(b))), (lambda: len(enc.flush()))


def ours_opus() -> tuple[Push, Callable[[], int]]:
    enc = OggOpusEncoder(32)
    return (lambda b: len(enc.push(_to48k(b)))), (lambda: len(enc.flush()))


def _to48k(pcm: bytes) -> bytes:
    # Our chain resamples to 48 kHz before Opus; here a cheap repeat stands in for it.
    return np.repeat(np.frombuffer(pcm, "<i2"), 2).tobytes()


def pyav_mp3() -> tuple[Push, Callable[[], int]]:
    import av

    ctx = av.CodecContext.create("libmp3lame", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = RATE, "mono", "s16p", 64_000
    ctx.open()
    pts = [0]

    def push(b: bytes) -> int:
        x = np.frombuffer(b, "<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(x, format="s16p", layout="mono")
        frame.sample_rate, frame.pts = RATE, pts[0]
        pts[0] += x.shape[1]
        return sum(len(bytes(p)) for p in ctx.encode(frame))

    return push, (lambda: sum(len(bytes(p)) for p in ctx.encode(None)))


class _Sink(io.RawIOBase):
    """A file that only counts writes, and the seeks back that a socket could not do."""

    def __init__(self) -> None:
        self.pos = self.size = self.new = self.rewinds = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        if self.pos < self.size:
            self.rewinds += 1
        self.pos += len(b)
        self.new += len(b)
        self.size = max(self.size, self.pos)
        return len(b)

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = off if whence == 0 else self.pos + off if whence == 1 else self.size + off
        return self.pos

    def tell(self) -> int:
        return self.pos


def sndfile(major: str, subtype: str, rate: int) -> Factory:
    def factory() -> tuple[Push, Callable[[], int]]:
        sink = _Sink()
        f = sf.SoundFile(sink, "w", samplerate=rate, channels=1, format=major, subtype=subtype)

        def push(b: bytes) -> int:
            before = sink.new
            pcm = np.frombuffer(b if rate == RATE else _to48k(b), "<i2")
            f.write(pcm)
            return sink.new - before

        def flush() -> int:
            before = sink.new
            f.close()
            factory.rewinds = sink.rewinds  # type: ignore[attr-defined]
            return sink.new - before

        return push, flush

    return factory


def measure(factory: Factory, pcm: bytes, chunk_ms: int, repeats: int) -> dict[str, float]:
    step = RATE * chunk_ms // 1000 * 2
    firsts, speeds, sizes, gaps = [], [], [], []
    for _ in range(repeats):
        push, flush = factory()
        first = None
        t0 = time.perf_counter()
        total = pushes = outputs = 0
        for i in range(0, len(pcm), step):
            n = push(pcm[i : i + step])
            total += n
            pushes += 1
            outputs += bool(n)
            if n and first is None:
                first = (i + step) / 2 / RATE * 1000.0
        total += flush()
        elapsed = time.perf_counter() - t0
        firsts.append(first if first is not None else float("inf"))
        speeds.append(len(pcm) / 2 / RATE / elapsed)
        sizes.append(total)
        gaps.append(chunk_ms * pushes / max(1, outputs))
    return {"first_bytes_after_ms": statistics.median(firsts),
            "output_every_ms": round(statistics.median(gaps)),
            "x_realtime": round(statistics.median(speeds), 1),
            "bytes": statistics.median(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds, repeats = (4.0, 3) if args.quick else (10.0, 7)
    pcm = signal(seconds)
    candidates: dict[str, Factory] = {
        "mp3 lameenc (ours)": ours_mp3,
        "mp3 pyav libmp3lame": pyav_mp3,
        "mp3 libsndfile": sndfile("MP3", "MPEG_LAYER_III", RATE),
        "opus pyav ogg (ours)": ours_opus,
        "opus libsndfile ogg": sndfile("OGG", "OPUS", 48_000),
    }
    out: dict[str, object] = {"audio_s": seconds, "repeats": repeats,
                              "machine": platform.platform(), "results": {}}
    results: dict[str, dict[str, object]] = {}
    for name, factory in candidates.items():
        results[name] = {}
        for chunk_ms in (20, 100, 400):
            r = measure(factory, pcm, chunk_ms, repeats)
            results[name][f"{chunk_ms}ms"] = r
        rewinds = getattr(factory, "rewinds", 0)
        if rewinds:
            results[name]["rewrites_after_start"] = rewinds
    for codec, ours in (("mp3", "mp3 lameenc (ours)"), ("opus", "opus pyav ogg (ours)")):
        base = results[ours]["100ms"]["x_realtime"]  # type: ignore[index]
        for name, rows in results.items():
            if name.startswith(codec):
                rows["speed_vs_ours_100ms"] = round(
                    rows["100ms"]["x_realtime"] / base, 2)  # type: ignore[index]
    out["results"] = results
    print(f"{seconds:g} s of audio, median of {repeats}; per chunk size: first bytes after /"
          " bytes every (ms of audio), x real time")
    for name, rows in results.items():
        cells = "  ".join(
            f"{c}: {rows[c]['first_bytes_after_ms']:.0f}/{rows[c]['output_every_ms']} ms"  # type: ignore[index]
            f" {rows[c]['x_realtime']:g}x"  # type: ignore[index]
            for c in ("20ms", "100ms", "400ms"))
        extra = f"  rewrites after start: {rows['rewrites_after_start']}" \
            if "rewrites_after_start" in rows else ""
        print(f"{name:24s} {cells}  ratio {rows['speed_vs_ours_100ms']}{extra}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
