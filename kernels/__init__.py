"""Triton kernels (fused patchify, flash attention), their pure-torch references and the backend choice.

The model calls only `attention()` and `patchify()`; each takes `backend=` ("auto" measures the
candidates once per shape and caches the winner under `~/.cache/babyfast/`, `BABYFAST_CACHE_DIR`
overrides). Importing this package does not import triton: the Triton modules load on first use, so the
torch paths work on machines without it. `attention` and `patchify` are the functions; their modules are
`_attention` and `_patchify`, the kernels `_attention_triton` and `_patchify_triton`.

Example::

    from babyfast.kernels import attention, patchify
    tokens = patchify(video, tubelet=(2, 16, 16), weight=w, bias=b, pos_embed=pos, visible=idx)
    out = attention(q, k, v, causal=False, backend="auto")
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._attention import ATTENTION_BACKENDS, attention, attention_backends_for
from ._backend_cache import cache_path
from ._patchify import PATCHIFY_BACKENDS, normalization_constants, patchify
from .reference import IMAGENET_MEAN, IMAGENET_STD, attention_reference, patchify_reference

if TYPE_CHECKING:  # the Triton kernel loads on first use (importing triton is slow and may be absent)
    from ._attention_triton import flash_attention

__all__ = [
    "attention",
    "attention_reference",
    "attention_backends_for",
    "ATTENTION_BACKENDS",
    "patchify",
    "patchify_reference",
    "normalization_constants",
    "PATCHIFY_BACKENDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "cache_path",
    "flash_attention",
]


def __getattr__(name: str) -> Any:
    # triton is imported only when the Triton kernel is asked for by name
    if name == "flash_attention":
        from ._attention_triton import flash_attention

        return flash_attention
    raise AttributeError(f"module 'babyfast.kernels' has no attribute {name!r}")
