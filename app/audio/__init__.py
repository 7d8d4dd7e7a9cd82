"""The audio chain after the engine: crossfade, resample, encode, frame (and WAV files).

Every stage is a small synchronous push/flush object with its state for one utterance;
``AudioPipeline`` composes them.
"""

from app.audio.codecs import (
    AlawEncoder,
    Encoder,
    MulawEncoder,
    PCM16Encoder,
    float_to_int16,
    make_encoder,
)
from app.audio.crossfade import Crossfader
from app.audio.formats import OUTPUT_FORMATS, OutputFormat, get_output_format
from app.audio.framing import Framer
from app.audio.pipeline import AudioPipeline
from app.audio.resample import DEFAULT_QUALITY, StreamResampler, measure_holdback_ms
from app.audio.wav import wav_bytes

__all__ = [
    "DEFAULT_QUALITY",
    "OUTPUT_FORMATS",
    "AlawEncoder",
    "AudioPipeline",
    "Crossfader",
    "Encoder",
    "Framer",
    "MulawEncoder",
    "OutputFormat",
    "PCM16Encoder",
    "StreamResampler",
    "float_to_int16",
    "get_output_format",
    "make_encoder",
    "measure_holdback_ms",
    "wav_bytes",
]
