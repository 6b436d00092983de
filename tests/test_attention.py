"""Triton flash attention against a float64 reference: outputs and dq, dk, dv.

On the CPU the kernels run through the Triton interpreter (TRITON_INTERPRET=1, set by conftest), with
small shapes in fp32 and fp16 (tests marked `interpreter`, skipped where the kernels are compiled); the `gpu`
tests run the compiled kernels. Tolerance follows flash-attention's tests: our error against the fp64
reference must be at most twice plain torch's error in the same precision (plus a small floor), and
within the issue's absolute bounds (relative Frobenius: fp16 2e-3, bf16 1e-2).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from babyfast.kernels import _runtime, attention, attention_reference
from babyfast.kernels import _attention_triton as fa
from babyfast.kernels._runtime import poisoned_outputs

HEAD_DIMS = fa.SUPPORTED_HEAD_DIMS
ABS_BOUND = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}
FLOOR = {torch.float32: 1e-6, torch.float16: 1e-4, torch.bfloat16: 1e-3}


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative Frobenius error.

    Where the exact answer is 0 (dq with a single key, fully masked rows) the error is taken relative to
    a unit-RMS tensor, the scale of our unit-normal inputs, instead of dividing by zero.
    """
    den = ref.norm().item()
    if den == 0:
        den = math.sqrt(ref.numel())
    return (x.double() - ref).norm().item() / den


