"""`patchify()`: uint8 video → normalized tubelet tokens or patch embeddings, by the chosen backend.

Backends: "triton" (one kernel from uint8 to tokens/embeddings, `_patchify_triton.py`), "torch" (eager:
normalize, unfold, linear), "compile" (`torch.compile` of the eager path) and "auto", which times them
once per (shape, dtype, device) and remembers the winner (`_backend_cache.py`); on the CPU "auto" is
"torch".

Normalization is `(x / 255 - mean) / std` with mean and std per channel in [0, 1] units (ImageNet
convention). Token features are in the order of a flattened `Conv3d(3, D, kernel_size=stride=(t, p, p))`
weight, i.e. (channel, dt, dh, dw); tokens are tubelets in (time, row, column) order.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from . import _backend_cache
from ._runtime import check_triton_device, triton_available
from .reference import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["patchify", "PATCHIFY_BACKENDS", "normalization_constants"]

log = logging.getLogger(__name__)

PATCHIFY_BACKENDS = ("auto", "triton", "torch", "compile")
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _channel_values(x: Sequence[float] | torch.Tensor) -> tuple[float, ...]:
    return tuple(torch.as_tensor(x, dtype=torch.float64).flatten().tolist())


@functools.lru_cache(maxsize=64)
def _constants(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor]:
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"patchify: mean and std need 3 values (R, G, B), got mean {mean!r}, std {std!r}")
    if not all(s > 0 for s in std):
        raise ValueError(f"patchify: std must be positive, got {list(std)}")
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32)
    return scale.to(device), shift.to(device)


def _cached_constants(mean, std, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`normalization_constants`, made once per (mean, std, device) and shared: a training step copies
    nothing to the GPU (each copy from pageable memory would wait for the stream). Read-only."""
    return _constants(_channel_values(mean), _channel_values(std), torch.device(device))


