"""patchify (Triton and torch paths) against the Conv3d reference in float64.

The reference normalizes and runs `torch.nn.functional.conv3d` with stride = kernel = tubelet; without a
projection it uses an identity weight, so "feature order = flattened Conv3d weight" is checked by
construction. CPU runs use the Triton interpreter, small videos, fp32 and fp16 (tests and cases marked
`interpreter`, skipped where the kernels are compiled); the `gpu` tests run the compiled kernels.
"""
from __future__ import annotations

import pytest
import torch

from babyfast.kernels import _patchify, _runtime, normalization_constants, patchify, patchify_reference
from babyfast.kernels import _patchify_triton as pt
from babyfast.kernels._runtime import poisoned_outputs

TRITON = pytest.param("triton", marks=pytest.mark.interpreter)

ABS_BOUND = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}
FLOOR = {torch.float32: 1e-6, torch.float16: 1e-4, torch.bfloat16: 1e-3}
MEAN = (0.45, 0.40, 0.35)
STD = (0.25, 0.20, 0.30)


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    return (x.double() - ref).norm().item() / ref.norm().item()


def make_video(b, t, h, w, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, h, w, 3), generator=g, dtype=torch.uint8).to(device)


def make_visible(b, n_all, n_vis, seed=0, shared=False, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    if shared:
        return torch.randperm(n_all, generator=g)[:n_vis].to(device)
    return torch.stack([torch.randperm(n_all, generator=g)[:n_vis] for _ in range(b)]).to(device)


def check(out: torch.Tensor, ref64: torch.Tensor, low: torch.Tensor, what: str) -> None:
    assert out.shape == ref64.shape, what
    assert torch.isfinite(out).all(), f"{what}: NaN (an element never written)"
    err, base = rel_err(out, ref64), rel_err(low, ref64)
    assert err <= 2 * base + FLOOR[out.dtype], f"{what}: error {err:.3e} vs torch's {base:.3e} in {out.dtype}"
    assert err <= ABS_BOUND[out.dtype], f"{what}: error {err:.3e} over {ABS_BOUND[out.dtype]} in {out.dtype}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("tubelet,shape", [((2, 8, 8), (2, 4, 24, 40)), ((1, 4, 4), (1, 3, 12, 8)),
                                           ((2, 16, 16), (1, 2, 32, 16)), ((3, 6, 6), (2, 3, 12, 18))])
