"""Backend selection: every named backend computes the same thing, "auto" measures once and caches the
winner on disk, and backends that cannot run here fail clearly (explicit) or are skipped (auto)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from babyfast.kernels import (ATTENTION_BACKENDS, attention, attention_backends_for, attention_reference, cache_path,
                              patchify, patchify_reference)
from babyfast.kernels import _attention, _runtime, _backend_cache
from babyfast.kernels import _patchify_triton  # noqa: F401  (both kernel modules loaded, as in a real run)

TRITON = pytest.param("triton", marks=pytest.mark.interpreter)


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    """A fresh, private cache folder (BABYFAST_CACHE_DIR) and no in-process memory of earlier choices."""
    monkeypatch.setenv("BABYFAST_CACHE_DIR", str(tmp_path / "cache"))
    _backend_cache.clear_memory_cache()
    yield tmp_path / "cache"
    _backend_cache.clear_memory_cache()


def qkv(b=2, h=2, n=23, d=64, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, h, n, d, generator=g).to(dtype) for _ in range(3))


def rel_err(x, ref):
    return ((x.double() - ref).norm() / ref.norm()).item()


def _xformers_installed() -> bool:
    try:
        import xformers.ops  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("backend", ["sdpa", "sdpa-flash", "math", TRITON, "auto"])
@pytest.mark.parametrize("masked", [False, True])
def test_cpu_backends_agree_with_reference(backend, masked, cache_dir):
    q, k, v = qkv(seed=1)
    mask = None
    if masked:
        mask = torch.ones(2, 23, dtype=torch.bool)
        mask[0, 15:] = False
        mask[1] = False  # a batch that sees nothing: 0, not NaN, on every backend
    qs = [x.clone().requires_grad_(True) for x in (q, k, v)]
    out = attention(*qs, key_padding_mask=mask, causal=True, backend=backend)
    out.sum().backward()
    q64 = [x.double().requires_grad_(True) for x in (q, k, v)]
    ref = attention_reference(*q64, key_padding_mask=mask, causal=True)
    ref.sum().backward()
    assert rel_err(out, ref) < 1e-5
    for ours, theirs in zip(qs, q64):
        assert torch.isfinite(ours.grad).all()
        assert rel_err(ours.grad, theirs.grad) < 1e-5
    if masked:
        assert out[1].abs().max() == 0 and qs[0].grad[1].abs().max() == 0


@pytest.mark.parametrize("backend", ["sdpa", "math", TRITON, "auto"])
def test_bnhd_layout_on_every_cpu_backend(backend, cache_dir):
    q, k, v = (x.transpose(1, 2).contiguous() for x in qkv(seed=2))  # [B, N, H, D]
    ref = attention_reference(q.double(), k.double(), v.double(), layout="bnhd")
    out = attention(q, k, v, layout="bnhd", backend=backend)
    assert out.shape == q.shape and rel_err(out, ref) < 1e-5


def test_auto_on_cpu_picks_torch_and_caches_on_disk(cache_dir):
    # on the CPU auto never tries Triton (the interpreter is a test tool, not a fast path)
    q, k, v = qkv(n=31, seed=3)
    assert attention_backends_for(q, has_mask=False) == ("sdpa", "math")
    before = _backend_cache.measurements_made()
    out = attention(q, k, v, backend="auto")
    assert _backend_cache.measurements_made() == before + 1
    assert rel_err(out, attention_reference(q.double(), k.double(), v.double())) < 1e-5

    path = cache_path()
    assert path.parent == cache_dir and path.exists()
    data = json.loads(path.read_text())
    (key, entry), = data["choices"].items()
    assert entry["backend"] in ("sdpa", "math") and set(entry["ms"]) == {"sdpa", "math"}
    assert f"torch {torch.__version__}" in key and "triton " in key and "|cpu|" in key
    assert "q[2, 2, 31, 64]" in key and "float32" in key
    assert not list(cache_dir.glob(".backends-*")), "temporary file left behind"

    # same shape again, in this process and in a "new" one (memory dropped): no new measurement
    attention(q, k, v, backend="auto")
    _backend_cache.clear_memory_cache()
    attention(q, k, v, backend="auto")
    assert _backend_cache.measurements_made() == before + 1
    # another shape or dtype is measured separately and added to the same file
    attention(*qkv(n=17, seed=4), backend="auto")
    attention(*qkv(n=17, dtype=torch.float64, seed=4), backend="auto")
    assert _backend_cache.measurements_made() == before + 3
    assert len(json.loads(path.read_text())["choices"]) == 3


def test_training_and_inference_are_measured_separately(cache_dir):
    q, k, v = qkv(n=19, seed=5)
    attention(q, k, v, backend="auto")
    attention(*(x.clone().requires_grad_(True) for x in (q, k, v)), backend="auto")
    keys = list(json.loads(cache_path().read_text())["choices"])
    assert sorted(k_.split("grad=")[1][0] for k_ in keys) == ["0", "1"]


def test_corrupt_cache_is_replaced(cache_dir, caplog):
    cache_dir.mkdir(parents=True)
    cache_path().write_text("{not json")
    q, k, v = qkv(n=13, seed=6)
    before = _backend_cache.measurements_made()
    attention(q, k, v, backend="auto")
    assert _backend_cache.measurements_made() == before + 1
    assert "unreadable" in caplog.text
    assert len(json.loads(cache_path().read_text())["choices"]) == 1


def test_unavailable_backends_fail_clearly():
    q, k, v = qkv(seed=7)
    if not _xformers_installed():
        with pytest.raises(RuntimeError, match="xformers package, which is not installed"):
            attention(q, k, v, backend="xformers")
    else:  # xformers has no CPU kernels: its refusal (NotImplementedError) comes out named, as a RuntimeError
        with pytest.raises(RuntimeError, match="'xformers' cannot run q .* on cpu.*No operator found"):
            attention(q, k, v, backend="xformers")
    with pytest.raises(RuntimeError, match="'sdpa-cudnn' cannot run q .* on cpu"):
        attention(q, k, v, backend="sdpa-cudnn")  # cuDNN is CUDA-only
    with pytest.raises(ValueError, match="unknown backend 'flash'"):
        attention(q, k, v, backend="flash")
    assert set(ATTENTION_BACKENDS) >= {"auto", "triton", "sdpa", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient",
                                       "xformers", "math"}


def test_triton_attention_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_runtime, "_interpret", False)  # as if the kernels had been compiled
    with pytest.raises(RuntimeError, match="needs CUDA tensors.*TRITON_INTERPRET=1"):
        attention(*qkv(), backend="triton")


@pytest.mark.parametrize("backend", ["torch", TRITON, "compile", "auto"])
def test_patchify_backends_agree(backend, cache_dir):
    video = torch.randint(0, 256, (2, 4, 8, 12, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    w = (torch.randn(16, 3, 2, 4, 4) * 0.1).requires_grad_(True)
    visible = torch.tensor([[0, 5, 2], [11, 1, 4]])
    out = patchify(video, (2, 4, 4), weight=w, visible=visible, backend=backend)
    out.square().sum().backward()
    w64 = w.detach().double().requires_grad_(True)
    ref = patchify_reference(video, (2, 4, 4), weight=w64, visible=visible)
    ref.square().sum().backward()
    assert rel_err(out, ref) < 1e-5 and rel_err(w.grad, w64.grad) < 1e-5


def test_patchify_auto_on_cpu_is_torch_without_measuring(cache_dir):
    video = torch.zeros(1, 2, 8, 8, 3, dtype=torch.uint8)
    before = _backend_cache.measurements_made()
    patchify(video, (2, 4, 4), backend="auto")
    assert _backend_cache.measurements_made() == before and not cache_path().exists()


def test_interpreting_is_decided_by_the_kernels_not_the_environment(monkeypatch):
    from babyfast.kernels import _attention_triton

    decided = _runtime.interpreting()
    assert decided == _runtime.record_kernel_mode(_attention_triton._attn_fwd_kernel)
    monkeypatch.setenv("TRITON_INTERPRET", "0" if decided else "1")  # too late to change anything
    assert _runtime.interpreting() == decided


@pytest.mark.parametrize("grad", [False, True])
def test_auto_builds_candidates_only_when_measuring(grad, cache_dir, monkeypatch):
    """A cache hit must not clone inputs or make random gradients for every candidate on every call."""
    built = []
    original = _backend_cache._runner
    monkeypatch.setattr(_backend_cache, "_runner", lambda name, *a: built.append(name) or original(name, *a))
    q, k, v = (x.requires_grad_(grad) for x in qkv(n=11, seed=9))
    out = attention(q, k, v, backend="auto")
    assert built == ["sdpa", "math"]
    if grad:
        out.sum().backward()
        assert q.grad is not None
    for _ in range(3):
        attention(q, k, v, backend="auto")
    assert built == ["sdpa", "math"]


def _cuda_like(dtype, d=64):
    """What attention_backends_for reads of a CUDA tensor, without a GPU."""
    return SimpleNamespace(device=torch.device("cuda"), dtype=dtype, shape=(2, 4, 100, d))


def test_math_is_always_the_last_cuda_candidate(monkeypatch):
    monkeypatch.setattr(_attention, "interpreting", lambda: False)  # compiled kernels, as on a GPU machine
    monkeypatch.setattr(_attention, "triton_available", lambda: True)
    monkeypatch.setattr(_attention, "_xformers_installed", lambda: False)
    assert attention_backends_for(_cuda_like(torch.float64), has_mask=False) == ("math",)
    assert attention_backends_for(_cuda_like(torch.float32), has_mask=True) == ("triton", "sdpa-efficient", "math")
    assert attention_backends_for(_cuda_like(torch.bfloat16), has_mask=False) == (
        "triton", "sdpa-cudnn", "sdpa-flash", "sdpa-efficient", "math")
    assert attention_backends_for(_cuda_like(torch.float16, d=48), has_mask=True) == (
        "sdpa-cudnn", "sdpa-efficient", "math")


# ----------------------------------------------------------------------------------------------------
# GPU: auto times the real candidates and every candidate agrees with the reference


@pytest.mark.gpu
@pytest.mark.parametrize("masked", [False, True])
def test_gpu_every_candidate_agrees(masked, cache_dir):
    q, k, v = (x.cuda() for x in qkv(b=2, h=6, n=197, d=64, dtype=torch.bfloat16, seed=8))
    mask = torch.rand(2, 197, device="cuda") > 0.2 if masked else None
    ref = attention_reference(q.double(), k.double(), v.double(), key_padding_mask=mask)
    names = attention_backends_for(q, has_mask=masked)
    assert "triton" in names and ("xformers" in names) == _xformers_installed()
    for name in names + ("sdpa", "math"):
        try:
            out = attention(q, k, v, key_padding_mask=mask, backend=name)
        except RuntimeError as e:  # e.g. cuDNN without mask support on this torch: must say so clearly
            assert name in str(e)
            continue
        assert rel_err(out, ref) < 1e-2, name
    attention(q, k, v, key_padding_mask=mask, backend="auto")
    entry, = json.loads(cache_path().read_text())["choices"].values()
    assert entry["backend"] in names and set(entry["ms"]) | set(entry["skipped"]) == set(names)


@pytest.mark.gpu
@pytest.mark.parametrize("grad", [False, True])
def test_gpu_auto_runs_float64_through_math(grad, cache_dir):
    q, k, v = (x.cuda().requires_grad_(grad) for x in qkv(n=37, dtype=torch.float64, seed=10))
    out = attention(q, k, v, causal=True, backend="auto")
    assert rel_err(out, attention_reference(q.detach(), k.detach(), v.detach(), causal=True)) < 1e-12
    if grad:
        out.sum().backward()
        assert torch.isfinite(q.grad).all()


@pytest.mark.gpu
def test_gpu_patchify_auto_measures(cache_dir):
    video = torch.randint(0, 256, (2, 16, 224, 224, 3), dtype=torch.uint8, device="cuda")
    w = torch.randn(384, 3, 2, 16, 16, device="cuda", dtype=torch.bfloat16) * 0.02
    out = patchify(video, weight=w, backend="auto")
    ref = patchify_reference(video, weight=w)
    assert rel_err(out, ref) < 1e-2
    entry, = json.loads(cache_path().read_text())["choices"].values()
    assert set(entry["ms"]) | set(entry["skipped"]) == {"triton", "torch", "compile"}
