"""Video ViT: tubelet patch embedding from uint8 clips, pre-norm blocks over `babyfast.kernels`, sizes.

The model takes the loader's clips as they come, uint8 `[B, T, H, W, 3]`: `PatchEmbed` normalizes,
cuts tubelets and projects them in one call of `babyfast.kernels.patchify` (only the visible tubelets
when a mask is given), and `Attention` calls `babyfast.kernels.attention`. Normalization therefore lives
in one place, `PatchEmbed`.

The layout follows VideoMAE's encoder so that parameter counts and results compare: tubelet 2x16x16,
fixed sin-cos position embedding (3-D here: time, row and column each get their own frequencies), query
and value biases without a key bias, LayerNorm with eps 1e-6, GELU MLP of ratio 4, linearly growing
drop-path, Xavier-uniform linear layers.

Example::

    model = create_model("vit_small")
    video = torch.randint(0, 256, (2, 16, 224, 224, 3), dtype=torch.uint8)
    tokens = model(video)                                  # [2, 1568, 384]
    tokens = model(video, visible=idx)                     # [2, M, 384]: only the tubelets in idx
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from babyfast.imagenet import IMAGENET_MEAN, IMAGENET_STD
from babyfast.kernels import attention, patchify

from .registry import register_model

__all__ = ["VideoViT", "PatchEmbed", "Attention", "Block", "SIZES", "sincos_pos_embed_3d",
           "vit_tiny", "vit_small", "vit_base", "vit_large", "count_parameters"]

# The sizes, in one place (width, depth, heads); VideoMAE's encoders of the same names.
SIZES: dict[str, dict[str, int]] = {
    "vit_tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "vit_small": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large": dict(embed_dim=1024, depth=24, num_heads=16),
}


def _sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.to(torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_pos_embed_3d(grid: Sequence[int], dim: int) -> torch.Tensor:
    """Fixed position embedding `[T'·H'·W', dim]` (float32) for a tubelet grid, tokens in (time, row,
    column) order as `patchify` lays them out. Row and column get `2·⌊dim/6⌋` channels each, time the
    rest, each half sine, half cosine."""
    if dim % 2 or dim < 6:
        raise ValueError(f"sincos_pos_embed_3d: dim must be even and >= 6, got {dim}")
    per = (dim // 3) // 2 * 2
    dims = (dim - 2 * per, per, per)
    axes = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    parts = [_sincos_1d(a.reshape(-1), d) for a, d in zip(axes, dims, strict=False)]
    return torch.cat(parts, dim=1).to(torch.float32)


def _compute_dtype(device: torch.device, fallback: torch.dtype) -> torch.dtype:
    """The dtype autocast runs matmuls in on this device, else `fallback`."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return fallback


class PatchEmbed(nn.Module):
    """uint8 video → tubelet embeddings (+ position embedding), only the visible tubelets if given.

    The weight has a Conv3d's shape and initialization (VideoMAE's patch embedding); it is applied by
    `babyfast.kernels.patchify`, which reads uint8 pixels and folds the normalization in.
    """

    def __init__(self, embed_dim: int, tubelet: Sequence[int] = (2, 16, 16),
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 backend: str = "auto") -> None:
        super().__init__()
        # length checked just below
        self.tubelet: tuple[int, int, int] = tuple(int(x) for x in tubelet)  # pyright: ignore[reportAttributeAccessIssue]
        if len(self.tubelet) != 3 or self.tubelet[1] != self.tubelet[2]:
            raise ValueError(f"PatchEmbed: tubelet must be (t, p, p), got {tuple(tubelet)}")
        self.mean, self.std, self.backend = tuple(mean), tuple(std), backend
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=self.tubelet, stride=self.tubelet)

    def grid(self, video_shape: Sequence[int]) -> tuple[int, int, int]:
        """Tubelets along (time, rows, columns) of a `[B, T, H, W, 3]` video."""
        _, t, h, w, _ = video_shape
        tt, p, _ = self.tubelet
        if t % tt or h % p or w % p:
            raise ValueError(f"PatchEmbed: a clip of {t} frames of {h}x{w} does not divide into tubelets "
                             f"{self.tubelet}; use clip lengths divisible by {tt} and sizes by {p}")
        return t // tt, h // p, w // p

    def forward(self, video: torch.Tensor, pos_embed: torch.Tensor | None = None,
                visible: torch.Tensor | None = None) -> torch.Tensor:
        dtype = _compute_dtype(video.device, self.proj.weight.dtype)
        return patchify(video, self.tubelet, self.mean, self.std, weight=self.proj.weight, bias=self.proj.bias,
                        pos_embed=pos_embed, visible=visible, dtype=dtype, backend=self.backend)


