"""Loudness per engine, and what the level stage makes of a reply.

Run: ``.venv/bin/python benchmarks/loudness.py`` (Piper is skipped when not installed).
On a machine with Chatterbox weights (a GPU box): ``CHATTERBOX_MODEL=turbo .venv/bin/python
benchmarks/loudness.py --chatterbox`` adds the Chatterbox engine as the environment
configures it; its ``calibration.telephone_lufs`` is the value for ``ENGINE_LOUDNESS_LUFS``.

1. Calibration: each engine's typical loudness over a set of agent sentences, as the level
   stage measures it (``telephone_loudness``: K-weighted in the telephone band) and as
   pyloudnorm measures it at the engine rate; the first figure is what
   ``EngineCapabilities.loudness_lufs`` should say.
2. A reply of clauses of different kinds ("Okay.", an exclamation, a long question, ...)
   through the real chain (normalization, engine, level stage with one tracker per reply,
   soxr to 8 kHz, mu-law), with and without the level stage: the integrated loudness of
   the decoded mu-law, each clause's loudness, their spread, the true peak and the number
   of clipped mu-law samples. Results go to ``benchmarks/results/loudness.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pyloudnorm as pyln
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio.codecs import audioop  # noqa: E402
from app.audio.formats import get_output_format  # noqa: E402
from app.audio.level import (  # noqa: E402
    LevelStage,
    LoudnessTracker,
    level_settings,
    telephone_loudness,  # noqa: E402
)
from app.audio.pipeline import AudioPipeline  # noqa: E402
from app.config import Settings  # noqa: E402
from app.engines.base import AudioChunk, Engine, SynthesisParams  # noqa: E402
from app.engines.piper import PiperEngine, installed  # noqa: E402
from app.engines.registry import build_engine  # noqa: E402
from app.engines.synthetic import SyntheticEngine  # noqa: E402
from app.presets import get_preset  # noqa: E402
from app.text.normalize import normalize  # noqa: E402

CALIBRATION = [
    "Thanks for calling, this is the scheduling line.",
    "I can see two openings next week.",
    "The first is Tuesday at three thirty in the afternoon, with Doctor Patel.",
    "Would either of those work for you?",
    "Please remember to bring your insurance card and a list of your current medications.",
    "Is there anything else I can help you with today?",
]
REPLY = [
    "Okay.",
    "That's wonderful news!",
    "Your total comes to $42.17, and it will be charged to the card ending in 4321.",
    "Would you like me to book the appointment on Tuesday, Nov. 3rd at 3:30 PM, or would "
    "Thursday morning at 9am work better for you and your family?",
    "Great.",
]
MULAW_MAX = 32124


async def _audio(engine: Engine, text: str) -> np.ndarray:
    voice = await engine.prepare_voice(None)
    params = SynthesisParams(preset=get_preset("balanced"))
    parts = [c.samples async for c in engine.stream(text, voice, params)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


async def calibrate(engine: Engine) -> dict[str, float]:
    x = np.concatenate([await _audio(engine, t) for t in CALIBRATION])
    return {
        "telephone_lufs": round(telephone_loudness(x, engine.sample_rate), 2),
        "pyloudnorm_lufs": round(
            pyln.Meter(engine.sample_rate).integrated_loudness(x.astype(np.float64)), 2
        ),
        "sample_peak_dbfs": round(float(20 * np.log10(np.abs(x).max())), 2),
        "declared_lufs": engine.capabilities.loudness_lufs or float("nan"),
    }


async def reply(engine: Engine, target: float, level: bool) -> dict[str, object]:
    tracker = LoudnessTracker(engine.capabilities.loudness_lufs or -23.0)
    clauses: list[np.ndarray] = []
    for text in REPLY:
        stage = LevelStage(engine.sample_rate,
                           level_settings(engine.capabilities.streaming, target, -1.0), tracker)
        pipe = AudioPipeline.for_format(engine.sample_rate, get_output_format("mulaw"),
                                        level=stage if level else None)
        x = await _audio(engine, normalize(text).spoken)
        frames: list[bytes] = []
        for i in range(0, len(x), engine.sample_rate // 5):
            frames += pipe.push(AudioChunk(x[i : i + engine.sample_rate // 5]))
        frames += pipe.flush()
        pcm = np.frombuffer(audioop.ulaw2lin(b"".join(frames), 2), dtype=np.int16)
        clauses.append(pcm.astype(np.float64) / 32768.0)
    meter = pyln.Meter(8000)
    each = [round(meter.integrated_loudness(c), 2) for c in clauses]
    whole = np.concatenate(clauses)
    return {
        "integrated_lufs": round(meter.integrated_loudness(whole), 2),
        "clause_lufs": dict(zip(REPLY, each, strict=True)),
        "clause_spread_lu": round(max(each) - min(each), 2),
        "true_peak_dbtp_8k": round(
            float(20 * np.log10(np.abs(resample_poly(whole, 4, 1)).max())), 2
        ),
        "clipped_mulaw_samples": int(np.sum(np.abs(whole * 32768) >= MULAW_MAX)),
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    settings = Settings(synthetic_rtf=0.0)
    engines: list[Engine] = [SyntheticEngine(settings)]
    if installed():
        engines.append(PiperEngine(Settings(tts_engine="piper")))
    if args.chatterbox:  # checkpoints, device and family from the environment (.env)
        engines.append(build_engine("chatterbox", Settings(tts_engine="chatterbox")))
    out: dict[str, object] = {"target_lufs": args.target, "reply": REPLY}
    for engine in engines:
        await engine.load()
        row = {
            "calibration": await calibrate(engine),
            "reply_with_level": await reply(engine, args.target, True),
            "reply_without_level": await reply(engine, args.target, False),
        }
        out[engine.name] = row
        print(f"{engine.name}: {json.dumps(row, indent=2)}")
        await engine.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=float, default=-20.0)
    ap.add_argument("--chatterbox", action="store_true",
                    help="also measure Chatterbox (needs its weights: a GPU machine)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/loudness.json")
    args = ap.parse_args()
    results = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
