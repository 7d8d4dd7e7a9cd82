"""Reference clip decoding and checks: bytes from a store to a ``VoiceClip`` for one engine.

libsndfile (through soundfile) reads WAV, FLAC, OGG/Vorbis/Opus and, where the linked
libsndfile has it (1.1+), MP3; other containers it knows (AIFF, CAF, W64, ...) are refused.
The clip is mixed to mono, resampled to the engine's rate with soxr and must last between
``min_s`` and ``max_s`` seconds; anything else is a ``VoiceInvalid`` (422) that says what
is wrong.

A few kilobytes of FLAC can declare 8 channels at 655,350 Hz (1.26 GB of float32 for a
minute of silence), and a 64-byte WAV can declare 1 Hz. So the header is read first and
checked before a sample is decoded: the format, 8-48 kHz, at most 2 channels, and the
declared length. Decoding then reads at most ``max_s`` seconds of frames at that rate, so
even a header that lies (MP3 only estimates its length) cannot make it hold more than
48,000 x 2 x ``max_s`` samples.

This is CPU work: call it through ``asyncio.to_thread`` (``decode_clip_async``).
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
import soundfile as sf
import soxr

from app.engines.base import VoiceClip
from app.errors import VoiceInvalid

# Decoders raise a variety of things on garbage input: libsndfile errors, and soundfile's
# own checks (TypeError / ValueError) for headers it cannot make sense of.
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError)


def _not_audio(voice_id: str, detail: str) -> VoiceInvalid:
    return VoiceInvalid(f"Voice clip is not valid audio: {voice_id} ({detail})")


def _check_duration(voice_id: str, seconds: float, min_s: float, max_s: float) -> None:
    if seconds < min_s:
        raise VoiceInvalid(
            f"Voice clip too short: {voice_id} is {seconds:.2f} s, at least {min_s:g} s needed"
        )
    if seconds > max_s:
        raise VoiceInvalid(
            f"Voice clip too long: {voice_id} is {seconds:.2f} s, at most {max_s:g} s accepted"
        )


FORMATS = ("WAV", "WAVEX", "FLAC", "OGG", "MP3")
MIN_RATE, MAX_RATE = 8_000, 48_000
MAX_CHANNELS = 2


def _check_header(voice_id: str, f: sf.SoundFile, max_s: float) -> int:
    """Refuse what the header says before decoding; the most frames worth reading."""
    if f.format not in FORMATS:
        raise VoiceInvalid(f"Voice clip format not accepted: {voice_id} is {f.format}; "
                           f"accepted: {', '.join(FORMATS)}")
    rate = int(f.samplerate)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise VoiceInvalid(f"Voice clip sample rate not accepted: {voice_id} is {rate} Hz; "
                           f"{MIN_RATE}-{MAX_RATE} Hz accepted")
    if not 1 <= f.channels <= MAX_CHANNELS:
        raise VoiceInvalid(f"Voice clip has {f.channels} channels: {voice_id}; "
                           f"at most {MAX_CHANNELS} accepted")
    # Some formats (MP3) only estimate the frame count; the decoded length is rechecked.
    declared = f.frames
    if 0 < declared < 2**62:
        _check_duration(voice_id, declared / rate, 0.0, max_s)
    return int(max_s * rate) + 1  # one more than allowed: a longer clip shows as too long


def decode_clip(
    voice_id: str, data: bytes, target_rate: int, min_s: float, max_s: float
) -> VoiceClip:
    """Decode ``data``, mix to mono, resample to ``target_rate`` and check its length."""
    if not data:
        raise _not_audio(voice_id, "empty file")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            limit = _check_header(voice_id, f, max_s)
            rate = int(f.samplerate)
            frames = f.read(frames=limit, dtype="float32", always_2d=True)
    except VoiceInvalid:
        raise
    except _DECODE_ERRORS as exc:
        # LibsndfileError's str() names the BytesIO object; its error_string is the reason.
        detail = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        raise _not_audio(voice_id, str(detail).strip().rstrip(".")) from None

    if frames.shape[0] == 0:
        raise _not_audio(voice_id, "no samples")
    _check_duration(voice_id, frames.shape[0] / rate, min_s, max_s)
    mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    if not np.all(np.isfinite(mono)):
        raise _not_audio(voice_id, "samples are not finite numbers")
    if rate != target_rate:
        mono = soxr.resample(mono, rate, target_rate, quality="HQ")
    samples = np.ascontiguousarray(np.clip(mono, -1.0, 1.0), dtype=np.float32)
    samples.setflags(write=False)  # shared by every request that uses the cached clip
    return VoiceClip(voice_id=voice_id, samples=samples, sample_rate=target_rate)


async def decode_clip_async(
    voice_id: str, data: bytes, target_rate: int, min_s: float, max_s: float
) -> VoiceClip:
    """``decode_clip`` on a worker thread, so decoding never stalls the event loop."""
    return await asyncio.to_thread(decode_clip, voice_id, data, target_rate, min_s, max_s)
