"""`attention()`: one entry point for every attention implementation the model may run on.

Backends: "triton" (ours, `_attention_triton.py`), PyTorch SDPA as it picks ("sdpa") or pinned to one
kernel ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "math"), and xformers' memory-efficient attention
("xformers", optional). "auto" times the candidates that can run the call once per (shape, dtype,
device) and remembers the winner on disk (`_backend_cache.py`); on the CPU it picks among the torch paths.

All backends share one contract: a key-padding mask is bool `[B, N_k]` with True = attend, `causal` lets
query i see keys j <= i, and a query that sees no key outputs 0 with zero gradients (SDPA and xformers
would give NaN there, so those rows are let attend to everything and then zeroed).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import _backend_cache
from ._runtime import SUPPORTED_HEAD_DIMS, check_triton_device, interpreting, triton_available

__all__ = ["attention", "ATTENTION_BACKENDS", "attention_backends_for"]

log = logging.getLogger(__name__)

ATTENTION_BACKENDS = ("auto", "triton", "sdpa", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "xformers", "math")
_LOW = (torch.float16, torch.bfloat16)


def _sdpa_kernel(name: str):
    from torch.nn.attention import SDPBackend

    return {
        "sdpa-flash": SDPBackend.FLASH_ATTENTION,
        "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
        "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }[name]


def _combined_mask(kpm: torch.Tensor, causal: bool, n_q: int, n_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool attend-mask broadcastable to [B, H, N_q, N_k] and the rows that see at least one key."""
    keep = kpm[:, None, None, :]
    if causal:
        keep = keep & torch.ones((n_q, n_k), dtype=torch.bool, device=kpm.device).tril()
    sees_any = keep.any(dim=-1, keepdim=True)
    # rows that see nothing attend everywhere (finite softmax), their output is zeroed afterwards; done
    # without a data-dependent branch so that it never waits for the GPU
    return keep | ~sees_any, sees_any


def _run_sdpa(name: str, q, k, v, kpm, causal, scale):
    def call(attn_mask, is_causal):
        if name == "sdpa":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel([_sdpa_kernel(name)]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)

    if kpm is None:
        return call(None, causal)
    mask, sees_any = _combined_mask(kpm, causal, q.shape[2], k.shape[2])
    return call(mask, False).masked_fill(~sees_any, 0.0)


def _xformers_ops():
    try:
        import xformers.ops as xops  # pyright: ignore[reportMissingImports]  # optional
    except ImportError as e:
        raise RuntimeError("attention: backend 'xformers' needs the xformers package, which is not "
                           f"installed ({e}); pick another backend or 'auto'") from e
    return xops


def _run_xformers(q, k, v, kpm, causal, scale):
    xops = _xformers_ops()
    # xformers wants [B, N, H, D]: for a [B, N, H, D] caller these transposes undo ours (no copy)
    qx, kx, vx = (x.transpose(1, 2) for x in (q, k, v))
    if kpm is None:
        bias = xops.LowerTriangularMask() if causal else None
        out = xops.memory_efficient_attention(qx, kx, vx, attn_bias=bias, scale=scale)
        return out.transpose(1, 2)
    b, h, n_q, _ = q.shape
    n_k = k.shape[2]
    mask, sees_any = _combined_mask(kpm, causal, n_q, n_k)
    # an additive bias whose rows start 16-byte aligned, as xformers requires: allocate padded, slice
    padded = (n_k + 7) // 8 * 8
    bias = torch.zeros((b, h, n_q, padded), dtype=q.dtype, device=q.device)[..., :n_k]
    bias.masked_fill_(~mask.expand(b, h, n_q, n_k), float("-inf"))
    out = xops.memory_efficient_attention(qx, kx, vx, attn_bias=bias, scale=scale)
    return out.transpose(1, 2).masked_fill(~sees_any, 0.0)


def _run_triton(q, k, v, kpm, causal, scale):
    if q.shape[-1] not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"attention: backend 'triton' supports head dims {SUPPORTED_HEAD_DIMS}, got {q.shape[-1]}")
    check_triton_device(q.device, "attention")
    from ._attention_triton import flash_attention

    return flash_attention(q, k, v, key_padding_mask=kpm, causal=causal, softmax_scale=scale)