@pytest.mark.parametrize("backend", [TRITON, "torch"])
@pytest.mark.parametrize("mask", [None, "per-sample", "shared"])
def test_tokens(tubelet, shape, dtype, backend, mask):
    video = make_video(*shape, seed=sum(shape))
    t, p, _ = tubelet
    n_all = (shape[1] // t) * (shape[2] // p) * (shape[3] // p)
    visible = None if mask is None else make_visible(shape[0], n_all, max(1, n_all // 3), seed=n_all,
                                                      shared=mask == "shared")
    ref = patchify_reference(video, tubelet, MEAN, STD, visible=visible)
    low = patchify(video, tubelet, MEAN, STD, visible=visible, dtype=dtype, backend="torch")
    with poisoned_outputs():
        out = patchify(video, tubelet, MEAN, STD, visible=visible, dtype=dtype, backend=backend)
    assert out.dtype == dtype and out.shape[-1] == 3 * t * p * p
    check(out, ref, low, f"{backend} tokens")


@pytest.mark.interpreter
def test_token_layout_is_conv3d_weight_order():
    """An independent spelling of the order: feature (c, dt, dh, dw) of token (ti, hi, wi) is pixel
    (ti·t+dt, hi·p+dh, wi·p+dw, c), with the identity normalization."""
    video = make_video(1, 4, 8, 12, seed=3)
    out = patchify(video, (2, 4, 4), mean=(0, 0, 0), std=(1 / 255,) * 3, backend="triton")
    ti, hi, wi, c, dt, dh, dw = 1, 1, 2, 2, 1, 3, 0
    token = (ti * 2 + hi) * 3 + wi
    feature = ((c * 2 + dt) * 4 + dh) * 4 + dw
    assert out[0, token, feature].item() == video[0, ti * 2 + dt, hi * 4 + dh, wi * 4 + dw, c].item()


@pytest.mark.interpreter
def test_non_contiguous_video():
    """A crop of a larger clip and a channels-first tensor viewed as channels-last: read through strides."""
    big = make_video(2, 6, 40, 56, seed=4)
    crop = big[:, 1:5, 4:36, 8:40]  # [2, 4, 32, 32, 3], not contiguous
    planar = make_video(2, 4, 16, 16, seed=5).permute(0, 4, 1, 2, 3).contiguous().permute(0, 2, 3, 4, 1)
    for video in (crop, planar):
        assert not video.is_contiguous()
        ref = patchify_reference(video, (2, 8, 8), MEAN, STD)
        out = patchify(video, (2, 8, 8), MEAN, STD, backend="triton")
        assert rel_err(out, ref) < 1e-6
        w = torch.randn(24, 3 * 2 * 8 * 8)
        emb = patchify(video, (2, 8, 8), MEAN, STD, weight=w, backend="triton")
        assert rel_err(emb, patchify_reference(video, (2, 8, 8), MEAN, STD, weight=w)) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("backend", [TRITON, "torch"])
@pytest.mark.parametrize("mask", [None, "per-sample", "shared"])
@pytest.mark.parametrize("extras", ["bias+pos", "none"])
@pytest.mark.parametrize("weight_shape", ["conv3d", "flat"])
def test_fused_embedding_and_gradients(dtype, backend, mask, extras, weight_shape):
    b, tubelet, d = 2, (2, 4, 4), 40  # D = 40 is not a multiple of any block size
    video = make_video(b, 4, 16, 20, seed=d)
    n_all = 2 * 4 * 5
    visible = None if mask is None else make_visible(b, n_all, 9, seed=1, shared=mask == "shared")
    g = torch.Generator().manual_seed(2)
    w = torch.randn(d, 3, 2, 4, 4, generator=g) * 0.05
    if weight_shape == "flat":
        w = w.reshape(d, -1)
    bias = torch.randn(d, generator=g) if extras == "bias+pos" else None
    pos = torch.randn(1, n_all, d, generator=g) if extras == "bias+pos" else None
    params = [x for x in (w, bias, pos) if x is not None]
    n_out = n_all if visible is None else visible.shape[-1]
    dout = torch.randn(b, n_out, d, generator=g)

    def run(fn, cast):
        xs = [x.detach().to(cast).requires_grad_(True) for x in params]
        it = iter(xs)
        args = [next(it) if x is not None else None for x in (w, bias, pos)]
        out = fn(*args)
        out.backward(dout.to(out.dtype))
        return [out.detach()] + [x.grad for x in xs]

    ref = run(lambda w_, b_, p_: patchify_reference(video, tubelet, MEAN, STD, w_, b_, p_, visible), torch.float64)
    low = run(lambda w_, b_, p_: patchify(video, tubelet, MEAN, STD, w_, b_, p_, visible, backend="torch"), dtype)
    with poisoned_outputs():
        ours = run(lambda w_, b_, p_: patchify(video, tubelet, MEAN, STD, w_, b_, p_, visible, backend=backend),
                   dtype)
    for name, o, lo, r in zip(("out", "dweight", "dbias", "dpos"), ours, low, ref):
        assert o.shape == r.shape, name
        check(o, r, lo, f"{backend} {name}")


def _fused_case(device, dtype, seed, d=40, b=2, frames=4, size=(16, 20), tubelet=(2, 4, 4), n_vis=9):
    """One masked fused patchify vs the fp64 reference (outputs only)."""
    video = make_video(b, frames, *size, device=device, seed=seed)
    t, p, _ = tubelet
    n_all = (frames // t) * (size[0] // p) * (size[1] // p)
    visible = make_visible(b, n_all, n_vis, seed=seed, device=device)
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(d, 3, t, p, p, generator=g) * 0.05).to(device)
    bias = torch.randn(d, generator=g).to(device)
    pos = torch.randn(n_all, d, generator=g).to(device)
    ref = patchify_reference(video, tubelet, MEAN, STD, w, bias, pos, visible)
    low = patchify(video, tubelet, MEAN, STD, w, bias, pos, visible, dtype=dtype, backend="torch")
    with poisoned_outputs():
        out = patchify(video, tubelet, MEAN, STD, w, bias, pos, visible, dtype=dtype, backend="triton")
    check(out, ref, low, "fused")
    tok_ref = patchify_reference(video, tubelet, MEAN, STD, visible=visible)
    tok_low = patchify(video, tubelet, MEAN, STD, visible=visible, dtype=dtype, backend="torch")
    with poisoned_outputs():
        tok = patchify(video, tubelet, MEAN, STD, visible=visible, dtype=dtype, backend="triton")
    check(tok, tok_ref, tok_low, "tokens")


@pytest.mark.interpreter
def test_gpu_block_shapes_on_the_interpreter():
    """Block shapes of the GPU autotune lists (the interpreter's own default is smaller)."""
    element = next(c for c in pt._COPY_CONFIGS if not c.kwargs["ROW_GATHER"])
    by_row = next(c for c in pt._COPY_CONFIGS if c.kwargs["ROW_GATHER"])
    for copy, embed in ((element, pt._EMBED_CONFIGS[3]), (by_row, pt._EMBED_CONFIGS[4])):
        with pt.forced_configs(copy=copy, embed=embed):
            _fused_case("cpu", torch.float16, seed=4, d=72)


@pytest.mark.interpreter
def test_fp32_master_weights_with_fp16_output():
    """Mixed precision as a trainer uses it: fp32 parameters, fp16 tokens; gradients land in fp32."""
    video = make_video(2, 2, 8, 8, seed=6)
    w = (torch.randn(32, 3, 2, 4, 4) * 0.05).requires_grad_(True)
    bias = torch.randn(32, requires_grad=True)
    out = patchify(video, (2, 4, 4), MEAN, STD, w, bias, dtype=torch.float16, backend="triton")
    assert out.dtype == torch.float16
    out.float().square().sum().backward()
    w64 = w.detach().double().requires_grad_(True)
    b64 = bias.detach().double().requires_grad_(True)
    ref = patchify_reference(video, (2, 4, 4), MEAN, STD, w64, b64)
    ref.square().sum().backward()
    assert w.grad.dtype == torch.float32 and rel_err(w.grad, w64.grad) < 5e-3
    assert rel_err(bias.grad, b64.grad) < 5e-3


def test_rejects_bad_arguments():
    video = make_video(1, 4, 16, 16)
    with pytest.raises(ValueError, match="not divisible"):
        patchify(video, (3, 8, 8))
    with pytest.raises(ValueError, match="uint8"):
        patchify(video.float(), (2, 8, 8))
    with pytest.raises(ValueError, match="square"):
        patchify(video, (2, 8, 4))
    with pytest.raises(ValueError, match=r"weight must be \[D, 3, 2, 8, 8\]"):
        patchify(video, (2, 8, 8), weight=torch.randn(8, 3, 2, 4, 4))
    with pytest.raises(ValueError, match=r"lie in \[0, 8\)"):
        patchify(video, (2, 8, 8), visible=torch.tensor([[0, 8]]))
    with pytest.raises(ValueError, match="pos_embed"):
        patchify(video, (2, 8, 8), weight=torch.randn(8, 384), pos_embed=torch.randn(7, 8))
    # the right number of elements in the wrong shape is refused too (8 tubelets, D = 8)
    for shape in ((2, 4, 8), (8, 8, 1), (64,), (8, 1, 8)):
        with pytest.raises(ValueError, match=r"pos_embed must be \[8, 8\] or \[1, 8, 8\]"):
            patchify(video, (2, 8, 8), weight=torch.randn(8, 384), pos_embed=torch.randn(shape))
    for shape in ((8, 8), (1, 8, 8)):
        assert patchify(video, (2, 8, 8), weight=torch.randn(8, 384), pos_embed=torch.randn(shape)).shape == (1, 8, 8)
    with pytest.raises(ValueError, match="mean and std"):
        patchify(video, (2, 8, 8), mean=(0.5, 0.5))


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_runtime, "_interpret", False)  # as if the kernels had been compiled
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        patchify(make_video(1, 2, 8, 8), (2, 4, 4), backend="triton")


def test_normalization_constants_are_made_once_per_device():
    """patchify copies nothing to the device per call (a copy from pageable memory waits for the stream)."""
    s1, h1 = _patchify._cached_constants(MEAN, STD, torch.device("cpu"))
    s2, h2 = _patchify._cached_constants(list(MEAN), torch.tensor(STD, dtype=torch.float64), "cpu")
    assert s1 is s2 and h1 is h2
    scale, shift = normalization_constants(MEAN, STD, "cpu")  # the public one hands out fresh tensors
    assert scale is not s1 and torch.equal(scale, s1)
    x = torch.arange(256, dtype=torch.float64)[:, None]
    expect = (x / 255 - torch.tensor(MEAN, dtype=torch.float64)) / torch.tensor(STD, dtype=torch.float64)
    assert torch.allclose(x * scale.double() + shift.double(), expect, atol=1e-5)


def test_row_gather_needs_dense_pixels():
    video = make_video(1, 2, 8, 16)
    assert pt.row_gather_ok(video)
    assert pt.row_gather_ok(video[:, :, 2:6, 4:12])  # a crop keeps each row's bytes contiguous
    assert not pt.row_gather_ok(video[:, :, :, ::2])  # stride_w = 6
    assert not pt.row_gather_ok(video.permute(0, 4, 1, 2, 3).contiguous().permute(0, 2, 3, 4, 1))  # planar


def _prefer_row_gather(monkeypatch):
    """The copy kernel's autotuner with an empty cache and no timing: row-gather configs "win" wherever the
    prune leaves them, so a dense video surely tunes to one."""
    tuner = pt._patchify_tuned
    monkeypatch.setattr(tuner, "cache", {})

    def fake_bench(*args, config, **meta):
        return [1.0 if config.kwargs["ROW_GATHER"] else 2.0] * 3

    monkeypatch.setattr(tuner, "_bench", fake_bench)
    return tuner


def _dense_then_strided(device):
    """Videos that share the copy kernel's autotune key but for the layout: a dense one first, then a
    planar one (stride_c != 1) and one with every other column (stride_w = 6)."""
    dense = make_video(2, 4, 16, 16, device=device, seed=31)
    planar = make_video(2, 4, 16, 16, device=device, seed=32).permute(0, 4, 1, 2, 3).contiguous().permute(0, 2, 3, 4, 1)
    sparse = make_video(2, 4, 16, 32, device=device, seed=33)[:, :, :, ::2]
    return [(dense, True), (planar, False), (sparse, False)]


@pytest.mark.interpreter
def test_layout_is_part_of_the_copy_autotune_key(monkeypatch):
    """The launcher states the layout (ROW_OK) and the autotuner keys and prunes by it: a video with another
    layout after a dense one is tuned again instead of reusing the dense video's row-gather config (the
    real autotuner, through the interpreter, with made-up timings)."""
    tuner = _prefer_row_gather(monkeypatch)
    tubelet = (2, 4, 4)
    scale, shift = normalization_constants(MEAN, STD, "cpu")
    _runtime.fix_interpreter_scalars()
    for video, dense in _dense_then_strided("cpu"):
        out = torch.full((2, 2 * 4 * 4, 3 * 2 * 4 * 4), float("nan"))
        grid, args, consts = pt._copy_launch(video, tubelet, scale, shift, None, out)
        assert consts["ROW_OK"] is dense
        tuner[grid](*args, **consts)
        assert tuner.best_config.kwargs["ROW_GATHER"] is dense
        assert rel_err(out, patchify_reference(video, tubelet, MEAN, STD)) < 1e-6
    assert len(tuner.cache) == 2  # one tuning per layout class, not per video


# ----------------------------------------------------------------------------------------------------
# GPU: bf16 and VideoMAE-sized clips


_ALL_CONFIGS = [("copy", i) for i in range(len(pt._COPY_CONFIGS))] + [
    ("embed", i) for i in range(len(pt._EMBED_CONFIGS))]


@pytest.mark.gpu
@pytest.mark.parametrize("kernel,index", _ALL_CONFIGS, ids=[f"{n}{i}" for n, i in _ALL_CONFIGS])
def test_gpu_every_block_config(kernel, index, monkeypatch):
    """Autotuning may pick any config on some GPU: each must be right (D not a multiple of the tile); the
    other kernel keeps its default."""
    from triton.runtime.errors import OutOfResources

    monkeypatch.setenv("BABYFAST_AUTOTUNE", "0")
    spec = {"copy": pt.COPY, "embed": pt.EMBED}[kernel]
    config = spec.configs[index]
    consts, itemsize, device = {"ROW_PAD": 64, "ROW_OK": True}, 2, torch.device("cuda")
    if not _runtime.config_fits(spec.shared_memory, config, consts, itemsize, device):
        pytest.skip(f"{spec.describe(config, consts, itemsize, device)} does not fit")
    try:
        with pt.forced_configs(**{kernel: config}):
            _fused_case("cuda", torch.bfloat16, seed=5, d=200, b=3, frames=4, size=(64, 96), tubelet=(2, 16, 16),
                        n_vis=17)
    except OutOfResources as e:
        pytest.skip(f"{kernel} config [{config}] does not fit on {torch.cuda.get_device_name()}: {e}")


@pytest.mark.gpu
def test_gpu_layout_is_part_of_the_copy_autotune_key(monkeypatch):
    """A dense video tunes the copy kernel to a row-gather config; planar and column-strided videos of the
    same shape come next and must be tuned apart, not read with that config (wrong bytes)."""
    monkeypatch.setenv("BABYFAST_AUTOTUNE", "1")
    tuner = _prefer_row_gather(monkeypatch)
    for video, dense in _dense_then_strided("cuda"):
        with poisoned_outputs():
            out = patchify(video, (2, 4, 4), MEAN, STD, backend="triton")
        assert tuner.best_config.kwargs["ROW_GATHER"] is dense
        assert rel_err(out, patchify_reference(video, (2, 4, 4), MEAN, STD)) < 1e-6
    assert len(tuner.cache) == 2


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("masked", [False, True])
def test_gpu_videomae_shapes(dtype, masked):
    b, tubelet, d = 4, (2, 16, 16), 384
    video = make_video(b, 16, 224, 224, device="cuda", seed=8)
    n_all = 8 * 14 * 14
    visible = make_visible(b, n_all, n_all // 10, device="cuda") if masked else None
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(d, 3, 2, 16, 16, generator=g) * 0.02).cuda()
    bias = torch.randn(d, generator=g).cuda()
    pos = torch.randn(n_all, d, generator=g).cuda()
    ref = patchify_reference(video, tubelet, weight=w, bias=bias, pos_embed=pos, visible=visible)
    low = patchify(video, tubelet, weight=w, bias=bias, pos_embed=pos, visible=visible, dtype=dtype, backend="torch")
    with poisoned_outputs():
        out = patchify(video, tubelet, weight=w, bias=bias, pos_embed=pos, visible=visible, dtype=dtype,
                       backend="triton")
    check(out, ref, low, "fused")
    tok_ref = patchify_reference(video, tubelet, visible=visible)
    tok_low = patchify(video, tubelet, visible=visible, dtype=dtype, backend="torch")
    with poisoned_outputs():
        tok = patchify(video, tubelet, visible=visible, dtype=dtype, backend="triton")
    check(tok, tok_ref, tok_low, "tokens")


def test_kernel_defaults_normalize_as_the_loader_and_models_do() -> None:
    """The kernels may not import babyfast, so their default mean/std are a literal of their own: the same
    as babyfast.imagenet's, which the loader and the models use."""
    from babyfast import imagenet
    from babyfast import kernels

    assert (kernels.IMAGENET_MEAN, kernels.IMAGENET_STD) == (imagenet.IMAGENET_MEAN, imagenet.IMAGENET_STD)
