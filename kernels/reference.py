"""Plain-torch references for the kernels: what they compute, written the obvious way.

Tests run these in float64 to get the "true" answer and in the kernels' low precision to learn how much
error plain torch itself makes there; benchmarks use them as nothing (they are slow on purpose).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["attention_reference", "patchify_reference", "IMAGENET_MEAN", "IMAGENET_STD"]

# in units of [0, 1] pixels, as torchvision and VideoMAE write them. babyfast.imagenet holds the same for the
# loader and the models; kernels may not import babyfast (DESIGN.md), so tests/test_patchify.py keeps the two equal
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                        softmax_scale: float | None = None, layout: str = "bhnd") -> torch.Tensor:
    """softmax(q kᵀ · scale, masked) v in the inputs' own dtype.

    Same contract as the function `babyfast.kernels.attention`: `key_padding_mask` bool `[B, N_k]` with True = attend,
    `causal` lets query i see keys j <= i, and a query that sees no key outputs 0.
    """
    if layout == "bnhd":
        q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    elif layout != "bhnd":
        raise ValueError(f"attention_reference: layout must be 'bhnd' or 'bnhd', got {layout!r}")
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    n_q, n_k = q.shape[2], k.shape[2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    keep = torch.ones((1, 1, n_q, n_k), dtype=torch.bool, device=q.device)
    if causal:
        keep = keep & torch.ones((n_q, n_k), dtype=torch.bool, device=q.device).tril()
    if key_padding_mask is not None:
        keep = keep & key_padding_mask[:, None, None, :]
    sees_any = keep.any(dim=-1, keepdim=True)
    # a row with nothing to attend to would be softmax over all -inf (NaN): give it zeros instead
    scores = scores.masked_fill(~keep, float("-inf")).masked_fill(~sees_any, 0.0)
    probs = torch.softmax(scores, dim=-1).masked_fill(~sees_any, 0.0)
    out = torch.matmul(probs, v)
    return out.transpose(1, 2) if layout == "bnhd" else out


def _as_channel_vector(x: Sequence[float] | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64).flatten()
    if t.numel() != 3:
        raise ValueError(f"patchify: {name} must have 3 values (R, G, B), got {t.numel()}: {x!r}")
    return t


def patchify_reference(video: torch.Tensor, tubelet: tuple[int, int, int] = (2, 16, 16),
                       mean: Sequence[float] | torch.Tensor = IMAGENET_MEAN,
                       std: Sequence[float] | torch.Tensor = IMAGENET_STD,
                       weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                       pos_embed: torch.Tensor | None = None, visible: torch.Tensor | None = None,
                       dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Tubelet tokens (or patch embeddings) through `Conv3d`, computed in `dtype` (float64 by default).

    Pixels are normalized as `(x / 255 - mean) / std`. Without `weight` the tokens come from a Conv3d with
    an identity weight, so their feature order is by definition that of a flattened Conv3d weight
    `[D, 3, t, p, p]`. With `weight` (`[D, 3, t, p, p]` or `[D, 3·t·p·p]`) the tokens are projected, `bias`
    and `pos_embed` (`[N, D]` or `[1, N, D]`) added; `visible` (`[B, M]` or `[M]` tubelet indices) keeps
    those tokens, in that order.
    """
    t, p, _ = tubelet
    b = video.shape[0]
    mean_t = _as_channel_vector(mean, "mean").to(video.device, dtype)
    std_t = _as_channel_vector(std, "std").to(video.device, dtype)
    x = (video.to(dtype) / 255.0 - mean_t) / std_t
    x = x.permute(0, 4, 1, 2, 3)  # [B, 3, T, H, W], what Conv3d expects
    k = 3 * t * p * p
    if weight is None:
        w = torch.eye(k, dtype=dtype, device=video.device).view(k, 3, t, p, p)
        bias_t = None
    else:
        w = weight.to(dtype).reshape(-1, 3, t, p, p)
        bias_t = bias.to(dtype) if bias is not None else None
    y = F.conv3d(x, w, bias_t, stride=(t, p, p))  # [B, D, T/t, H/p, W/p]
    y = y.flatten(2).transpose(1, 2)  # [B, N, D], tubelets in (time, row, column) order
    if pos_embed is not None:
        y = y + pos_embed.to(dtype).reshape(1, y.shape[1], -1)
    if visible is not None:
        idx = visible if visible.dim() == 2 else visible.unsqueeze(0).expand(b, -1)
        y = torch.gather(y, 1, idx.long().unsqueeze(-1).expand(-1, -1, y.shape[-1]))
    return y