def make_qkv(b, h, n_q, n_k, d, dtype, device="cpu", layout="bhnd", seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    shape_q = (b, h, n_q, d) if layout == "bhnd" else (b, n_q, h, d)
    shape_k = (b, h, n_k, d) if layout == "bhnd" else (b, n_k, h, d)
    q = torch.randn(shape_q, generator=g).to(device, dtype)
    k = torch.randn(shape_k, generator=g).to(device, dtype)
    v = torch.randn(shape_k, generator=g).to(device, dtype)
    return q, k, v


def padding_mask(b, n_k, device="cpu", seed=1):
    """Random key-padding mask with at least one kept key per batch row."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    keep = torch.rand(b, n_k, generator=g) > 0.3
    keep[:, 0] = True
    return keep.to(device)


def check_against_fp64(q, k, v, mask, causal, backend="triton", layout="bhnd"):
    """Run `backend` forward + backward, compare with the fp64 reference and with torch in q's dtype."""
    dtype = q.dtype
    g = torch.Generator(device="cpu").manual_seed(7)
    dout = torch.randn(q.shape, generator=g).to(q.device, dtype)

    def run(fn, cast):
        xs = [x.detach().to(cast).requires_grad_(True) for x in (q, k, v)]
        out = fn(*xs)
        out.backward(dout.to(cast))
        return [out.detach()] + [x.grad for x in xs]

    ref = run(lambda a, b_, c: attention_reference(a, b_, c, mask, causal, layout=layout), torch.float64)
    low = run(lambda a, b_, c: attention_reference(a, b_, c, mask, causal, layout=layout), dtype)
    with poisoned_outputs():
        ours = run(lambda a, b_, c: attention(a, b_, c, mask, causal, layout=layout, backend=backend), dtype)
    for name, o, lo, r in zip(("out", "dq", "dk", "dv"), ours, low, ref):
        assert o.dtype == dtype and o.shape == r.shape, name
        assert torch.isfinite(o).all(), f"{name}: NaN/inf (an unwritten or fully masked element)"
        err, base = rel_err(o, r), rel_err(lo, r)
        assert err <= 2 * base + FLOOR[dtype], f"{name}: error {err:.3e} vs torch's {base:.3e} in {dtype}"
        assert err <= ABS_BOUND[dtype], f"{name}: error {err:.3e} over the bound {ABS_BOUND[dtype]} for {dtype}"
    return ours


@pytest.mark.interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("head_dim", HEAD_DIMS)
def test_every_head_dim(head_dim, dtype):
    q, k, v = make_qkv(2, 2, 37, 37, head_dim, dtype, seed=head_dim)
    check_against_fp64(q, k, v, None, causal=False)


@pytest.mark.interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("n_q,n_k", [(1, 1), (16, 16), (31, 31), (50, 50), (20, 45), (45, 20)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_lengths_causal_and_padding(n_q, n_k, causal, masked, dtype):
    q, k, v = make_qkv(2, 2, n_q, n_k, 32, dtype, seed=n_q * 100 + n_k)
    mask = padding_mask(2, n_k, seed=n_k) if masked else None
    check_against_fp64(q, k, v, mask, causal)


@pytest.mark.interpreter
@pytest.mark.parametrize("head_dim", [64, 80])
def test_bnhd_layout_is_read_in_place(head_dim):
    q, k, v = make_qkv(2, 3, 29, 29, head_dim, torch.float16, layout="bnhd", seed=3)
    out, dq, _, _ = check_against_fp64(q, k, v, padding_mask(2, 29), causal=True, layout="bnhd")
    # the output and the gradients come back in [B, N, H, D], dense
    assert out.shape == q.shape and out.is_contiguous() and dq.is_contiguous()


@pytest.mark.interpreter
def test_strided_views_from_a_fused_qkv_projection():
    """q, k, v as slices of one [B, N, 3, H, D] tensor: no copies, strides differ from a dense layout."""
    g = torch.Generator().manual_seed(5)
    qkv = torch.randn(2, 23, 3, 2, 64, generator=g)
    q, k, v = qkv.unbind(2)
    assert not q.is_contiguous()
    out, dq, _, _ = check_against_fp64(q, k, v, None, causal=False, layout="bnhd")
    assert out.is_contiguous() and dq.is_contiguous()  # dense [B, N, H, D], like the inputs' layout


@pytest.mark.interpreter
@pytest.mark.parametrize("causal", [False, True])
def test_fully_masked_rows_are_zero_with_zero_gradients(causal):
    b, h, n, d = 3, 2, 21, 32
    q, k, v = make_qkv(b, h, n, n, d, torch.float32, seed=11)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1] = False  # batch 1 sees no key at all
    mask[2, :7] = False  # batch 2: with causal, queries 0..6 see no key (left padding)
    out, dq, dk, dv = check_against_fp64(q, k, v, mask, causal)
    assert out[1].abs().max() == 0 and dq[1].abs().max() == 0
    assert dk[1].abs().max() == 0 and dv[1].abs().max() == 0
    assert dk[2, :, :7].abs().max() == 0 and dv[2, :, :7].abs().max() == 0  # padded keys get no gradient
    if causal:
        assert out[2, :, :7].abs().max() == 0 and dq[2, :, :7].abs().max() == 0


@pytest.mark.interpreter
@pytest.mark.parametrize("fwd,dkdv,dq", [((64, 32), (16, 64), (64, 32)), ((128, 64), (32, 128), (128, 32))])
def test_gpu_block_shapes_on_the_interpreter(fwd, dkdv, dq):
    """Block shapes the GPU autotuner may pick (the interpreter's own default is smaller)."""
    cfg = lambda bm, bn: triton_config(bm, bn)  # noqa: E731
    with fa.forced_configs(fwd=cfg(*fwd), dkdv=cfg(*dkdv), dq=cfg(*dq)):
        for causal in (False, True):
            q, k, v = make_qkv(1, 2, 70, 70, 64, torch.float16, seed=21)
            check_against_fp64(q, k, v, padding_mask(1, 70, seed=3), causal)


def triton_config(bm: int, bn: int):
    import triton

    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=4, num_stages=2)


@pytest.mark.interpreter
def test_softmax_scale_is_honoured():
    q, k, v = make_qkv(1, 2, 19, 19, 64, torch.float32, seed=2)
    ours = attention(q, k, v, softmax_scale=0.3, backend="triton")
    ref = attention_reference(q.double(), k.double(), v.double(), softmax_scale=0.3)
    assert rel_err(ours, ref) < 1e-5


def test_reference_agrees_with_torch_sdpa_in_fp64():
    """The reference itself, checked against an independent implementation (torch's math SDPA)."""
    q, k, v = (x.double() for x in make_qkv(2, 2, 27, 27, 64, torch.float32, seed=4))
    mask = padding_mask(2, 27)
    ours = attention_reference(q, k, v, mask, causal=True)
    keep = mask[:, None, None, :] & torch.ones(27, 27, dtype=torch.bool).tril()
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert rel_err(ours, theirs) < 1e-12
    plain = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(64), -1) @ v
    assert rel_err(attention_reference(q, k, v), plain) < 1e-12


