"""Streaming S3Gen: speech tokens in, audio chunks out, close to the one-shot decode.

S3Gen keeps no incremental state, and its flow (encoder and estimator) attends over the
whole sequence, so a frame's mel changes a little whenever tokens are added after it.
Each decode therefore re-runs the flow over the voice prompt plus every token so far (the
whole prefix: cutting the left context moves frames far more than appending tokens does,
and a sentence is at most about 500 tokens) and commits a frame only when it is
``lookahead`` tokens behind the newest one. The frames the run computed after that point
are kept as provisional; the next run's first ``blend_frames`` new frames are a raised-cosine
blend from those provisional frames to its own, so no committed frame is ever followed by
an abrupt switch to another run's mel. Committed frames are never changed. The provisional
frames also serve the vocoder as right context (never as output); the last
``PRE_LOOKAHEAD`` tokens' frames among them are made as the one-shot makes an utterance's
last frames (the encoder's look-ahead convolution reads zero padding there), so they only
ever count as context, not as blend material.

The flow solver starts from noise fixed per absolute frame (``FrameNoise``, drawn from the
stream's own generator), so a frame starts from the same noise in every run and streams
never draw from each other's randomness.

Committed mel goes to ``StreamingVocoder`` (``vocoder.py``), which keeps the vocoder's
f0, sine phase and excitation continuous and holds back a few frames of right context.
Frames are emitted exactly once (the declared overlap aside), so the stitched stream has
the one-shot length: ``2 * len(tokens)`` frames of 480 samples (one fewer when the prompt's
mel length is odd, exactly as in the library).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from app.engines.chatterbox.vocoder import (
    HOLD_FRAMES,
    OVERLAP_FRAMES,
    SAMPLES_PER_FRAME,
    FrameNoise,
    StreamingVocoder,
    VocodedChunk,
)

PRE_LOOKAHEAD = 3  # tokens the flow encoder's pre-lookahead convolution reads ahead
LOOKAHEAD = 4  # tokens a frame waits for before it is committed (> PRE_LOOKAHEAD)
BLEND_FRAMES = 2  # provisional frames over which one run's mel hands over to the next
MEL_PER_TOKEN = 2
SAMPLES_PER_TOKEN = MEL_PER_TOKEN * SAMPLES_PER_FRAME
# Frames of look-ahead behind the newest token before audio comes out (the first chunk's
# audio is this much shorter than its tokens).
HELD_FRAMES = MEL_PER_TOKEN * LOOKAHEAD + HOLD_FRAMES

DecodedChunk = VocodedChunk

__all__ = ["BLEND_FRAMES", "DecodedChunk", "HELD_FRAMES", "LOOKAHEAD", "OVERLAP_FRAMES",
           "SAMPLES_PER_TOKEN", "StreamingDecoder", "flow_mel"]


def flow_mel(s3gen: Any, ref: dict[str, Any], tokens: torch.Tensor, z: torch.Tensor, *,
             meanflow: bool, n_timesteps: int) -> torch.Tensor:
    """``CausalMaskedDiffWithXvec.inference`` with the starting noise ``z`` given.

    ``tokens`` is (1, T) without the prompt; ``z`` is (1, 80, prompt mel + generated mel).
    Returns the generated frames' mel (1, 80, frames), as ``finalize=True`` does.
    """
    from chatterbox.models.s3gen.utils.mask import make_pad_mask

    flow = s3gen.flow
    device = tokens.device
    embedding = F.normalize(torch.atleast_2d(ref["embedding"]), dim=1)
    embedding = flow.spk_embed_affine_layer(embedding)
    prompt_feat = ref["prompt_feat"]
    token = torch.cat([torch.atleast_2d(ref["prompt_token"]), tokens], dim=1)
    token_len = torch.tensor([token.shape[1]], device=device)
    mask = (~make_pad_mask(token_len)).unsqueeze(-1).to(embedding)
    h, _ = flow.encoder(flow.input_embedding(token.long()) * mask, token_len)
    mel_len1 = prompt_feat.shape[1]
    frames = h.shape[1]
    h = flow.encoder_proj(h)
    cond = torch.zeros(1, frames, flow.output_size, device=device, dtype=h.dtype)
    cond[:, :mel_len1] = prompt_feat
    cond = cond.transpose(1, 2)
    mask = torch.ones(1, 1, frames, device=device, dtype=h.dtype)
    mu = h.transpose(1, 2).contiguous()
    z = z[:, :, :frames].to(device=device, dtype=mu.dtype)
    cfm = flow.decoder
    t_span = torch.linspace(0, 1, n_timesteps + 1, device=device, dtype=mu.dtype)
    if meanflow:
        # CausalConditionalCFM.basic_euler, without its print and progress bar.
        x = z
        for t, r in zip(t_span[:-1], t_span[1:], strict=True):
            t, r = t[None], r[None]
            dxdt = cfm.estimator.forward(x, mask=mask, mu=mu, t=t, spks=embedding,
                                         cond=cond, r=r)
            x = x + (r - t) * dxdt
        feat = x
    else:
        if cfm.t_scheduler == "cosine":
            t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
        feat = cfm.solve_euler(z, t_span=t_span, mu=mu, mask=mask, spks=embedding,
                               cond=cond, meanflow=False)
    return feat[:, :, mel_len1:]


class StreamingDecoder:
    """One utterance's S3Gen state: call ``decode(tokens, final)`` as tokens accumulate."""

    def __init__(
        self,
        s3gen: Any,
        ref_dict: dict[str, Any],
        *,
        meanflow: bool,
        n_timesteps: int,
        seed: int = 0,
        lookahead: int = LOOKAHEAD,
        blend_frames: int = BLEND_FRAMES,
        context_tokens: int | None = None,
        excitation_noise: bool = True,
        noise: torch.Tensor | None = None,
        vocoder: dict[str, int] | None = None,
    ) -> None:
        """``seed`` seeds this stream's own generators (flow noise, vocoder excitation).

        ``context_tokens`` caps the already-committed tokens a run re-reads (None: all).
        ``noise`` fixes the flow's starting noise (1, 80, prompt + generated frames), for
        measurements against the library; frames past it come from the generator.
        """
        if lookahead < PRE_LOOKAHEAD:
            raise ValueError(f"lookahead must be at least {PRE_LOOKAHEAD} tokens")
        # Only frames with their encoder look-ahead in real tokens are blended.
        blend_frames = min(blend_frames, MEL_PER_TOKEN * (lookahead - PRE_LOOKAHEAD))
        self.s3gen = s3gen
        self.ref = ref_dict
        self.meanflow = meanflow
        self.n_timesteps = n_timesteps
        self.lookahead = lookahead
        self.blend_frames = blend_frames
        self.context_tokens = context_tokens
        self.device = s3gen.device
        self.dtype = s3gen.dtype
        self.committed = 0  # mel frames committed (handed to the vocoder) so far
        # embed_ref trims the prompt tokens to mel // 2; with an odd prompt mel length the
        # flow's first generated frame counts as prompt, so the output is short by one.
        prompt_tokens = torch.atleast_2d(ref_dict["prompt_token"]).shape[1]
        self._prompt_frames = ref_dict["prompt_feat"].shape[1]
        self._short = self._prompt_frames - MEL_PER_TOKEN * prompt_tokens
        # CPU generators keep the noise identical on every device.
        flow_gen = torch.Generator().manual_seed(seed)
        if noise is None:
            noise = torch.randn(1, 80, self._prompt_frames, generator=flow_gen)
        self._prompt_noise = noise[:, :, : self._prompt_frames]
        self._noise = FrameNoise(flow_gen, (80,), noise[0, :, self._prompt_frames :])
        self._pending = torch.zeros(1, 80, 0)  # provisional frames after self.committed
        self.vocoder = StreamingVocoder(
            s3gen.mel2wav, trim_fade=s3gen.trim_fade, noise=excitation_noise,
            generator=torch.Generator().manual_seed(seed + 1), **(vocoder or {}),
        )

    def frames_for(self, tokens: int) -> int:
        """Mel frames S3Gen makes for ``tokens`` speech tokens."""
        return max(MEL_PER_TOKEN * tokens - self._short, 0)

    def decode(self, tokens: list[int], final: bool) -> DecodedChunk | None:
        """Audio for the frames of ``tokens`` ready to come out; None if none are.

        ``tokens`` is every token of the utterance so far. Non-final calls commit frames
        ``lookahead`` tokens behind the newest; the final call commits and emits the rest.
        """
        n = len(tokens)
        target = self.frames_for(n if final else n - self.lookahead)
        new = torch.zeros(1, 80, 0, device=self.device, dtype=self.dtype)
        if target > self.committed:
            with torch.inference_mode():
                new = self._commit(tokens, target)
        elif not final:
            return None
        return self.vocoder.push(new, final, self._pending)

    def _commit(self, tokens: list[int], target: int) -> torch.Tensor:
        first_token = 0
        if self.context_tokens is not None:
            first_token = max(self.committed // MEL_PER_TOKEN - self.context_tokens, 0)
        start = MEL_PER_TOKEN * first_token
        window = torch.tensor([tokens[first_token:]], dtype=torch.long, device=self.device)
        end = self.frames_for(len(tokens))
        z = torch.cat([self._prompt_noise, self._noise.get(start, end)[None]], dim=2)
        mel = flow_mel(self.s3gen, self.ref, window, z, meanflow=self.meanflow,
                       n_timesteps=self.n_timesteps).to(self.dtype)
        new = mel[:, :, self.committed - start : target - start].clone()
        k = min(self.blend_frames, self._pending.shape[2], new.shape[2])
        if k:
            # Raised cosine from the previous run's provisional frames to this run's.
            w = 0.5 * (1 + torch.cos(math.pi * (torch.arange(k) + 0.5) / k))
            w = w.to(new)
            new[:, :, :k] = w * self._pending[:, :, :k] + (1 - w) * new[:, :, :k]
        self._pending = mel[:, :, target - start :]
        self.committed = target
        if self.context_tokens is not None:
            self._noise.release(MEL_PER_TOKEN * max(target // MEL_PER_TOKEN
                                                    - self.context_tokens, 0))
        return new
