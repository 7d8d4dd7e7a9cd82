"""The one registry of output formats: what each API calls a format, and what it is.

An ``OutputFormat`` says how audio leaves the chain: encoding, sample rate (0 = the
engine's own rate, as ``wav`` on our endpoints), frame length, container and media type.
``FORMATS`` lists every name a client may send, with the APIs (``Api``) that offer it:
our own endpoints say ``mulaw``, the HTTP stream says ``mulaw_8000``, ElevenLabs says
``ulaw_8000`` and OpenAI says ``pcm``, and all of them resolve here, through
``resolve_format``, with one error wording. MP3 and Ogg/Opus with a bitrate are streamed:
the chain makes PCM16 at the format's rate and an incremental encoder
(``app.audio.compressed``) turns each piece into wire bytes at once; they are offered only
when that encoder loads. Whole files (``wav``, ``flac``) are written once synthesis ends
(``app.audio.files``), offered when the process can write them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from app.audio.compressed import CompressedFormat, available_codecs
from app.audio.files import available_file_formats
from app.errors import InvalidRequest

Encoding = Literal["mulaw", "alaw", "pcm16"]
Container = Literal["raw", "wav", "mp3", "opus", "flac"]
Api = Literal["synthesize", "stream", "http_stream", "openai", "elevenlabs"]
"""``synthesize``: ``POST /synthesize`` and ``WS /ws/synthesize``; ``stream``:
``WS /ws/synthesize-stream``; ``http_stream``: ``POST /v1/audio/speech/stream``;
``openai``: ``POST /v1/audio/speech``; ``elevenlabs``: the stream-input socket."""

_BYTES_PER_SAMPLE = {"mulaw": 1, "alaw": 1, "pcm16": 2}
ENGINE_RATE = 0


@dataclass(frozen=True)
class OutputFormat:
    name: str
    encoding: Encoding
    sample_rate: int  # ENGINE_RATE (0): the engine's own rate
    frame_ms: int = 20
    container: Container = "raw"
    media_type: str = "application/octet-stream"
    bitrate_kbps: int = 0  # mp3/opus: > 0 streams through an incremental encoder

    @property
    def compressed(self) -> CompressedFormat | None:
        """The incremental encoder's settings, for a streamed mp3 or opus format."""
        if self.container in ("mp3", "opus") and self.bitrate_kbps > 0:
            return CompressedFormat(self.container, self.sample_rate, self.bitrate_kbps)
        return None

    @property
    def bytes_per_sample(self) -> int:
        return _BYTES_PER_SAMPLE[self.encoding]

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    @property
    def frame_bytes(self) -> int:
        return self.samples_per_frame * self.bytes_per_sample

    def at_rate(self, engine_rate: int) -> OutputFormat:
        """This format with the engine's rate filled in where it follows the engine."""
        if self.sample_rate != ENGINE_RATE:
            return self
        return replace(self, sample_rate=engine_rate)

    def seconds(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_sample / self.sample_rate


MULAW = OutputFormat("mulaw", "mulaw", 8000, media_type="audio/basic")
ALAW = OutputFormat("alaw", "alaw", 8000)
WAV = OutputFormat("wav", "pcm16", ENGINE_RATE, container="wav", media_type="audio/wav")

OUTPUT_FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        MULAW,
        ALAW,
        OutputFormat("pcm_8000", "pcm16", 8000),
        OutputFormat("pcm_16000", "pcm16", 16000),
        OutputFormat("pcm_22050", "pcm16", 22050),
        OutputFormat("pcm_24000", "pcm16", 24000),
        OutputFormat("pcm_44100", "pcm16", 44100),
    )
}
"""The raw (headerless) formats of the chain, by our own name."""

_OURS: tuple[Api, ...] = ("synthesize", "stream")
_PCM24 = OUTPUT_FORMATS["pcm_24000"]


def _streamed(name: str, codec: Container, rate: int, kbps: int) -> OutputFormat:
    media = "audio/mpeg" if codec == "mp3" else "audio/ogg"
    return OutputFormat(name, "pcm16", rate, container=codec, media_type=media,
                        bitrate_kbps=kbps)


