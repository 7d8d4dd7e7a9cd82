"""Incremental MP3 and Ogg/Opus encoders: push PCM16 as it is produced, get bytes at once.

These stages sit after the PCM16 encoder of an unframed chain (engine -> crossfade ->
resample to the codec's rate -> PCM16 -> here): ``push(pcm16 bytes) -> bytes`` returns every
compressed byte that is ready, ``flush() -> bytes`` ends the stream. State is per utterance,
so the first bytes of a file leave while the engine is still synthesizing the rest, and the
bytes do not depend on how the engine cut its audio into chunks.

Bindings, chosen by measurement (``benchmarks/encoders.py``: 10 s of 24 kHz audio pushed in
20, 100 and 400 ms chunks, each candidate in the same run; ratios, not absolute speeds):

- MP3: ``lameenc`` (LAME 3.100, a ~200 kB wheel), a direct ``encode``/``flush`` binding:
  bytes out after every push from 40 ms on, about 3x the speed of PyAV's ``libmp3lame``
  (same LAME, but through frame objects) and of libsndfile's MP3 writer (``soundfile``),
  which also seeks back to the start at close to rewrite its header: a socket cannot.
- Ogg/Opus: PyAV (FFmpeg's ``libopus`` and Ogg muxer, bundled in its wheels), with the
  muxer's ``page_duration`` at one 20 ms packet, so each packet leaves in its own page as
  soon as it is coded; libsndfile's Ogg writer emits a page once a second and ran at a
  third of the speed. libopus codes 20 ms frames: an ``AudioFifo`` regroups whatever chunk
  sizes arrive into 960-sample frames at 48 kHz.

Both stream formats are self-delimiting: MP3 is a sequence of frames (no header to patch
at the end, so players start at the first frame), Ogg is a sequence of pages.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from av import AudioFrame

Codec = Literal["mp3", "opus"]

OPUS_RATE = 48_000  # libopus codes 8/12/16/24/48 kHz; Ogg Opus decoders always play 48 kHz
_OPUS_FRAME = OPUS_RATE // 50  # 20 ms
# Sample rates LAME encodes without resampling (MPEG-1, -2 and -2.5 layer III).
MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})


class CompressedEncoder(Protocol):
    """A push/flush stage from mono PCM16 (little-endian) to compressed bytes."""

    media_type: str

    def push(self, pcm16: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class CompressedFormat:
    """A compressed stream format: codec, the PCM rate it is fed at, and its bitrate."""

    codec: Codec
    sample_rate: int
    bitrate_kbps: int

    @property
    def media_type(self) -> str:
        return "audio/mpeg" if self.codec == "mp3" else "audio/ogg"

    def encoder(self) -> CompressedEncoder:
        if self.codec == "mp3":
            return Mp3Encoder(self.sample_rate, self.bitrate_kbps)
        return OggOpusEncoder(self.bitrate_kbps)


class Mp3Encoder:
    """Constant-bitrate MP3 through LAME (``lameenc``), frames out as soon as they are coded."""

    media_type = "audio/mpeg"

    def __init__(self, sample_rate: int, bitrate_kbps: int) -> None:
        if sample_rate not in MP3_RATES:
            raise ValueError(f"MP3 cannot carry {sample_rate} Hz without resampling")
        import lameenc

        self._lame = lameenc.Encoder()
        self._lame.set_bit_rate(bitrate_kbps)
        self._lame.set_in_sample_rate(sample_rate)
        self._lame.set_out_sample_rate(sample_rate)
        self._lame.set_channels(1)
        self._lame.set_quality(5)  # LAME's speed/quality middle: "good quality, fast"
        self._started = False  # LAME refuses a flush before the first encode
        self._done = False

    def push(self, pcm16: bytes) -> bytes:
        if not pcm16:
            return b""
        if len(pcm16) % 2:
            raise ValueError("PCM16 input must be whole samples")
        self._started = True
        return bytes(self._lame.encode(pcm16))

    def flush(self) -> bytes:
        if self._done or not self._started:
            self._done = True
            return b""
        self._done = True
        return bytes(self._lame.flush())


class _Sink:
    """The file object PyAV's muxer writes to: it only collects what was written since."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class OggOpusEncoder:
    """Ogg/Opus at 48 kHz through PyAV; one Ogg page per 20 ms packet, written as coded."""

    media_type = "audio/ogg"

    def __init__(self, bitrate_kbps: int) -> None:
        import av

        self._av = av
        self._sink = _Sink()
        # page_duration is in microseconds: one packet per page, so nothing waits for a page.
        # bitexact fixes the Ogg stream serial (random otherwise), so the same audio always
        # gives the same bytes.
        self._container = av.open(
            self._sink, "w", format="ogg",
            options={"page_duration": "20000", "fflags": "+bitexact"},
        )
        stream = self._container.add_stream("libopus", rate=OPUS_RATE)
        stream.bit_rate = bitrate_kbps * 1000
        stream.layout = "mono"
        self._stream = stream
        self._fifo = av.AudioFifo()
        self._pts = 0
        self._done = False

    def push(self, pcm16: bytes) -> bytes:
        if pcm16:
            samples = np.frombuffer(pcm16, dtype="<i2").reshape(1, -1)
            frame = self._av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = OPUS_RATE
            frame.pts = None
            self._fifo.write(frame)
            while self._fifo.samples >= _OPUS_FRAME:
                whole = self._fifo.read(_OPUS_FRAME)
                assert whole is not None  # the FIFO holds at least that many samples
                self._encode(whole)
        return self._sink.take()

    def flush(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        rest = self._fifo.read()
        if rest is not None:
            # The last frame is padded with silence to a whole 20 ms, as every Opus frame is.
            pad = np.zeros((1, _OPUS_FRAME), dtype=np.int16)
            pad[0, : rest.samples] = rest.to_ndarray()[0, : rest.samples]
            frame = self._av.AudioFrame.from_ndarray(pad, format="s16", layout="mono")
            frame.sample_rate = OPUS_RATE
            self._encode(frame)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()

    def _encode(self, frame: AudioFrame) -> None:
        frame.pts = self._pts
        self._pts += _OPUS_FRAME
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


@functools.cache
def available_codecs() -> tuple[Codec, ...]:
    """The compressed codecs this process can stream (their bindings import and open)."""
    out: list[Codec] = []
    try:
        probe = Mp3Encoder(24_000, 32)
        probe.push(bytes(960))
        probe.flush()
        out.append("mp3")
    except Exception:  # a missing or broken binding: the format is simply not offered
        pass
    try:
        OggOpusEncoder(32).flush()
        out.append("opus")
    except Exception:  # PyAV raises its own FFmpegError family when libopus is absent
        pass
    return tuple(out)

