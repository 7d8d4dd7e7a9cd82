"""Streaming HiFT: committed mel frames in, audio out, equal to one pass over the whole mel.

The library's vocoder (``HiFTGenerator.inference``) is a one-shot function: it predicts f0
from the mel, builds a sine excitation whose phase starts at zero and whose harmonic
phases are drawn from the global random generator, and decodes mel and excitation
together. Called chunk by chunk, every one of those restarts at each chunk. This module
keeps them continuous instead, so that the streamed audio is (to float rounding) the
audio of one pass over the same mel:

- **f0 with context.** The f0 predictor is five 3-tap convolutions, so f0 at a frame is
  exact once the five frames on either side are known. It runs over the new frames with
  five frames of left context; a frame's f0 is stored once it has its right context too.
- **One phase.** The sine phase is accumulated (in float64, in cycles) over every frame
  whose f0 is final; harmonic phases are drawn once per stream. The excitation of a frame
  is computed once and cached, so a frame re-decoded as context gets the same excitation.
- **Context on both sides.** Each decode covers ``left_frames`` of already-emitted mel
  before the new frames (the network's convolutions reach about that far back) and emits
  audio only up to ``hold_frames`` before the last committed frame, so every emitted
  sample has right context too. The held frames come out with the next chunk or at the
  end. ``overlap_frames`` of the previous chunk are re-decoded and declared as overlap;
  both versions are nearly equal, so the crossfade only smooths rounding.
- **Own randomness.** Harmonic phases and the excitation noise come from the stream's own
  generator, drawn per absolute frame (``FrameNoise``), so interleaved streams never
  perturb each other and the result does not depend on where chunks start.

Written here rather than taken from a library because no packaged vocoder keeps HiFT's
neural-source-filter state across calls; the maths is the library's ``SineGen`` and
``SourceModuleHnNSF`` (same harmonics, amplitudes, voicing threshold and merge layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

SAMPLES_PER_FRAME = 480  # 24 kHz / 50 Hz mel frames (HiFT upsamples 8 * 5 * 3 * 4)
F0_REACH = 5  # the f0 predictor's five 3-tap convolutions see five frames each side
LEFT_FRAMES = 16  # already-emitted mel decoded again as left context
HOLD_FRAMES = 6  # committed frames held back as right context for the emitted audio
# 20 ms re-decoded at each seam and declared as overlap. The two versions differ only by
# the provisional right context (tiny weights, the worst case: seams 71.6 dB from one pass
# at 1 frame, 85.5 at 4, both under 16-bit rounding), while the crossfader holds this much
# of every chunk back: 4 frames cost 60 ms more lag and shorter first audio for nothing
# a caller can hear.
OVERLAP_FRAMES = 1


@dataclass(frozen=True)
class VocodedChunk:
    samples: np.ndarray  # float32 at 24 kHz
    overlap: int  # leading samples that re-cover the previous chunk's tail
    excitation: np.ndarray  # the merged source under ``samples`` (for measurements)


class FrameNoise:
    """Gaussian noise fixed per absolute frame: frame ``f`` always gets the same values.

    Frames are drawn one at a time, in order, from the stream's own CPU generator (so the
    values are the same on every device and whatever the chunk sizes), and kept until
    ``release`` says they are no longer needed.
    """

    def __init__(self, generator: torch.Generator, shape: tuple[int, ...],
                 fixed: torch.Tensor | None = None) -> None:
        self.generator = generator
        self.shape = shape
        # ``fixed`` (shape + (frames,)) gives the first frames (a measurement sets them).
        self._frames: list[torch.Tensor] = [] if fixed is None else list(fixed.unbind(-1))
        self._first = 0  # absolute index of self._frames[0]

    def get(self, start: int, end: int) -> torch.Tensor:
        """Frames ``[start, end)`` stacked on a new last axis."""
        if start < self._first:
            raise ValueError(f"frame {start} was released (first kept: {self._first})")
        while self._first + len(self._frames) < end:
            self._frames.append(torch.randn(self.shape, generator=self.generator))
        if end <= start:
            return torch.zeros(*self.shape, 0)
        return torch.stack(self._frames[start - self._first : end - self._first], dim=-1)

    def release(self, before: int) -> None:
        drop = min(max(before - self._first, 0), len(self._frames))
        del self._frames[:drop]
        self._first += drop


class Excitation:
    """HiFT's neural-source excitation with its phase carried across calls.

    ``render(f0)`` turns per-frame f0 (Hz) into the merged source (``l_tanh(l_linear(...))``
    of ``SourceModuleHnNSF``), starting at the accumulated phase; ``advance(f0)`` moves
    that phase past frames whose f0 is final.
    """

    def __init__(self, source_module: Any, generator: torch.Generator | None,
                 *, sample_rate: int, noise: bool = True) -> None:
        sine = source_module.l_sin_gen
        self.module = source_module
        self.harmonics = sine.harmonic_num + 1
        self.sine_amp = float(sine.sine_amp)
        self.noise_std = float(sine.noise_std)
        self.threshold = float(sine.voiced_threshold)
        self.sample_rate = sample_rate
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        # As SineGen: uniform in [-pi, pi) per harmonic, the fundamental at zero.
        phases = (torch.rand(self.harmonics, generator=gen, dtype=torch.float64) * 2 - 1)
        phases[0] = 0.0
        self.phases = phases * math.pi
        self.noise = (FrameNoise(gen, (self.harmonics, SAMPLES_PER_FRAME))
                      if noise else None)
        self.cycles = 0.0  # phase of the fundamental at the next frame, in cycles (mod 1)
        self.frame = 0  # absolute frame the phase refers to

    def render(self, f0: torch.Tensor, start: int) -> torch.Tensor:
        """Merged source (1, 1, frames * 480) for ``f0`` (frames,) from frame ``start``.

        ``start`` must be the frame the accumulated phase refers to.
        """
        if start != self.frame:
            raise ValueError(f"excitation is at frame {self.frame}, not {start}")
        n = f0.shape[0]
        device, dtype = f0.device, f0.dtype
        per_sample = f0.double().cpu().repeat_interleave(SAMPLES_PER_FRAME) / self.sample_rate
        # Inclusive cumulative sum, as SineGen's torch.cumsum; float64 so hours of phase
        # keep sub-microcycle precision.
        cycles = (self.cycles + torch.cumsum(per_sample, 0)) % 1.0
        k = torch.arange(1, self.harmonics + 1, dtype=torch.float64)[:, None]
        theta = 2 * math.pi * ((k * cycles[None]) % 1.0) + self.phases[:, None]
        sines = self.sine_amp * torch.sin(theta)
        voiced = (f0.cpu().repeat_interleave(SAMPLES_PER_FRAME) > self.threshold).double()
        sines = sines * voiced[None]
        if self.noise is not None:
            amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
            noise = self.noise.get(start, start + n).transpose(1, 2).reshape(self.harmonics, -1)
            sines = sines + amp[None] * noise.double()
        sines = sines.to(device=device, dtype=dtype).T[None]  # (1, samples, harmonics)
        merged = self.module.l_tanh(self.module.l_linear(sines))
        return merged.transpose(1, 2)

    def advance(self, f0: torch.Tensor) -> None:
        """Move the phase past ``f0``'s frames (their f0 is final)."""
        total = float(f0.double().sum().item()) * SAMPLES_PER_FRAME / self.sample_rate
        self.cycles = (self.cycles + total) % 1.0
        self.frame += f0.shape[0]
        if self.noise is not None:
            self.noise.release(self.frame)


