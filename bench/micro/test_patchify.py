"""The patchify reference on the CPU (`kernels/reference.py`, Conv3d on normalized input): one 16 x 224^2
clip to tubelet tokens [1568, 1536] and to patch embeddings (D = 384), float32.

`extra_info["flops"]` is the convolution's multiply-adds x 2, so GFLOP/s follow from the stats.
"""
from __future__ import annotations

import pytest
import torch

from babyfast.kernels.reference import patchify_reference

TUBELET = (2, 16, 16)
FEATURES = 3 * 2 * 16 * 16
TOKENS = 8 * 14 * 14


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (1, 16, 224, 224, 3), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("embed", [None, 384], ids=["tokens", "embed384"])
def test_patchify_reference_cpu(benchmark, video, embed):
    weight = None if embed is None else torch.randn(embed, 3, *TUBELET, generator=torch.Generator().manual_seed(1))
    out = benchmark.pedantic(patchify_reference, args=(video, TUBELET),
                             kwargs={"weight": weight, "dtype": torch.float32},
                             rounds=5, iterations=1, warmup_rounds=1)
    assert tuple(out.shape) == (1, TOKENS, embed or FEATURES)
    benchmark.extra_info["flops"] = 2 * TOKENS * FEATURES * (embed or FEATURES)
