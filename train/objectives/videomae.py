"""VideoMAE: mask 90% of the tubes, encode the visible tubelets only, reconstruct the masked ones.

As in VideoMAE (Tong et al., 2022): tube masking; the encoder sees only visible tubelets; a light decoder
(width 192 for ViT-S, 384 for ViT-B, 512 for ViT-L; depth 4) gets the encoded tokens plus a shared mask
token, both with fixed position embeddings, and predicts the pixels of the masked tubelets; the loss is
the mean squared error against per-tubelet normalized pixels (each channel of each tubelet standardized
over its t·p·p values), on masked tubelets only.

The targets come from the same uint8 clip on the device, by `patchify` without a projection and only at
the masked tubelets: no second decode, no float copy of the clip. Their feature order is patchify's
(channel, dt, dh, dw); the head predicts in that order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from babyfast.kernels import patchify

from ..flops import block_flops, linear_flops
from ..models.vit import Block, PosEmbedCache, VideoViT, init_weights
from .base import Objective, ObjectiveOutput, register_objective
from .masking import TubeMaskSampler

__all__ = ["VideoMAE", "DECODER_SIZES", "Reconstruction", "pixel_targets", "unpatchify"]

# decoder (width, heads) by encoder width: VideoMAE's for S/B/L; ViT-Ti's is ours (head dim 64 as theirs)
DECODER_SIZES = {192: (128, 2), 384: (192, 3), 768: (384, 6), 1024: (512, 8)}


def pixel_targets(video: torch.Tensor, tubelet: tuple[int, int, int], index: torch.Tensor,
                  normalize: bool = True, backend: str = "auto") -> torch.Tensor:
    """Pixels in [0, 1] of the tubelets `index` (`[B, M]`), `[B, M, 3·t·p·p]` float32, per-tubelet
    standardized per channel when `normalize` (unbiased variance, eps 1e-6 on the std, as VideoMAE)."""
    x = patchify(video, tubelet, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), visible=index,
                 dtype=torch.float32, backend=backend)
    if not normalize:
        return x
    b, m, k = x.shape
    x = x.view(b, m, 3, k // 3)
    x = (x - x.mean(dim=-1, keepdim=True)) / (x.var(dim=-1, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return x.reshape(b, m, k)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], tubelet: tuple[int, int, int]) -> torch.Tensor:
    """The inverse of `patchify` without a projection: tubelet pixels `[B, N, 3·t·p·p]` (all N tubelets of
    `grid`, in `(time, row, column)` order, features in `(channel, dt, dh, dw)` order) back to a video
    `[B, T, H, W, 3]` of the same dtype."""
    b, n, k = tokens.shape
    (gt, gh, gw), (t, p, q) = grid, tubelet
    if n != gt * gh * gw or k != 3 * t * p * q:
        raise ValueError(f"unpatchify: tokens {tuple(tokens.shape)} do not fit grid {tuple(grid)} of tubelets "
                         f"{tuple(tubelet)} (needs [B, {gt * gh * gw}, {3 * t * p * q}])")
    x = tokens.reshape(b, gt, gh, gw, 3, t, p, q).permute(0, 1, 5, 2, 6, 3, 7, 4)  # b, gt, t, gh, p, gw, q, 3
    return x.reshape(b, gt * t, gh * p, gw * q, 3)


@dataclass
class Reconstruction:
    """What a VideoMAE makes of clips with a tube mask (`VideoMAE.reconstruction`); videos uint8 `[B, T, H, W, 3]`."""

    original: torch.Tensor       # the clips as given
    masked: torch.Tensor         # what the encoder sees: masked tubelets grey
    reconstructed: torch.Tensor  # visible tubelets as given, masked ones as predicted
    mask: torch.Tensor           # bool [B, T', H', W']: True where a tubelet was masked
    error: torch.Tensor          # [B] float32: each clip's loss (mean squared error on its masked tubelets)


@register_objective("videomae")
class VideoMAE(Objective):
    """The VideoMAE objective around a `VideoViT` encoder.

    Args:
        encoder: the video ViT to train.
        mask_ratio: fraction of each time slice's positions masked (same positions at every slice).
        decoder_dim, decoder_heads: default `DECODER_SIZES[encoder width]` (else half the width, head dim 64).
        decoder_depth: blocks of the decoder.
        norm_pix_loss: standardize each tubelet's target pixels (VideoMAE's default).
        seed: key of the masks (with the step).
    """

    encoder: VideoViT

    def __init__(self, encoder: VideoViT, mask_ratio: float = 0.9, decoder_dim: int | None = None,
                 decoder_depth: int = 4, decoder_heads: int | None = None, norm_pix_loss: bool = True,
                 seed: int = 0) -> None:
        super().__init__()
        if not isinstance(encoder, VideoViT):
            raise TypeError(f"VideoMAE: the encoder must be a VideoViT, got {type(encoder).__name__}")
        width = encoder.embed_dim
        default_dim, default_heads = DECODER_SIZES.get(width, (max(64, width // 2 // 64 * 64), 0))
        self.decoder_dim = decoder_dim or default_dim
        heads = decoder_heads or (default_heads if decoder_dim is None and default_heads
                                  else max(1, self.decoder_dim // 64))
        self.encoder, self.mask_ratio, self.norm_pix_loss, self.seed = encoder, mask_ratio, norm_pix_loss, seed
        t, p, _ = encoder.tubelet
        self.pixels = 3 * t * p * p
        self.encoder_to_decoder = nn.Linear(width, self.decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.decoder_dim))
        self.decoder = nn.ModuleList(Block(self.decoder_dim, heads, backend=encoder.config["attention_backend"])
                                     for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(self.decoder_dim, eps=1e-6)
        self.head = nn.Linear(self.decoder_dim, self.pixels)
        for module in (self.encoder_to_decoder, self.decoder, self.decoder_norm, self.head):
            module.apply(init_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder_pos = PosEmbedCache(self.decoder_dim)
        self._samplers: dict[tuple[int, int, int], TubeMaskSampler] = {}

    def sampler(self, grid: tuple[int, int, int]) -> TubeMaskSampler:
        if grid not in self._samplers:
            self._samplers[grid] = TubeMaskSampler(grid, self.mask_ratio, self.seed)
        return self._samplers[grid]

    def forward(self, batch: dict[str, Any], step: int, offset: int = 0,  # type: ignore[override]
                total: int | None = None) -> ObjectiveOutput:
        video = batch["video"]
        grid = self.encoder.grid(video.shape)
        mask = self.sampler(grid).sample(step, video.shape[0], video.device, offset, total)
        pred = self.reconstruct(video, mask.visible, mask.masked)
        target = pixel_targets(video, self.encoder.tubelet, mask.masked, self.norm_pix_loss,
                               self.encoder.patch_embed.backend)
        return ObjectiveOutput(loss=F.mse_loss(pred.float(), target))

    def reconstruct(self, video: torch.Tensor, visible: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Predicted (normalized) pixels `[B, M, 3·t·p·p]` of the tubelets `masked`, from `visible`."""
        x = self.encoder_to_decoder(self.encoder(video, visible=visible))
        pos = self.decoder_pos.get(self.encoder.grid(video.shape), video.device)
        x = x + pos[visible].to(x.dtype)
        masks = (self.mask_token + pos[masked]).to(x.dtype)
        x = torch.cat([x, masks], dim=1)
        for block in self.decoder:
            x = block(x)
        return self.head(self.decoder_norm(x[:, -masked.shape[1]:]))

    @torch.no_grad()
    def reconstruction(self, video: torch.Tensor, step: int = 0) -> Reconstruction:
        """Mask uint8 clips `[B, T, H, W, 3]` as training step `step` would, predict the masked tubelets, and
        return pictures of both (`Reconstruction`).

        With `norm_pix_loss` the model predicts each tubelet's pixels standardized per channel; they are
        drawn with the mean and standard deviation of the true tubelet (as VideoMAE's visualization does),
        so the picture shows structure the model predicted, at the true tubelet's brightness and contrast.

        Example::

            objective, cfg = load_objective("runs/videomae")     # babyfast.train.load_objective
            rec = objective.reconstruction(batch.video)
            rec.original[0, 0], rec.masked[0, 0], rec.reconstructed[0, 0]   # first frame of the first clip
        """
        grid = self.encoder.grid(video.shape)
        b, n = video.shape[0], grid[0] * grid[1] * grid[2]
        mask = self.sampler(grid).sample(step, b, video.device)
        backend = self.encoder.patch_embed.backend
        every = torch.arange(n, device=video.device).expand(b, n)
        # [B, N, K], [0, 1]
        pixels = pixel_targets(video, self.encoder.tubelet, every, normalize=False, backend=backend)
        pred = self.reconstruct(video, mask.visible, mask.masked).float()
        target = pixel_targets(video, self.encoder.tubelet, mask.masked, self.norm_pix_loss, backend)
        error = ((pred - target) ** 2).mean(dim=(1, 2))
        index = mask.masked.unsqueeze(-1).expand(-1, -1, pixels.shape[-1])
        if self.norm_pix_loss:
            true = torch.gather(pixels, 1, index).view(b, -1, 3, pixels.shape[-1] // 3)
            std = true.var(dim=-1, unbiased=True, keepdim=True).sqrt() + 1e-6
            pred = (pred.view_as(true) * std + true.mean(dim=-1, keepdim=True)).reshape(b, -1, pixels.shape[-1])
        greyed = pixels.scatter(1, index, torch.full_like(pred, 0.5))
        filled = pixels.scatter(1, index, pred)

        def picture(tokens: torch.Tensor) -> torch.Tensor:
            return (unpatchify(tokens, grid, self.encoder.tubelet) * 255).round().clamp(0, 255).to(torch.uint8)

        flags = torch.zeros(b, n, dtype=torch.bool, device=video.device).scatter(1, mask.masked, True)
        return Reconstruction(original=video, masked=picture(greyed), reconstructed=picture(filled),
                              mask=flags.view(b, *grid), error=error)

    def tokens_per_clip(self, clip_shape: tuple[int, int, int]) -> tuple[int, int]:
        grid = self.encoder.grid((1, *clip_shape, 3))
        s = self.sampler(grid)
        return s.num_visible + s.num_masked, s.num_visible

    def flops_per_clip(self, clip_shape: tuple[int, int, int]) -> float:
        n, n_vis = self.tokens_per_clip(clip_shape)
        enc = self.encoder
        d, dd, r = enc.embed_dim, self.decoder_dim, enc.config["mlp_ratio"]
        return (linear_flops(n_vis, self.pixels, d) + len(enc.blocks) * block_flops(n_vis, d, r)
                + linear_flops(n_vis, d, dd) + len(self.decoder) * block_flops(n, dd, 4.0)
                + linear_flops(n - n_vis, dd, self.pixels))

    def no_weight_decay(self) -> set[str]:
        return {"mask_token"}