class StreamingVocoder:
    """One utterance's HiFT state: ``push(mel, final)`` as mel frames are committed."""

    def __init__(
        self,
        hift: Any,
        *,
        trim_fade: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: bool = True,
        left_frames: int = LEFT_FRAMES,
        hold_frames: int = HOLD_FRAMES,
        overlap_frames: int = OVERLAP_FRAMES,
    ) -> None:
        self.hift = hift
        self.trim_fade = trim_fade
        self.left_frames = left_frames
        self.hold_frames = hold_frames
        self.overlap_frames = overlap_frames
        self.excitation = Excitation(hift.m_source, generator,
                                     sample_rate=hift.sampling_rate, noise=noise)
        self._mel = torch.zeros(1, 80, 0)  # committed mel from absolute frame self._mel_at
        self._mel_at = 0
        self._source = torch.zeros(1, 1, 0)  # cached excitation of frames with final f0
        self._source_at = 0  # absolute frame of self._source's first sample
        self.committed = 0  # mel frames received
        self.emitted = 0  # frames whose audio has been returned

    def push(self, mel: torch.Tensor, final: bool,
             ahead: torch.Tensor | None = None) -> VocodedChunk | None:
        """Audio for the frames that now have enough right context (all when final).

        ``ahead``: provisional mel after the committed frames (the flow's look-ahead), used
        only as right context for the decode; it is never emitted or kept.
        """
        if self._mel.shape[2] == 0:
            self._mel = self._mel.to(mel.device, mel.dtype)
        self._mel = torch.cat([self._mel, mel], dim=2)
        self.committed += mel.shape[2]
        end = self.committed if final else self.committed - self.hold_frames
        if end <= self.emitted:
            return None
        context = self._mel
        if ahead is not None and ahead.shape[2] and not final:
            context = torch.cat([self._mel, ahead.to(self._mel)], dim=2)
        with torch.inference_mode():
            return self._vocode(context, end, final)

    def _vocode(self, context: torch.Tensor, end: int, final: bool) -> VocodedChunk:
        committed = self.committed
        exact = committed if final else max(committed - F0_REACH, self.excitation.frame)
        # f0 for the frames the excitation has not covered yet, with left context.
        f0_from = self.excitation.frame
        lo = max(f0_from - F0_REACH, self._mel_at)
        f0 = self.hift.f0_predictor(context[:, :, lo - self._mel_at :])[0, f0_from - lo :]
        final_f0 = f0[: exact - f0_from]
        if final_f0.shape[0]:
            fresh = self.excitation.render(final_f0, f0_from)
            self._source = torch.cat([self._source.to(fresh), fresh], dim=2)
            self.excitation.advance(final_f0)
        # Provisional excitation for the right context, from a copy of the phase.
        tail = f0[exact - f0_from :]
        source = self._source
        if tail.shape[0]:
            saved = (self.excitation.cycles, self.excitation.frame)
            source = torch.cat([source, self.excitation.render(tail, exact)], dim=2)
            self.excitation.cycles, self.excitation.frame = saved

        overlap = min(self.overlap_frames, self.emitted)
        first = max(self.emitted - overlap - self.left_frames, 0)
        mel = context[:, :, first - self._mel_at :]
        s = source[:, :, (first - self._source_at) * SAMPLES_PER_FRAME :]
        wav = self.hift.decode(x=mel, s=s)
        a = (self.emitted - overlap - first) * SAMPLES_PER_FRAME
        b = (end - first) * SAMPLES_PER_FRAME
        samples = wav[0, a:b]
        excitation = s[0, 0, a:b]
        start_sample = (self.emitted - overlap) * SAMPLES_PER_FRAME
        if self.trim_fade is not None and start_sample < len(self.trim_fade):
            # As S3Token2Wav.inference: fade in to cut spill-over from the prompt.
            fade = self.trim_fade[start_sample : start_sample + len(samples)].to(samples)
            samples = samples.clone()
            samples[: len(fade)] *= fade
        self.emitted = end
        self._trim()
        return VocodedChunk(samples.float().cpu().numpy(), overlap * SAMPLES_PER_FRAME,
                            excitation.float().cpu().numpy())

    def _trim(self) -> None:
        """Drop mel and excitation that no later decode can reach."""
        keep_from = max(self.emitted - self.overlap_frames - self.left_frames, 0)
        keep_mel = min(keep_from, self.excitation.frame - F0_REACH)
        if keep_mel > self._mel_at:
            self._mel = self._mel[:, :, keep_mel - self._mel_at :]
            self._mel_at = keep_mel
        if keep_from > self._source_at:
            cut = min(keep_from, self.excitation.frame) - self._source_at
            self._source = self._source[:, :, cut * SAMPLES_PER_FRAME :]
            self._source_at += cut