def test_rejects_unsupported_inputs():
    q, k, v = make_qkv(1, 1, 8, 8, 48, torch.float32)
    with pytest.raises(ValueError, match="head dims .*got 48"):
        attention(q, k, v, backend="triton")
    q, k, v = make_qkv(1, 1, 8, 8, 64, torch.float32)
    with pytest.raises(ValueError, match="key_padding_mask"):
        attention(q, k, v, key_padding_mask=torch.ones(1, 9, dtype=torch.bool), backend="triton")
    with pytest.raises(ValueError, match="layout"):
        attention(q, k, v, layout="nhd")


# ----------------------------------------------------------------------------------------------------
# launch policy (no kernel runs): shared-memory fit of forced, default and tuned configs


class _FakeLimit:
    """Pretend the device has `limit` bytes of shared memory per program, and record launches."""

    def __init__(self, monkeypatch, limit):
        self.launched = []
        monkeypatch.setattr(_runtime, "shared_memory_limit", lambda device: limit)
        monkeypatch.setattr(_runtime, "_run", lambda spec, config, *a: self.launched.append((spec.name, config)))
        monkeypatch.setattr(_runtime, "interpreting", lambda: False)


def test_shared_memory_estimate():
    consts = {"BLOCK_D": 128}
    # forward at head dim 128 in bf16, 128 x 128 blocks, 3 stages: 3 stages of K and V plus Q
    assert fa._FWD.shared_memory(fa._cfg(128, 128, 8, 3), consts, 2) == 2 * 128 * (3 * 2 * 128 + 128)
    # fp32 doubles it, plus the score tile's layout change (FMA path); a padded head dim (80 -> BLOCK_D 128)
    # counts as the padded width
    assert fa._FWD.shared_memory(fa._cfg(128, 128, 8, 3), consts, 4) == \
        2 * 2 * 128 * (3 * 2 * 128 + 128) + 4 * 128 * 128
    assert fa._consts(torch.empty(1, 1, 1, 80), False, False)["BLOCK_D"] == 128


def test_default_config_that_does_not_fit_falls_back(monkeypatch):
    fake = _FakeLimit(monkeypatch, 200 * 1024)
    consts = {"BLOCK_D": 128}
    assert not _runtime.config_fits(fa._FWD.shared_memory, fa._FWD.default, consts, 4, torch.device("cuda"))
    _runtime._launch_default(fa._FWD, lambda meta: (1,), (), consts, 4, torch.device("cuda"))
    (name, config), = fake.launched
    assert name == "fwd" and config is not fa._FWD.default
    assert fa._FWD.shared_memory(config, consts, 4) <= 200 * 1024
    # in bf16 the default fits and is used
    fake.launched.clear()
    _runtime._launch_default(fa._FWD, lambda meta: (1,), (), consts, 2, torch.device("cuda"))
    assert fake.launched == [("fwd", fa._FWD.default)]


def test_forced_config_that_does_not_fit_is_named(monkeypatch):
    _FakeLimit(monkeypatch, 64 * 1024)
    q = torch.empty(1, 1, 16, 128, dtype=torch.float16)
    big = fa._cfg(128, 128, 8, 3)
    with fa.forced_configs(fwd=big), pytest.raises(_runtime.ConfigDoesNotFit, match=r"fwd config \[BLOCK_M: 128"):
        fa._launch(fa._FWD, 16, 1, (), fa._consts(q, False, False), q)
    with pytest.raises(ValueError, match="unknown kernel"), fa.forced_configs(fwdd=big):
        pass


def test_autotune_prunes_configs_that_do_not_fit(monkeypatch):
    _FakeLimit(monkeypatch, 200 * 1024)
    q = torch.empty(1, 1, 1000, 128, dtype=torch.float32)
    consts = fa._consts(q, False, False)
    kept = fa._FWD.tuned.early_config_prune(fa._FWD_CONFIGS, {"Q": q, "N_Q": 1000}, **consts)
    assert kept and all(fa._FWD.shared_memory(c, consts, 4) <= 200 * 1024 for c in kept)
    assert len(kept) < len(fa._FWD_CONFIGS)
    _FakeLimit(monkeypatch, 16 * 1024)
    with pytest.raises(RuntimeError, match="no block config fits"):
        fa._FWD.tuned.early_config_prune(fa._FWD_CONFIGS, {"Q": q, "N_Q": 1000}, **consts)