# ElevenLabs' compressed names: codec_rate_kbps.
_ELEVENLABS_STREAMED = tuple(
    _streamed(name, codec, rate, kbps)  # type: ignore[arg-type]
    for name, codec, rate, kbps in (
        ("mp3_22050_32", "mp3", 22050, 32), ("mp3_24000_48", "mp3", 24000, 48),
        *((f"mp3_44100_{k}", "mp3", 44100, k) for k in (32, 64, 96, 128, 192)),
        *((f"opus_48000_{k}", "opus", 48000, k) for k in (32, 64, 96, 128, 192)),
    )
)


@dataclass(frozen=True)
class Offer:
    """A format name as one or more APIs spell it."""

    name: str
    format: OutputFormat
    apis: tuple[Api, ...]


FORMATS: tuple[Offer, ...] = (
    Offer("mulaw", MULAW, _OURS),
    Offer("alaw", ALAW, _OURS),
    Offer("pcm_8000", OUTPUT_FORMATS["pcm_8000"], (*_OURS, "elevenlabs")),
    Offer("pcm_16000", OUTPUT_FORMATS["pcm_16000"], (*_OURS, "http_stream", "elevenlabs")),
    Offer("pcm_22050", OUTPUT_FORMATS["pcm_22050"], (*_OURS, "elevenlabs")),
    Offer("pcm_24000", _PCM24, (*_OURS, "http_stream", "elevenlabs")),
    Offer("pcm_44100", OUTPUT_FORMATS["pcm_44100"], (*_OURS, "elevenlabs")),
    Offer("pcm_32000", OutputFormat("pcm_32000", "pcm16", 32000), ("elevenlabs",)),
    Offer("pcm_48000", OutputFormat("pcm_48000", "pcm16", 48000), ("elevenlabs",)),
    Offer("wav", WAV, ("synthesize",)),
    Offer("mulaw_8000", MULAW, ("http_stream",)),
    Offer("ulaw_8000", MULAW, ("elevenlabs",)),
    Offer("alaw_8000", ALAW, ("elevenlabs",)),
    *(Offer(f.name, f, ("elevenlabs",)) for f in _ELEVENLABS_STREAMED),
    # OpenAI: 24 kHz mono (Opus codes 48 kHz); pcm, mp3 and opus stream, wav and flac are
    # whole files.
    Offer("pcm", replace(_PCM24, media_type="audio/pcm"), ("openai",)),
    Offer("wav", replace(_PCM24, name="wav", container="wav", media_type="audio/wav"),
          ("openai",)),
    Offer("mp3", _streamed("mp3", "mp3", 24000, 64), ("openai",)),
    Offer("opus", _streamed("opus", "opus", 48000, 32), ("openai",)),
    Offer("flac", replace(_PCM24, name="flac", container="flac", media_type="audio/flac"),
          ("openai",)),
)


class UnsupportedFormat(InvalidRequest):
    """A format name the API does not offer; the message lists the ones it does."""


def offered(api: Api) -> dict[str, OutputFormat]:
    """Every format name ``api`` offers in this process, in the registry's order."""
    files = available_file_formats()
    codecs = available_codecs()
    return {
        o.name: o.format
        for o in FORMATS
        if api in o.apis and (
            o.format.container in ("raw", "wav")
            or (o.format.compressed is not None and o.format.container in codecs)
            or (o.format.compressed is None and o.name in files)
        )
    }


def resolve_format(api: Api, name: str, field: str = "output_format") -> OutputFormat:
    """The format ``name`` on ``api``; otherwise ``unsupported_<field>`` listing the valid."""
    formats = offered(api)
    try:
        return formats[name]
    except KeyError:
        raise UnsupportedFormat(
            f"Unsupported {field}: {name[:32]!r}. Valid formats: {', '.join(formats)}",
            code=f"unsupported_{field}",
        ) from None


def probe_encoders() -> None:
    """Load and probe the codec bindings and libsndfile once: the first probe costs about
    0.35 s (PyAV and LAME load), which the app pays at startup instead of on the first
    request, since every route resolves its format through ``offered``."""
    available_file_formats()
    available_codecs()


def get_output_format(name: str) -> OutputFormat:
    """A raw chain format by our own name (``mulaw``, ``pcm_16000``, ...)."""
    try:
        return OUTPUT_FORMATS[name]
    except KeyError:
        valid = ", ".join(OUTPUT_FORMATS)
        raise UnsupportedFormat(
            f"Unsupported output_format: {name[:32]!r}. Valid formats: {valid}",
            code="unsupported_output_format",
        ) from None
