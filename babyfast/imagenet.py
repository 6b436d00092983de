"""The per-channel pixel statistics babyfast normalizes with by default: ImageNet's, in units of [0, 1]
pixels, as torchvision and VideoMAE write them (R, G, B).

The one copy for everything that may import `babyfast`: the loader's float output, and the models of
`babyfast.train`, which hand them to `babyfast.kernels.patchify`. The kernels may import only torch and
triton (DESIGN.md), so the defaults of their standalone functions are a literal there, which
tests/test_patchify.py holds equal to these.
"""
from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