def test_last_resort_configs_only_where_nothing_else_fits(monkeypatch):
    q = torch.empty(1, 1, 1000, 128, dtype=torch.float32)
    consts = fa._consts(q, False, False)
    named = {"Q": q, "N_Q": 1000, "N_K": 1000}
    _FakeLimit(monkeypatch, 232448)  # sm_90: the tuned lists fit, the last resorts stay out of tuning
    for spec in fa.SPECS.values():
        kept = spec.tuned.early_config_prune(spec.configs, named, **consts)
        assert kept and fa._LAST_RESORT[spec.name] not in kept
    _FakeLimit(monkeypatch, 101376)  # sm_86 / sm_89 at fp32, head dim 128: nothing else fits
    for spec in fa.SPECS.values():
        assert spec.tuned.early_config_prune(spec.configs, named, **consts) == [fa._LAST_RESORT[spec.name]]


# ----------------------------------------------------------------------------------------------------
# GPU: bf16 and fp16 at encoder shapes


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("n", [197, 1568])
@pytest.mark.parametrize("causal", [False, True])
def test_gpu_large(dtype, head_dim, n, causal, monkeypatch):
    monkeypatch.setenv("BABYFAST_AUTOTUNE", "0")  # the default configs; every config is covered below
    q, k, v = make_qkv(2, 6, n, n, head_dim, dtype, device="cuda", seed=n + head_dim)
    check_against_fp64(q, k, v, None, causal)


def run_or_skip_config(spec, config, itemsize, consts, device, check):
    """Run `check()` with `config` pinned, or skip naming the config when it cannot fit on this device: by
    the shared-memory estimate, or by the compiler's own verdict."""
    from triton.runtime.errors import OutOfResources

    if not _runtime.config_fits(spec.shared_memory, config, consts, itemsize, device):
        pytest.skip(f"{spec.describe(config, consts, itemsize, device)} does not fit")
    try:
        with _runtime.forced_configs(**{spec.name: config}):
            check()
    except OutOfResources as e:
        pytest.skip(f"{spec.name} config [{config}] does not fit on {torch.cuda.get_device_name()}: {e}")


_ALL_CONFIGS = [(name, i) for name, spec in fa.SPECS.items() for i in range(len(spec.configs))]


@pytest.mark.gpu
@pytest.mark.parametrize("kernel,index", _ALL_CONFIGS, ids=[f"{n}{i}" for n, i in _ALL_CONFIGS])
@pytest.mark.parametrize("head_dim", [64, 80, 128])
def test_gpu_every_block_config(kernel, index, head_dim, monkeypatch):
    """Autotuning may pick any config on some GPU: each must be right (odd length, causal, padding)."""
    monkeypatch.setenv("BABYFAST_AUTOTUNE", "0")
    spec = fa.SPECS[kernel]
    q, k, v = make_qkv(2, 3, 201, 201, head_dim, torch.bfloat16, device="cuda", seed=head_dim)

    def check():
        for causal in (False, True):
            check_against_fp64(q, k, v, padding_mask(2, 201, device="cuda"), causal)

    run_or_skip_config(spec, spec.configs[index], q.element_size(), fa._consts(q, False, True), q.device, check)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,head_dim,n", [(torch.float32, 64, 37), (torch.float32, 128, 37),
                                              (torch.float16, 64, 1), (torch.float16, 80, 37),
                                              (torch.float16, 128, 200)])
def test_gpu_small_shapes_fp32_fp16(dtype, head_dim, n, monkeypatch):
    """The interpreter's cases on the compiled kernels with the default configs; fp32 at head dim 128 must
    fall back from a default that does not fit in shared memory."""
    monkeypatch.setenv("BABYFAST_AUTOTUNE", "0")
    q, k, v = make_qkv(2, 2, n, n, head_dim, dtype, device="cuda", seed=n + head_dim)
    for causal in (False, True):
        check_against_fp64(q, k, v, padding_mask(2, n, device="cuda", seed=n), causal)


@pytest.mark.gpu
def test_gpu_autotuned_path():
    q, k, v = make_qkv(4, 12, 784, 784, 64, torch.bfloat16, device="cuda", seed=12)
    check_against_fp64(q, k, v, None, causal=False)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_masked_bnhd(dtype, monkeypatch):
    monkeypatch.setenv("BABYFAST_AUTOTUNE", "0")
    q, k, v = make_qkv(4, 12, 157, 157, 64, dtype, device="cuda", layout="bnhd", seed=9)
    mask = padding_mask(4, 157, device="cuda")
    mask[3] = False
    check_against_fp64(q, k, v, mask, causal=False, layout="bnhd")