def _run(name: str, q, k, v, kpm, causal, scale):
    if name == "triton":
        return _run_triton(q, k, v, kpm, causal, scale)
    try:
        if name == "xformers":
            return _run_xformers(q, k, v, kpm, causal, scale)
        return _run_sdpa(name, q, k, v, kpm, causal, scale)
    except (RuntimeError, NotImplementedError) as e:  # xformers refuses with NotImplementedError
        if name == "sdpa" or str(e).startswith("attention: "):
            raise
        raise RuntimeError(f"attention: backend {name!r} cannot run q {tuple(q.shape)} {q.dtype} on {q.device} "
                           f"(causal={causal}, key_padding_mask={'yes' if kpm is not None else 'no'}): {e}") from e


def _xformers_installed() -> bool:
    try:
        import xformers.ops  # noqa: F401  # pyright: ignore[reportMissingImports]  # optional
    except ImportError:
        return False
    return True


def attention_backends_for(q: torch.Tensor, has_mask: bool) -> tuple[str, ...]:
    """The backends that `auto` tries for a call like this one, best guess first; "math" (any dtype, any
    shape) is always last, so that some candidate runs whatever the fused kernels refuse."""
    if q.device.type != "cuda":
        # the interpreter is a test tool, not a fast path: the CPU always runs torch
        return ("sdpa", "math")
    names = []
    fused = q.dtype in _LOW or q.dtype == torch.float32
    if fused and triton_available() and q.shape[-1] in SUPPORTED_HEAD_DIMS and not interpreting():
        names.append("triton")
    if q.dtype in _LOW:
        names.append("sdpa-cudnn")
        if not has_mask:
            names.append("sdpa-flash")
    if fused:
        names.append("sdpa-efficient")
    if q.dtype in _LOW and _xformers_installed():
        names.append("xformers")
    names.append("math")
    return tuple(names)


def _signature(q, k, kpm, causal, layout) -> str:
    return (f"q{list(q.shape)} k{list(k.shape)} {str(q.dtype).replace('torch.', '')} {layout} "
            f"causal={int(causal)} mask={int(kpm is not None)}")


def _auto(q, k, v, kpm, causal, scale, layout) -> str:
    def run(name: str, qkv: Sequence[torch.Tensor | None]) -> torch.Tensor:
        return _run(name, *qkv, kpm, causal, scale)  # pyright: ignore[reportCallIssue]  # qkv: 3 tensors

    return _backend_cache.auto("attention", _signature(q, k, kpm, causal, layout), q.device,
                              attention_backends_for(q, kpm is not None), run, (q, k, v), grad_output=torch.randn_like)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
              causal: bool = False, softmax_scale: float | None = None, layout: str = "bhnd",
              backend: str = "auto") -> torch.Tensor:
    """Scaled dot-product attention, `softmax(q kᵀ · scale) v`, by the chosen backend.

    Args:
        q, k, v: `[B, H, N, D]` (`layout="bhnd"`) or `[B, N, H, D]` (`layout="bnhd"`, read in place by
            the Triton backend); same dtype; k and v share N.
        key_padding_mask: bool `[B, N_k]`, True = attend.
        causal: query i sees keys j <= i.
        softmax_scale: defaults to 1/sqrt(D).
        layout: "bhnd" or "bnhd"; the output has the same layout as q.
        backend: one of `ATTENTION_BACKENDS`.

    Example::

        q = k = v = torch.randn(2, 6, 197, 64)
        out = attention(q, k, v)                  # on the CPU "auto" runs torch SDPA
    """
    if backend not in ATTENTION_BACKENDS:
        raise ValueError(f"attention: unknown backend {backend!r}; allowed: {ATTENTION_BACKENDS}")
    if layout not in ("bhnd", "bnhd"):
        raise ValueError(f"attention: layout must be 'bhnd' or 'bnhd', got {layout!r}")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention: q, k, v must be 4-d ({layout}), got {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if layout == "bnhd":
        q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    if key_padding_mask is not None:
        want = (q.shape[0], k.shape[2])
        if key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != want:
            raise ValueError(f"attention: key_padding_mask must be bool [B, N_k] = {list(want)}, got "
                             f"{key_padding_mask.dtype} {list(key_padding_mask.shape)}")
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    name = _auto(q, k, v, key_padding_mask, causal, scale, layout) if backend == "auto" else backend
    out = _run(name, q, k, v, key_padding_mask, causal, scale)
    return out.transpose(1, 2) if layout == "bnhd" else out
