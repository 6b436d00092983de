"""The kernels per backend on a CUDA GPU (marked gpu: left out of `make bench-quick`; skipped without CUDA).

    python -m pytest -q bench/micro/test_kernels_gpu.py -m gpu --benchmark-only
    python -m pytest -q bench/micro/test_kernels_gpu.py -m gpu --benchmark-only \\
        --benchmark-json $OUT/kernels_pytest.json

`extra_info` carries the FLOPs or bytes of each case, so TFLOP/s and GB/s follow from the stats.
`python -m bench.kernels` is the script that writes the README's tables and checks the targets.
"""
from __future__ import annotations

import pytest
import torch

from babyfast.kernels import attention, patchify

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="kernel benchmarks time CUDA kernels")]


def _run_synced(benchmark, fn, info: dict) -> None:
    try:
        fn()  # warm-up: compiles / autotunes, and tells us whether the backend runs this case at all
    except RuntimeError as e:
        pytest.skip(f"backend cannot run this case: {e}")
    torch.cuda.synchronize()
    benchmark.extra_info.update(info)

    def step():
        fn()
        torch.cuda.synchronize()

    benchmark.pedantic(step, rounds=30, warmup_rounds=3, iterations=1)


@pytest.mark.parametrize("backend", ["triton", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "xformers"])
@pytest.mark.parametrize("n,heads", [(197, 6), (1568, 12)])
@pytest.mark.parametrize("train", [False, True], ids=["fwd", "fwd_bwd"])
def test_attention(benchmark, backend, n, heads, train):
    b, d = max(1, round(16384 / n)), 64
    q, k, v = (torch.randn(b, heads, n, d, device="cuda", dtype=torch.bfloat16, requires_grad=train)
               for _ in range(3))
    dout = torch.randn(b, heads, n, d, device="cuda", dtype=torch.bfloat16)

    def fn():
        if not train:
            with torch.no_grad():
                return attention(q, k, v, backend=backend)
        out = attention(q, k, v, backend=backend)
        return torch.autograd.grad(out, (q, k, v), dout)

    flops = 4 * b * n * n * heads * d * (3.5 if train else 1.0)
    _run_synced(benchmark, fn, {"flops": flops, "formula": "4*B*N^2*H*D (x3.5 with backward)"})


@pytest.mark.parametrize("backend", ["triton", "torch", "compile"])
@pytest.mark.parametrize("fused", [False, True], ids=["tokens", "embed384"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "visible10pct"])
def test_patchify(benchmark, backend, fused, masked):
    b, n_all = 8, 8 * 14 * 14
    video = torch.randint(0, 256, (b, 16, 224, 224, 3), dtype=torch.uint8, device="cuda")
    visible = torch.stack([torch.randperm(n_all, device="cuda")[:n_all // 10] for _ in range(b)]) if masked else None
    n_tok = n_all // 10 if masked else n_all
    w = torch.randn(384, 3, 2, 16, 16, device="cuda", dtype=torch.bfloat16) * 0.02 if fused else None

    def fn():
        return patchify(video, (2, 16, 16), weight=w, visible=visible, dtype=torch.bfloat16, backend=backend)

    bytes_moved = video.numel() * n_tok / n_all + b * n_tok * (384 if fused else 1536) * 2
    flops = 2 * b * n_tok * 1536 * 384 if fused else 0
    _run_synced(benchmark, fn, {"bytes": bytes_moved, "flops": flops})