class Attention(nn.Module):
    """Multi-head self-attention through `babyfast.kernels.attention` (backend by name or "auto").

    q, k, v are strided views of one fused projection in `[B, N, H, D]` layout, read in place by the
    Triton kernel. VideoMAE's biases: learned for queries and values, none for keys.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, backend: str = "auto") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: width {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.head_dim, self.backend = num_heads, dim // num_heads, backend
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).view(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.unbind(2)
        out = attention(q, k, v, key_padding_mask=key_padding_mask, layout="bnhd", backend=self.backend)
        return self.proj(out.reshape(b, n, d))


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability p (scaled at training)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * keep.bernoulli_(1 - self.p).div_(1 - self.p)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, eps: float = 1e-6, backend: str = "auto") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, backend=backend)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), key_padding_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_weights(module: nn.Module) -> None:
    """VideoMAE's initialization: Xavier-uniform linear layers with zero bias, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class PosEmbedCache:
    """Fixed sin-cos position embeddings per (grid, device), made once: not parameters, not saved."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._cache: dict[tuple[Any, ...], torch.Tensor] = {}

    def get(self, grid: Sequence[int], device: torch.device) -> torch.Tensor:
        key = (tuple(grid), str(device))
        if key not in self._cache:
            self._cache[key] = sincos_pos_embed_3d(grid, self.dim).to(device)
        return self._cache[key]


class VideoViT(nn.Module):
    """Video vision transformer over tubelets of uint8 clips.

    `forward(video, visible=None, key_padding_mask=None)` returns the final-norm tokens `[B, N, D]`, or
    `[B, M, D]` for the `M` tubelet indices `visible` (`[B, M]`, the encoder then never computes the
    others). `key_padding_mask` (bool `[B, N]`, True = attend) restricts attention instead.
    `config` holds the constructor arguments, so that a checkpoint can rebuild the model.
    """

    def __init__(self, embed_dim: int = 384, depth: int = 12, num_heads: int = 6, mlp_ratio: float = 4.0,
                 tubelet: Sequence[int] = (2, 16, 16), qkv_bias: bool = True, drop_path: float = 0.0,
                 attention_backend: str = "auto", patchify_backend: str = "auto") -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                           tubelet=list(tubelet), qkv_bias=qkv_bias, drop_path=drop_path,
                           attention_backend=attention_backend, patchify_backend=patchify_backend)
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"VideoViT: drop_path must be in [0, 1), got {drop_path}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.patch_embed = PatchEmbed(embed_dim, tubelet, backend=patchify_backend)
        rates = [drop_path * i / (depth - 1) if depth > 1 else drop_path for i in range(depth)]
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rate, backend=attention_backend)
                                    for rate in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.pos = PosEmbedCache(embed_dim)
        self.apply(init_weights)

    @property
    def tubelet(self) -> tuple[int, int, int]:
        return self.patch_embed.tubelet  # type: ignore[return-value]

    def grid(self, video_shape: Sequence[int]) -> tuple[int, int, int]:
        return self.patch_embed.grid(video_shape)

    def forward(self, video: torch.Tensor, visible: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        pos = self.pos.get(self.grid(video.shape), video.device)
        x = self.patch_embed(video, pos_embed=pos, visible=visible)
        for block in self.blocks:
            x = block(x, key_padding_mask)
        return self.norm(x)


def _vit(size: str, overrides: dict[str, Any]) -> VideoViT:
    return VideoViT(**{**SIZES[size], **overrides})


@register_model
def vit_tiny(**overrides: Any) -> VideoViT:
    """ViT-Ti: width 192, 12 blocks, 3 heads (5.6 M parameters)."""
    return _vit("vit_tiny", overrides)


@register_model
def vit_small(**overrides: Any) -> VideoViT:
    """ViT-S: width 384, 12 blocks, 6 heads (21.9 M parameters)."""
    return _vit("vit_small", overrides)


@register_model
def vit_base(**overrides: Any) -> VideoViT:
    """ViT-B: width 768, 12 blocks, 12 heads (86.2 M parameters)."""
    return _vit("vit_base", overrides)


@register_model
def vit_large(**overrides: Any) -> VideoViT:
    """ViT-L: width 1024, 24 blocks, 16 heads (303.9 M parameters)."""
    return _vit("vit_large", overrides)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

