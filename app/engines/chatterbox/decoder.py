"""Streaming S3Gen: speech tokens in, audio chunks out, with a declared overlap per seam.

S3Gen keeps no incremental state: its flow encoder attends over the whole token sequence.
So each decode re-runs the flow over the voice prompt plus a bounded window of tokens
(``context_tokens`` already decoded, then the new ones) and keeps only the new mel frames.
The encoder looks ``LOOKAHEAD`` tokens ahead, so the last ``2 * LOOKAHEAD`` mel frames of a
non-final decode are provisional: they are left for the next decode; the final decode
(``final=True``) flushes them. The flow solver starts from noise fixed per utterance and
indexed by absolute frame, so a frame decoded twice starts from the same noise.

The vocoder (HiFT) re-decodes the last ``overlap_frames`` mel frames of the previous chunk
in front of the new ones, with the previous chunk's source excitation for those frames
(``cache_source``), so the sine source continues across the seam. Those re-decoded samples
are the chunk's declared ``overlap``, which the pipeline's crossfader blends. Frames are
emitted exactly once (overlap aside), so the stitched stream has the one-shot length:
``2 * len(tokens)`` frames of 480 samples (one fewer when the prompt's mel length is odd,
exactly as in the library).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

LOOKAHEAD = 3  # tokens the flow encoder's pre-lookahead layer reads ahead
MEL_PER_TOKEN = 2
SAMPLES_PER_FRAME = 480  # 24 kHz / 50 Hz mel frames
SAMPLES_PER_TOKEN = MEL_PER_TOKEN * SAMPLES_PER_FRAME
OVERLAP_FRAMES = 4  # 80 ms re-decoded at each seam: covers HiFT's edge (conv_pre reaches 3)
CONTEXT_TOKENS = 48  # already-decoded tokens the flow re-reads before the new ones


@dataclass(frozen=True)
class DecodedChunk:
    samples: np.ndarray  # float32 at 24 kHz
    overlap: int  # leading samples that re-cover the previous chunk's tail


class StreamingDecoder:
    """One utterance's S3Gen state: call ``decode(tokens, final)`` as tokens accumulate."""

    def __init__(
        self,
        s3gen: Any,
        ref_dict: dict[str, Any],
        *,
        meanflow: bool,
        n_timesteps: int,
        context_tokens: int = CONTEXT_TOKENS,
        overlap_frames: int = OVERLAP_FRAMES,
        generator: torch.Generator | None = None,
    ) -> None:
        self.s3gen = s3gen
        self.ref = ref_dict
        self.meanflow = meanflow
        self.n_timesteps = n_timesteps
        self.context_tokens = context_tokens
        self.overlap_frames = overlap_frames
        self.device = s3gen.device
        self.dtype = s3gen.dtype
        self.generator = generator
        self.frames_done = 0  # mel frames emitted (committed) so far
        # embed_ref trims the prompt tokens to mel // 2; with an odd prompt mel length the
        # flow's first generated frame counts as prompt, so the output is short by one.
        prompt_tokens = torch.atleast_2d(ref_dict["prompt_token"]).shape[1]
        self._short = ref_dict["prompt_feat"].shape[1] - MEL_PER_TOKEN * prompt_tokens
        self._prompt_noise: torch.Tensor | None = None
        self._noise = torch.zeros(1, 80, 0, device=self.device, dtype=self.dtype)
        self._mel_tail = torch.zeros(1, 80, 0, device=self.device, dtype=self.dtype)
        self._source_tail = torch.zeros(1, 1, 0, device=self.device, dtype=self.dtype)

    # --- noise fixed per utterance ---
    def _randn(self, frames: int) -> torch.Tensor:
        if self.generator is None:
            return torch.randn(1, 80, frames, device=self.device, dtype=self.dtype)
        # A CPU generator keeps the noise identical on every device.
        return torch.randn(1, 80, frames, generator=self.generator).to(self.device, self.dtype)

    def _noise_for(self, prompt_frames: int, start: int, end: int) -> torch.Tensor:
        if self._prompt_noise is None:
            self._prompt_noise = self._randn(prompt_frames)
        if self._noise.shape[2] < end:
            self._noise = torch.cat([self._noise, self._randn(end - self._noise.shape[2])], 2)
        return torch.cat([self._prompt_noise, self._noise[:, :, start:end]], dim=2)

    # --- flow: tokens -> mel (CausalMaskedDiffWithXvec.inference with fixed noise) ---
    def _flow(self, tokens: torch.Tensor, start_frame: int) -> torch.Tensor:
        from chatterbox.models.s3gen.utils.mask import make_pad_mask

        flow = self.s3gen.flow
        ref = self.ref
        embedding = F.normalize(torch.atleast_2d(ref["embedding"]), dim=1)
        embedding = flow.spk_embed_affine_layer(embedding)
        prompt_token = torch.atleast_2d(ref["prompt_token"])
        prompt_feat = ref["prompt_feat"]
        token = torch.cat([prompt_token, tokens], dim=1)
        token_len = torch.tensor([token.shape[1]], device=self.device)
        mask = (~make_pad_mask(token_len)).unsqueeze(-1).to(embedding)
        h, h_masks = flow.encoder(flow.input_embedding(token.long()) * mask, token_len)
        mel_len1 = prompt_feat.shape[1]
        mel_len2 = h.shape[1] - mel_len1
        h = flow.encoder_proj(h)
        cond = torch.zeros(1, mel_len1 + mel_len2, flow.output_size, device=self.device,
                           dtype=h.dtype)
        cond[:, :mel_len1] = prompt_feat
        cond = cond.transpose(1, 2)
        mask = (~make_pad_mask(h_masks.sum(dim=-1).squeeze(dim=-1))).unsqueeze(1).to(h)
        mu = h.transpose(1, 2).contiguous()
        z = self._noise_for(mel_len1, start_frame, start_frame + mel_len2).to(mu.dtype)
        cfm = flow.decoder
        t_span = torch.linspace(0, 1, self.n_timesteps + 1, device=self.device, dtype=mu.dtype)
        if self.meanflow:
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

    def decode(self, tokens: list[int], final: bool) -> DecodedChunk | None:
        """Audio for the frames of ``tokens`` not emitted yet; None if none are ready.

        ``tokens`` is every token of the utterance so far (the decoder reads a window of
        them). Non-final calls leave the look-ahead frames; the final call emits the rest.
        """
        n = len(tokens)
        target = max(MEL_PER_TOKEN * (n if final else n - LOOKAHEAD) - self._short, 0)
        if target <= self.frames_done:
            return None
        first_token = max(self.frames_done // MEL_PER_TOKEN - self.context_tokens, 0)
        start_frame = MEL_PER_TOKEN * first_token
        with torch.inference_mode():
            window = torch.tensor([tokens[first_token:]], dtype=torch.long, device=self.device)
            mel = self._flow(window, start_frame)
            new_mel = mel[:, :, self.frames_done - start_frame : target - start_frame]
            new_mel = new_mel.to(self.dtype)
            mel_in = torch.cat([self._mel_tail, new_mel], dim=2)
            overlap = self._mel_tail.shape[2] * SAMPLES_PER_FRAME
            wav, source = self.s3gen.hift_inference(mel_in, self._source_tail)
            if self.frames_done == 0:
                # As S3Token2Wav.inference: fade in to cut spill-over from the prompt.
                fade = self.s3gen.trim_fade
                k = min(len(fade), wav.shape[1])
                wav[:, :k] *= fade[:k]
            keep = min(self.overlap_frames, mel_in.shape[2])
            self._mel_tail = mel_in[:, :, mel_in.shape[2] - keep :]
            self._source_tail = source[:, :, source.shape[2] - keep * SAMPLES_PER_FRAME :]
            samples = wav.squeeze(0).float().cpu().numpy()
        self.frames_done = target
        return DecodedChunk(samples, overlap)