def normalization_constants(mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor,
                            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 `scale`, `shift` `[3]` with `(x / 255 - mean) / std == x * scale + shift` (fresh tensors)."""
    scale, shift = _cached_constants(mean, std, device)
    return scale.clone(), shift.clone()


def _patchify_torch(video: torch.Tensor, tubelet: tuple[int, int, int], scale: torch.Tensor, shift: torch.Tensor,
                    weight: torch.Tensor | None, bias: torch.Tensor | None, pos_embed: torch.Tensor | None,
                    visible: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """Eager path: normalize, unfold into tubelets, gather the visible ones, project (the usual way)."""
    t, p, _ = tubelet
    b, n_t, n_h, n_w, _ = video.shape
    tp, hp, wp = n_t // t, n_h // p, n_w // p
    x = video.to(dtype).mul_(scale.to(dtype)).add_(shift.to(dtype))
    x = x.view(b, tp, t, hp, p, wp, p, 3).permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, tp * hp * wp, 3 * t * p * p)
    if visible is not None:
        x = x[:, visible] if visible.dim() == 1 else x[torch.arange(b, device=x.device)[:, None], visible]
    if weight is None:
        return x
    y = F.linear(x, weight.reshape(weight.shape[0], -1).to(dtype), bias.to(dtype) if bias is not None else None)
    if pos_embed is not None:
        pos = pos_embed.reshape(-1, weight.shape[0]).to(dtype)
        y = y + (pos if visible is None else pos[visible])
    return y


_compiled: Callable | None = None


def _patchify_compiled(*args):
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(_patchify_torch, dynamic=False)
    return _compiled(*args)


def _patchify_with_triton(video, tubelet, scale, shift, weight, bias, pos_embed, visible, dtype):
    check_triton_device(video.device, "patchify")
    from ._patchify_triton import PatchEmbedFunction, patchify_tokens

    if weight is None:
        return patchify_tokens(video, tubelet, scale, shift, visible, dtype)
    return PatchEmbedFunction.apply(video, weight, bias, pos_embed, visible, scale, shift, tubelet, dtype)


_RUNNERS = {"torch": _patchify_torch, "compile": _patchify_compiled, "triton": _patchify_with_triton}


def _validate(video, tubelet, weight, bias, pos_embed, visible, dtype) -> tuple[tuple[int, int, int], int]:
    if video.dtype != torch.uint8 or video.dim() != 5 or video.shape[-1] != 3:
        raise ValueError(f"patchify: video must be uint8 [B, T, H, W, 3], got {video.dtype} {list(video.shape)}")
    if len(tubelet) != 3 or any(int(x) < 1 for x in tubelet) or tubelet[1] != tubelet[2]:
        raise ValueError(f"patchify: tubelet must be (t, p, p) with positive sizes and square patches, "
                         f"got {tuple(tubelet)}")
    t, p, _ = (int(x) for x in tubelet)
    _, n_t, n_h, n_w, _ = video.shape
    if n_t % t or n_h % p or n_w % p:
        raise ValueError(f"patchify: video [T, H, W] = [{n_t}, {n_h}, {n_w}] is not divisible by the tubelet "
                         f"(t, p, p) = {(t, p, p)}")
    n_all = (n_t // t) * (n_h // p) * (n_w // p)
    k = 3 * t * p * p
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"patchify: dtype must be one of {_FLOAT_DTYPES}, got {dtype}")
    if weight is not None:
        if weight.dim() not in (2, 5) or weight.numel() != weight.shape[0] * k or (
                weight.dim() == 5 and tuple(weight.shape[1:]) != (3, t, p, p)):
            raise ValueError(f"patchify: weight must be [D, 3, {t}, {p}, {p}] or [D, {k}], got {list(weight.shape)}")
        d = weight.shape[0]
        if bias is not None and tuple(bias.shape) != (d,):
            raise ValueError(f"patchify: bias must be [{d}], got {list(bias.shape)}")
        if pos_embed is not None and tuple(pos_embed.shape) not in ((n_all, d), (1, n_all, d)):
            raise ValueError(f"patchify: pos_embed must be [{n_all}, {d}] or [1, {n_all}, {d}] "
                             f"(one row per tubelet), got {list(pos_embed.shape)}")
    elif bias is not None or pos_embed is not None:
        raise ValueError("patchify: bias and pos_embed belong to the projection; pass weight too")
    if visible is not None:
        if visible.dtype not in (torch.int32, torch.int64) or visible.dim() not in (1, 2) or (
                visible.dim() == 2 and visible.shape[0] != video.shape[0]):
            raise ValueError(f"patchify: visible must be int32/int64 tubelet indices [B, M] or [M] with "
                             f"B = {video.shape[0]}, got {visible.dtype} {list(visible.shape)}")
        if visible.device != video.device:
            raise ValueError(f"patchify: visible is on {visible.device}, video on {video.device}")
        if visible.numel():
            ok = (visible.min() >= 0) & (visible.max() < n_all)
            if visible.device.type == "cuda":
                # checked on the device, so a training step does not wait for it
                torch._assert_async(ok,  # pyright: ignore[reportPrivateImportUsage]
                                    f"patchify: visible indices must lie in [0, {n_all})")
            elif not bool(ok):
                raise ValueError(f"patchify: visible indices must lie in [0, {n_all}), got min "
                                 f"{int(visible.min())}, max {int(visible.max())}")
    return (t, p, p), n_all


def _candidates(device: torch.device) -> tuple[str, ...]:
    if device.type != "cuda":
        return ("torch",)
    return (("triton",) if triton_available() else ()) + ("torch", "compile")


def patchify(video: torch.Tensor, tubelet: tuple[int, int, int] = (2, 16, 16),
             mean: Sequence[float] | torch.Tensor = IMAGENET_MEAN,
             std: Sequence[float] | torch.Tensor = IMAGENET_STD,
             weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
             pos_embed: torch.Tensor | None = None, visible: torch.Tensor | None = None,
             dtype: torch.dtype | None = None, backend: str = "auto") -> torch.Tensor:
    """Tubelet tokens `[B, N, 3·t·p·p]`, or with `weight` patch embeddings `[B, N, D]`.

    Args:
        video: uint8 `[B, T, H, W, 3]` (channels last, as the loader yields it); any strides.
        tubelet: `(t, p, p)`; T, H, W must be multiples.
        mean, std: per channel, [0, 1] units; pixels become `(x / 255 - mean) / std`.
        weight: `[D, 3, t, p, p]` (a Conv3d weight) or `[D, 3·t·p·p]`; with it the tokens are projected.
        bias: `[D]`. pos_embed: `[N, D]` or `[1, N, D]`, one row per tubelet, added after projection.
        visible: int tubelet indices `[B, M]` (per sample) or `[M]` (shared); only those are read and
            computed, the output has M tokens in that order.
        dtype: output dtype (fp32/fp16/bf16); default the weight's dtype, else float32.
        backend: one of `PATCHIFY_BACKENDS`.

    Differentiable in weight, bias and pos_embed on every backend.

    Example::

        video = torch.randint(0, 256, (2, 16, 224, 224, 3), dtype=torch.uint8)
        tokens = patchify(video)                        # [2, 1568, 1536] float32, Conv3d feature order
    """
    if backend not in PATCHIFY_BACKENDS:
        raise ValueError(f"patchify: unknown backend {backend!r}; allowed: {PATCHIFY_BACKENDS}")
    if dtype is None:
        dtype = weight.dtype if weight is not None else torch.float32
    tubelet, _ = _validate(video, tuple(tubelet), weight, bias, pos_embed, visible, dtype)
    scale, shift = _cached_constants(mean, std, video.device)
    args = (video, tubelet, scale, shift, weight, bias, pos_embed, visible, dtype)
    name = _auto(args) if backend == "auto" else backend
    return _RUNNERS[name](*args)


def _auto(args: tuple) -> str:
    video, tubelet, scale, shift, weight, bias, pos_embed, visible, dtype = args
    description = (f"video{list(video.shape)} tubelet{list(tubelet)} {str(dtype).replace('torch.', '')} "
                   f"D={weight.shape[0] if weight is not None else 0} bias={int(bias is not None)} "
                   f"pos={int(pos_embed is not None)} visible={list(visible.shape) if visible is not None else None}")

    def run(name: str, params: Sequence[torch.Tensor | None]) -> torch.Tensor:
        return _RUNNERS[name](video, tubelet, scale, shift, *params, visible, dtype)

    return _backend_cache.auto("patchify", description, video.device, _candidates(video.device), run,
                              (weight, bias, pos_embed))
