"""Whole audio files from PCM16 for the OpenAI-compatible route: WAV, FLAC, MP3, Ogg/Opus.

WAV is written by ``wav_bytes``; the compressed ones by libsndfile through ``soundfile``
(its wheels bundle libsndfile with the FLAC, Vorbis/Opus and LAME/mpg123 codecs). A
format is offered only when the libsndfile in use can write it, so a build without MP3
support answers with a 400 that lists what it can do instead of failing mid-request.
Encoding is blocking C work: callers run it in a worker thread.
"""

from __future__ import annotations

import functools
import io

import numpy as np

from app.audio.wav import wav_bytes

# Our file format name -> (libsndfile major format, subtype, Content-Type).
_SNDFILE_FORMATS: dict[str, tuple[str, str, str]] = {
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
}

MEDIA_TYPES = {"wav": "audio/wav", **{k: v[2] for k, v in _SNDFILE_FORMATS.items()}}


@functools.cache
def available_file_formats() -> tuple[str, ...]:
    """The file formats this process can write, ``wav`` first."""
    out = ["wav"]
    try:
        import soundfile as sf
    except (ImportError, OSError):  # no libsndfile at all
        return tuple(out)
    majors = sf.available_formats()
    for name, (major, subtype, _) in _SNDFILE_FORMATS.items():
        if major in majors and subtype in sf.available_subtypes(major):
            out.append(name)
    return tuple(out)


def encode_file(pcm16: bytes, sample_rate: int, name: str) -> bytes:
    """A complete file of format ``name`` holding mono little-endian 16-bit ``pcm16``."""
    if name == "wav":
        return wav_bytes(pcm16, sample_rate)
    import soundfile as sf

    major, subtype, _ = _SNDFILE_FORMATS[name]
    samples = np.frombuffer(pcm16, dtype="<i2")
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format=major, subtype=subtype)
    return buf.getvalue()
