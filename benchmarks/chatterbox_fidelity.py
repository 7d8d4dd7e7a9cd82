"""Chatterbox streaming fidelity: streamed speech against the one-shot of the same tokens.

For each family: a seeded stream through the engine gives the tokens (and must give the
library's own ``generate()`` tokens for that seed); then, with those tokens and one fixed
flow noise, the streaming decoder is compared with the one-shot path, and so is the old
decoder (kept here, not in the service, as the baseline measured in the same run).

Figures per family (under ``families``):

- ``mel_committed_snr_db``: every committed mel frame against the library's one-shot flow
  (``baseline_mel_committed_snr_db``: the same for the old decoder);
- ``snr_seam_db`` / ``snr_away_db``: the streamed waveform (chunks stitched by the
  service's crossfader) against one vocoder pass over the same committed mel, in windows
  around the seams and away from them, excitation noise off;
- ``excitation_seam_jump_ratio``: the largest per-sample step of the vocoder's source
  across a seam over the largest step inside the chunks (about 1 when continuous);
- ``tokens_match_library``: the engine's seeded tokens equal ``generate()``'s;
- ``pcm16_snr_db``: the one pass against its own 16-bit rounding (the floor below which
  a seam error cannot matter);
- ``mel_seam_ratio``: the mel's frame-to-frame step where one flow run's frames follow
  another's over the median step inside (``baseline_``: the old decoder's joins;
  ``one_shot_``: the one-shot mel at the same frames). Random weights give no smooth mel,
  so it only tells something with real weights;
- ``decode_s``: wall time per decode call, median and ratio against the old decoder in
  the same run; ``stream.lag_ms``: how far the audio trails the newest token.

``baseline`` holds the old decoder's vocoder figures, ``stream`` the chunking.

    python benchmarks/chatterbox_fidelity.py --tiny            # CPU, tiny test checkpoints
    python benchmarks/chatterbox_fidelity.py --device cuda     # GPU, real weights: + WAVs
    python benchmarks/chatterbox_fidelity.py --tiny --tiny-tokens 160 --cost-lengths 50,400
    python benchmarks/chatterbox_fidelity.py --device cuda --hold-frames 2   # a sweep point
    python benchmarks/chatterbox_fidelity.py --tiny --tiny-tokens 160 --context-tokens 100 \
        --cost-lengths 50,400  # a capped flow context

Without ``--tiny`` it also writes ``<family>_streamed.wav``, ``<family>_one_shot.wav`` and
``<family>_difference.wav`` (excitation noise on, as served) under ``--wav-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TQDM_DISABLE", "1")

from app.config import Settings  # noqa: E402
from app.engines.base import AudioChunk, SynthesisParams  # noqa: E402
from app.presets import PRESETS  # noqa: E402

TEXT = "Thanks for calling! Your appointment is confirmed for Tuesday at three thirty."
# Turbo: the call-agent preset; standard: 24-token chunks keep the CFG flow cheap on CPU.
PRESET = {"turbo": "adaptive", "standard": "balanced", "multilingual": "balanced"}
SR = 24000
FRAME = 480
SEAM_WINDOW = 2 * FRAME  # samples either side of a crossfade counted as "at the seam"
S3GEN_SIL = 4299
# ``--tiny`` builds the checkpoints the tests use (tests/chatterbox_fixtures.py): EOS after
# about this many tokens; standard with a 3 s prompt so its CFG flow stays cheap on CPU.
TINY_BUILD: dict[str, dict[str, Any]] = {
    "turbo": {"eos_after": 48},
    "standard": {"eos_after": 30, "clip_seconds": 3.0},
    "multilingual": {"eos_after": 30, "clip_seconds": 3.0},
}


# --- the old decoder (before the seams issue), kept only to measure against ---
class BaselineDecoder:
    """The previous method: a 48-token window, 3 tokens of look-ahead, no blending, and
    the library's vocoder re-run over 4 cached frames with ``cache_source``."""

    def __init__(self, s3gen: Any, ref: dict, z: Any, *, meanflow: bool, n_timesteps: int,
                 source_seed: int) -> None:
        import torch

        self.s3gen, self.ref, self.z = s3gen, ref, z
        self.meanflow, self.n_timesteps, self.source_seed = meanflow, n_timesteps, source_seed
        prompt_tokens = torch.atleast_2d(ref["prompt_token"]).shape[1]
        self.prompt_frames = ref["prompt_feat"].shape[1]
        self.short = self.prompt_frames - 2 * prompt_tokens
        self.done = 0
        self.mel_tail = torch.zeros(1, 80, 0)
        self.source_tail = torch.zeros(1, 1, 0)

    def decode(self, tokens: list[int], final: bool) -> tuple[Any, Any] | None:
        import torch

        from app.engines.chatterbox.decoder import flow_mel

        n = len(tokens)
        target = max(2 * (n if final else n - 3) - self.short, 0)
        if target <= self.done:
            return None
        first = max(self.done // 2 - 48, 0)
        start = 2 * first
        p = self.prompt_frames
        z = torch.cat([self.z[:, :, :p], self.z[:, :, p + start :]], dim=2)
        with torch.inference_mode():
            window = torch.tensor([tokens[first:]], dtype=torch.long)
            mel = flow_mel(self.s3gen, self.ref, window.to(self.s3gen.device), z,
                           meanflow=self.meanflow, n_timesteps=self.n_timesteps)
            new = mel[:, :, self.done - start : target - start]
            mel_in = torch.cat([self.mel_tail.to(new), new], dim=2)
            overlap = self.mel_tail.shape[2] * FRAME
            # The same harmonic phases every call, so only the restart shows.
            with _forked_rng(self.source_seed):
                wav, source = self.s3gen.hift_inference(mel_in, self.source_tail.to(new))
            if self.done == 0:
                fade = self.s3gen.trim_fade
                k = min(len(fade), wav.shape[1])
                wav[:, :k] *= fade[:k]
            self.mel_tail = mel_in[:, :, -min(4, mel_in.shape[2]) :]
            self.source_tail = source[:, :, source.shape[2] - self.mel_tail.shape[2] * FRAME :]
        self.done = target
        chunk = AudioChunk(wav[0].float().cpu().numpy(), overlap)
        return chunk, (new, source[0, 0].float().cpu().numpy())


@contextlib.contextmanager
def _forked_rng(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet_sine_noise(hift: Any) -> Iterator[None]:
    """The library's voiced excitation noise off (its unvoiced noise has no switch)."""
    sine = hift.m_source.l_sin_gen
    saved, sine.noise_std = sine.noise_std, 0.0
    try:
        yield
    finally:
        sine.noise_std = saved


# --- measures ---
def timed_decodes(decode: Any, speech: list[int], tokens: list[int], triggers: list[int]
                  ) -> tuple[list[Any], list[float]]:
    """``decode`` at each chunk trigger, then the final one: the outputs, and the seconds
    each call took (every call, including those that had nothing to emit yet)."""
    outs, seconds = [], []
    for part, final in [(speech[:n], False) for n in triggers] + [(tokens, True)]:
        t0 = time.perf_counter()
        out = decode(part, final)
        seconds.append(time.perf_counter() - t0)
        if out:
            outs.append(out)
    return outs, seconds


def snr_db(test: np.ndarray, ref: np.ndarray) -> float:
    err = float(np.sum((np.asarray(test, np.float64) - ref) ** 2))
    power = float(np.sum(np.asarray(ref, np.float64) ** 2))
    return math.inf if err == 0 else 10 * math.log10(power / err)


def stitch(chunks: list[AudioChunk]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The service's crossfade of ``chunks``, and each seam as (crossfade start, end)."""
    from app.audio.crossfade import Crossfader

    fader = Crossfader(max(c.overlap for c in chunks))
    out, seams, pos = [], [], 0
    for c in chunks:
        if pos:
            seams.append((pos - c.overlap, pos))
        out.append(fader.push(c))
        pos += len(c.samples) - c.overlap
    out.append(fader.flush())
    return np.concatenate(out), seams


def pcm16_snr_db(ref: np.ndarray) -> float:
    """``ref`` against its own 16-bit rounding: the closest any PCM16 copy of it can be."""
    quantized = np.round(np.clip(ref, -1.0, 1.0) * 32767.0) / 32767.0
    return snr_db(quantized, ref)


def seam_snrs(streamed: np.ndarray, ref: np.ndarray, seams: list[tuple[int, int]]
              ) -> tuple[float, float]:
    at = np.zeros(len(ref), dtype=bool)
    for a, b in seams:
        at[max(a - SEAM_WINDOW, 0) : b + SEAM_WINDOW] = True
    return snr_db(streamed[at], ref[at]), snr_db(streamed[~at], ref[~at])


def jump_ratio(excitations: list[np.ndarray]) -> float:
    """Largest step across a seam over the largest step inside the chunks."""
    steps = [np.abs(np.diff(e)) for e in excitations if len(e) > 1]
    inside = max(float(s.max()) for s in steps)
    across = max(abs(float(b[0]) - float(a[-1]))
                 for a, b in zip(excitations[:-1], excitations[1:], strict=True))
    return across / inside


def mel_seam_ratio(parts: list[np.ndarray]) -> float:
    """How abruptly the mel changes where one flow run's frames follow another's: the
    mean frame-to-frame step (RMS over bins) at the joins over the median step inside
    the parts. Frames of one run change smoothly; a join of two runs that disagree jumps."""
    mel = np.concatenate(parts, axis=1)
    steps = np.sqrt(np.mean(np.diff(mel, axis=1) ** 2, axis=0))  # steps[t]: t -> t + 1
    joins = np.cumsum([p.shape[1] for p in parts])[:-1] - 1
    joins = joins[(joins >= 0) & (joins < len(steps))]
    inside = np.delete(steps, joins)
    return float(np.mean(steps[joins]) / np.median(inside)) if len(joins) else 1.0


# --- tokens ---
@contextlib.contextmanager
def record_decodes() -> Iterator[dict[int, list[int]]]:
    """Record the tokens each StreamingDecoder gets at its final decode (by decoder)."""
    from app.engines.chatterbox.decoder import StreamingDecoder

    seen: dict[int, list[int]] = {}
    original = StreamingDecoder.decode

    def decode(self: Any, tokens: list[int], final: bool) -> Any:
        if final:
            seen[id(self)] = list(tokens)
        return original(self, tokens, final)

    StreamingDecoder.decode = decode  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        StreamingDecoder.decode = original  # type: ignore[method-assign]


async def engine_tokens(engine: Any, voice: Any, text: str, preset: str, seed: int
                        ) -> list[int]:
    """What a seeded stream through the engine hands to S3Gen (one sentence)."""
    with record_decodes() as seen:
        params = SynthesisParams(preset=PRESETS[preset], seed=seed)
        async for _ in engine.stream(text, voice, params):
            pass
    (tokens,) = seen.values()
    return tokens


class _Captured(Exception):
    pass


def library_tokens(model: Any, family: str, conds: Any, text: str, preset: str,
                   seed: int) -> list[int]:
    """The tokens the library's own ``generate()`` hands to S3Gen for ``seed``."""
    import torch

    p = PRESETS[preset]
    kwargs: dict[str, Any] = {"temperature": p.temperature}
    if family != "turbo":
        kwargs |= {"exaggeration": p.exaggeration, "cfg_weight": p.cfg_weight}
    if family == "multilingual":
        kwargs["language_id"] = "en"
    got: list[int] = []

    def capture(*_: Any, speech_tokens: Any, **__: Any) -> Any:
        got.extend(int(t) for t in torch.atleast_1d(speech_tokens).flatten())
        raise _Captured

    saved_conds, saved_inference = model.conds, model.s3gen.inference
    model.conds = copy.copy(conds)  # generate() may replace conds.t3: never the voice's
    model.s3gen.inference = capture
    try:
        torch.manual_seed(seed)
        with contextlib.suppress(_Captured):
            model.generate(text, **kwargs)
    finally:
        model.conds, model.s3gen.inference = saved_conds, saved_inference
    return got


# --- one family ---
def one_shot_mel(s3gen: Any, ref: dict, tokens: list[int], z: Any, *, meanflow: bool,
                 steps: int, noise_seed: int) -> Any:
    """The library's flow over every token, starting from ``z`` (prompt part included)."""
    import torch

    p = ref["prompt_feat"].shape[1]
    tok = torch.tensor([tokens], dtype=torch.long, device=s3gen.device)
    with _forked_rng(noise_seed), torch.inference_mode(), \
            contextlib.redirect_stdout(io.StringIO()):
        mel, _ = s3gen.flow.inference(
            token=tok, token_len=torch.tensor([tok.shape[1]], device=s3gen.device),
            finalize=True, n_timesteps=steps, noised_mels=z[:, :, p:].to(s3gen.device),
            meanflow=meanflow, **ref)
    return mel


def fixed_noise(ref: dict, frames: int, noise_seed: int) -> Any:
    """What the library's flow draws as ``randn_like(mu)`` after ``manual_seed(noise_seed)``."""
    import torch

    with _forked_rng(noise_seed):
        return torch.randn(1, 80, ref["prompt_feat"].shape[1] + frames)


def measure_family(engine: Any, *, text: str = TEXT, preset: str | None = None,
                   seed: int = 7, noise_seed: int = 1234, wav_dir: Path | None = None,
                   options: dict[str, Any] | None = None) -> dict:
    """All figures for ``engine``'s family (see the module docstring).

    ``options`` go to ``StreamingDecoder`` (look-ahead, blend, vocoder hold: for sweeps).
    """
    import torch

    from app.engines.chatterbox.decoder import StreamingDecoder
    from app.engines.chatterbox.vocoder import StreamingVocoder

    family = engine.family
    preset = preset or PRESET[family]
    model = engine._model
    voice = asyncio.run(engine.prepare_voice(None))
    ref = voice.data.gen
    tokens = asyncio.run(engine_tokens(engine, voice, text, preset, seed))
    library = library_tokens(model, family, voice.data, text, preset, seed)
    speech = tokens[:-3] if family == "turbo" else tokens  # Turbo's final adds S3GEN_SIL
    first, later = PRESETS[preset].chunk_sizes()
    triggers = list(range(first, len(speech) + 1, later))
    meanflow = family == "turbo"
    steps = 2 if meanflow else PRESETS[preset].decoder_steps
    s3gen = model.s3gen
    short = ref["prompt_feat"].shape[1] - 2 * torch.atleast_2d(ref["prompt_token"]).shape[1]
    z = fixed_noise(ref, 2 * len(tokens) - short, noise_seed)
    target = one_shot_mel(s3gen, ref, tokens, z, meanflow=meanflow, steps=steps,
                          noise_seed=noise_seed)[0].float().cpu().numpy()

    # The service's decoder, excitation noise off, committed mel recorded.
    decoder = StreamingDecoder(s3gen, ref, meanflow=meanflow, n_timesteps=steps, seed=seed,
                               excitation_noise=False, noise=z, **(options or {}))
    pushes: list[tuple[Any, bool, Any]] = []
    push = decoder.vocoder.push

    def record(mel: Any, final: bool, ahead: Any = None) -> Any:
        pushes.append((mel, final, ahead))
        return push(mel, final, ahead)

    decoder.vocoder.push = record  # type: ignore[method-assign]
    chunks, seconds = timed_decodes(decoder.decode, speech, tokens, triggers)
    committed = torch.cat([m for m, _, _ in pushes], dim=2)[0].float().cpu().numpy()
    streamed, seams = stitch([AudioChunk(c.samples, c.overlap) for c in chunks])
    one_pass = StreamingVocoder(s3gen.mel2wav, trim_fade=s3gen.trim_fade, noise=False,
                                generator=torch.Generator().manual_seed(seed + 1))
    whole = one_pass.push(torch.cat([m for m, _, _ in pushes], dim=2), True)
    assert whole is not None
    seam_db, away_db = seam_snrs(streamed, whole.samples, seams)

    # The old decoder on the same tokens and noise.
    base = BaselineDecoder(s3gen, ref, z, meanflow=meanflow, n_timesteps=steps,
                           source_seed=seed)
    with _quiet_sine_noise(s3gen.mel2wav):
        outs, base_seconds = timed_decodes(base.decode, speech, tokens, triggers)
        base_mel = torch.cat([new for _, (new, _) in outs], dim=2)
        with _forked_rng(seed), torch.inference_mode():
            base_whole, _ = s3gen.hift_inference(base_mel, None)
    base_streamed, base_seams = stitch([c for c, _ in outs])
    base_whole = base_whole[0].float().cpu().numpy()
    base_whole[: len(s3gen.trim_fade)] *= s3gen.trim_fade.cpu().numpy()
    base_seam_db, base_away_db = seam_snrs(base_streamed, base_whole, base_seams)
    base_exc = [src[c.overlap :] for c, (_, src) in outs]

    with torch.inference_mode():
        mel_t = torch.from_numpy(target)[None].to(s3gen.device, s3gen.dtype)
        f0 = s3gen.mel2wav.f0_predictor(mel_t)[0].float().cpu().numpy()
    result = {
        "preset": preset,
        "tokens": len(tokens),
        "mel_committed_snr_db": snr_db(committed, target),
        # The joins between runs in the committed mel (1 when no join stands out), the
        # old decoder's, and the one-shot's at the same frames (where nothing joins).
        "mel_seam_ratio": mel_seam_ratio(
            [m[0].float().cpu().numpy() for m, _, _ in pushes if m.shape[2]]),
        "baseline_mel_seam_ratio": mel_seam_ratio(
            [new[0].float().cpu().numpy() for _, (new, _) in outs]),
        "one_shot_mel_seam_ratio": mel_seam_ratio(np.split(
            target, np.cumsum([m.shape[2] for m, _, _ in pushes if m.shape[2]])[:-1],
            axis=1)),
        "baseline_mel_committed_snr_db": snr_db(base_mel[0].float().cpu().numpy(), target),
        "snr_seam_db": seam_db,
        "snr_away_db": away_db,
        "pcm16_snr_db": pcm16_snr_db(whole.samples),
        "excitation_seam_jump_ratio": jump_ratio([c.excitation[c.overlap :] for c in chunks]),
        "tokens_match_library": tokens == library,
        "baseline": {"snr_seam_db": base_seam_db, "snr_away_db": base_away_db,
                     "excitation_seam_jump_ratio": jump_ratio(base_exc)},
        "f0_hz": {"p5": float(np.percentile(f0, 5)), "p95": float(np.percentile(f0, 95)),
                  "std": float(np.std(f0))},
        "stream": {"chunks": len(chunks), "seams": len(seams),
                   "first_chunk_ms": 1000 * (len(chunks[0].samples)) / SR,
                   "baseline_first_chunk_ms": 1000 * len(outs[0][0].samples) / SR,
                   "audio_s": len(streamed) / SR,
                   # How far the audio out of the crossfader trails the newest token:
                   # look-ahead frames, vocoder hold, and the crossfader's overlap hold.
                   "lag_ms": 20 * (2 * decoder.lookahead + decoder.vocoder.hold_frames
                                   + decoder.vocoder.overlap_frames),
                   "baseline_lag_ms": 20 * (2 * 3 + 4)},
        # Wall time of one decode call (flow + vocoder), this decoder against the old one
        # on the same tokens in the same run.
        "decode_s": {"median": float(np.median(seconds)),
                     "baseline_median": float(np.median(base_seconds)),
                     "ratio": float(np.median(seconds) / np.median(base_seconds)),
                     "per_call": seconds, "baseline_per_call": base_seconds},
    }
    if wav_dir is not None:
        write_wavs(wav_dir, family, pushes, s3gen, seed)
    return result


def write_wavs(wav_dir: Path, family: str, pushes: list, s3gen: Any, seed: int) -> None:
    """Streamed, one-shot and difference WAVs of the same mel, excitation noise on."""
    import soundfile as sf
    import torch

    from app.engines.chatterbox.vocoder import StreamingVocoder

    def vocoder() -> StreamingVocoder:
        return StreamingVocoder(s3gen.mel2wav, trim_fade=s3gen.trim_fade,
                                generator=torch.Generator().manual_seed(seed + 1))

    stream = vocoder()
    chunks = [c for c in (stream.push(m, f, a) for m, f, a in pushes) if c]
    streamed, _ = stitch([AudioChunk(c.samples, c.overlap) for c in chunks])
    whole = vocoder().push(torch.cat([m for m, _, _ in pushes], dim=2), True)
    assert whole is not None
    wav_dir.mkdir(parents=True, exist_ok=True)
    for name, audio in (("streamed", streamed), ("one_shot", whole.samples),
                        ("difference", streamed - whole.samples)):
        sf.write(str(wav_dir / f"{family}_{name}.wav"), audio, SR)


def flow_cost(engine: Any, lengths: list[int], repeats: int = 2,
              context_tokens: int | None = None) -> list[dict]:
    """Seconds for one chunk's flow run after ``n`` tokens: the whole prefix (this
    decoder) against the old 48-token window (48 + 24 new + 3 look-ahead tokens), and with
    ``context_tokens`` set, a run capped to that many committed tokens (+ 24 + 4)."""
    import torch

    from app.engines.chatterbox.decoder import flow_mel

    model, family = engine._model, engine.family
    ref = asyncio.run(engine.prepare_voice(None)).data.gen
    meanflow = family == "turbo"
    steps = 2 if meanflow else PRESETS[PRESET[family]].decoder_steps
    rows = []
    for n in lengths:
        row: dict[str, Any] = {"tokens": n}
        runs = [("whole_prefix_s", n), ("window_48_s", min(n, 75))]
        if context_tokens is not None:
            runs.append((f"context_{context_tokens}_s", min(n, context_tokens + 28)))
        for name, count in runs:
            tokens = torch.randint(0, 6561, (1, count), generator=torch.Generator()
                                   .manual_seed(n)).to(model.s3gen.device)
            z = fixed_noise(ref, 2 * count, n)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    flow_mel(model.s3gen, ref, tokens, z, meanflow=meanflow,
                             n_timesteps=steps)
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            row[name] = min(times)
        rows.append(row)
        capped = (f", capped to {context_tokens} "
                  f"{row[f'context_{context_tokens}_s']:.3f} s" if context_tokens else "")
        print(f"{family:10s} {n:4d} tokens: whole prefix {row['whole_prefix_s']:.3f} s, "
              f"48-token window {row['window_48_s']:.3f} s{capped} per chunk", flush=True)
    return rows


# --- command line ---
def load_engine(family: str, ckpt: Path | None, device: str) -> Any:
    from app.engines.chatterbox import ChatterboxEngine

    settings = Settings(_env_file=None, chatterbox_model=family, chatterbox_ckpt_dir=ckpt,
                        chatterbox_device=device)
    engine = ChatterboxEngine(settings)
    asyncio.run(engine.load())
    return engine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="turbo,standard")
    p.add_argument("--tiny", action="store_true",
                   help="tiny random-weight checkpoints on CPU (no WAVs)")
    p.add_argument("--ckpt-dir", type=Path, default=None,
                   help="local checkpoint for every listed family (default: HF download, "
                   "or with --tiny a fresh tiny checkpoint)")
    p.add_argument("--tiny-tokens", type=int, default=None,
                   help="with --tiny: speech tokens before the tiny model's EOS (default: "
                   "as the tests, 48 Turbo, 30 standard)")
    p.add_argument("--lookahead", type=int, default=None,
                   help="tokens a frame waits for before it is committed (decoder default)")
    p.add_argument("--hold-frames", type=int, default=None,
                   help="committed frames the vocoder holds back as right context")
    p.add_argument("--overlap-frames", type=int, default=None,
                   help="frames of the previous chunk re-decoded and crossfaded at each seam")
    p.add_argument("--context-tokens", type=int, default=None,
                   help="cap the committed tokens a flow run re-reads "
                   "(CHATTERBOX_FLOW_CONTEXT_TOKENS; default: the whole prefix)")
    p.add_argument("--device", default="auto")
    p.add_argument("--text", default=TEXT)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path,
                   default=Path(__file__).parent / "results" / "chatterbox_fidelity.json")
    p.add_argument("--cost-lengths", default="",
                   help="comma-separated utterance lengths in tokens: time one chunk's "
                   "flow run at each (whole prefix against the old window)")
    p.add_argument("--wav-dir", type=Path,
                   default=Path(__file__).parent / "results" / "fidelity")
    args = p.parse_args(argv)
    args.families = [f for f in args.families.split(",") if f]
    args.cost_lengths = [int(n) for n in args.cost_lengths.split(",") if n]
    return args


def decoder_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``StreamingDecoder`` settings the command line overrides (for a sweep)."""
    options: dict[str, Any] = {}
    if args.lookahead is not None:
        options["lookahead"] = args.lookahead
    vocoder = {name: getattr(args, name) for name in ("hold_frames", "overlap_frames")
               if getattr(args, name) is not None}
    if vocoder:
        options["vocoder"] = vocoder
    if args.context_tokens is not None:
        options["context_tokens"] = args.context_tokens
    return options


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    device = "cpu" if args.tiny else args.device
    if not torch.cuda.is_available():
        torch.set_num_threads(min(os.cpu_count() or 1, 4))
    report: dict[str, Any] = {"settings": {"tiny": args.tiny, "device": device,
                                           "seed": args.seed, "text": args.text,
                                           "tiny_tokens": args.tiny_tokens,
                                           "decoder": decoder_options(args)},
                              "families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            ckpt = args.ckpt_dir
            if args.tiny and ckpt is None:
                from app.engines.chatterbox.tiny import build_tiny_checkpoint

                build = dict(TINY_BUILD[family])
                if args.tiny_tokens:
                    build["eos_after"] = args.tiny_tokens
                ckpt = build_tiny_checkpoint(family, Path(tmp) / family, **build)
            engine = load_engine(family, ckpt, device)
            try:
                entry = measure_family(engine, text=args.text, seed=args.seed,
                                       wav_dir=None if args.tiny else args.wav_dir,
                                       options=decoder_options(args))
                if args.cost_lengths:
                    entry["flow_cost_per_chunk"] = flow_cost(
                        engine, args.cost_lengths, context_tokens=args.context_tokens)
            finally:
                asyncio.run(engine.aclose())
            report["families"][family] = entry
            print(f"{family:10s} mel committed {entry['mel_committed_snr_db']:6.1f} dB "
                  f"(baseline {entry['baseline_mel_committed_snr_db']:5.1f})  "
                  f"seam {entry['snr_seam_db']:6.1f} dB away {entry['snr_away_db']:6.1f} dB  "
                  f"jump {entry['excitation_seam_jump_ratio']:.2f} "
                  f"(baseline {entry['baseline']['excitation_seam_jump_ratio']:.2f})  "
                  f"tokens match {entry['tokens_match_library']}  "
                  f"decode median {entry['decode_s']['median']:.3f} s "
                  f"(baseline {entry['decode_s']['baseline_median']:.3f}, ratio "
                  f"{entry['decode_s']['ratio']:.2f})  lag {entry['stream']['lag_ms']} ms "
                  f"(baseline {entry['stream']['baseline_lag_ms']})", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
