"""Patchify in Triton: uint8 video `[B, T, H, W, 3]` → tubelet tokens, optionally → patch embeddings.

Token m of the output is tubelet `n` (all tubelets in (time, row, column) order, or `visible[b, j]`), so
a mask is applied by reading only the visible tubelets, never by computing and dropping.

Unfused kernel: features in Conv3d-weight order (channel, dt, dh, dw), normalized on the fly
(`x * scale[c] + shift[c]`, i.e. `(x / 255 - mean) / std`), written in the output dtype. The video is
channels-last and the tokens channel-major, so channels must be de-interleaved; two strategies, both
in the autotune list: per element (one byte load per feature, any strides) or per tubelet row (the 3·p
bytes of a row in one wide load, de-interleaved in registers by `tl.gather`; needs dense (W, 3)). The
launcher states whether the video's layout allows the second (`ROW_OK`, a constexpr in the autotune key),
so a layout is never run with a config tuned for another.

Fused kernel: a GEMM whose A operand is gathered straight from the uint8 video. The normalization is
folded into the weight and bias on the host (`W' = W · scale`, `b' = b + W · shift`), so the kernel sees
raw pixel values (exact in fp16/bf16) and adds `b'` and the position embedding in its epilogue. Because
a GEMM's reduction order is free, the kernel walks the features channels-last — (dt, dh, dw, c), the
order the bytes lie in memory, 3·p contiguous bytes per tubelet row — with W' permuted to match.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._runtime import (
    KernelSpec,
    dot_precision,
    forced_configs,
    interpreting,
    launch,
    new_output,
    prune_to_fit,
    record_kernel_mode,
)

__all__ = ["patchify_tokens", "patch_embed", "PatchEmbedFunction", "forced_configs", "row_gather_ok"]


@triton.jit
def _tubelet_offsets(offs_m, vis_ptr, stride_vis_b, stride_vis_n, stride_b, stride_t, stride_h, stride_w,
                     M, N_OUT, HP, WP, T_SZ: tl.constexpr, P: tl.constexpr, HAS_VIS: tl.constexpr):
    """Byte offset of each token's first pixel (its tubelet's corner), int64."""
    m_ok = offs_m < M
    b = offs_m // N_OUT
    j = offs_m % N_OUT
    if HAS_VIS:
        n = tl.load(vis_ptr + b.to(tl.int64) * stride_vis_b + j * stride_vis_n, mask=m_ok, other=0)
    else:
        n = j
    n = n.to(tl.int64)
    per_frame = HP * WP
    ti = n // per_frame
    rem = n % per_frame
    hi = rem // WP
    wi = rem % WP
    return (b.to(tl.int64) * stride_b + ti * (T_SZ * stride_t) + hi * (P * stride_h) + wi * (P * stride_w)), n


@triton.jit
def _tokens_by_element(VID, SCALE, SHIFT, OUT, row, offs_m, pid_k, stride_t, stride_h, stride_w, stride_c, M,
                       T_SZ: tl.constexpr, P: tl.constexpr, BLOCK_K: tl.constexpr):
    """[BLOCK_M, BLOCK_K] features per program, each element fetched from its own byte (any strides)."""
    K: tl.constexpr = 3 * T_SZ * P * P
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    # Conv3d weight order: channel, then dt, dh, dw
    c = offs_k // (T_SZ * P * P)
    r = offs_k % (T_SZ * P * P)
    dt = r // (P * P)
    dh = (r // P) % P
    dw = r % P
    col = dt * stride_t + dh * stride_h + dw * stride_w + c * stride_c
    k_ok = offs_k < K
    mask = (offs_m[:, None] < M) & k_ok[None, :]
    x = tl.load(VID + row[:, None] + col[None, :], mask=mask, other=0)
    scale = tl.load(SCALE + c, mask=k_ok, other=0.0)
    shift = tl.load(SHIFT + c, mask=k_ok, other=0.0)
    y = x.to(tl.float32) * scale[None, :] + shift[None, :]
    out_ptrs = OUT + offs_m.to(tl.int64)[:, None] * K + offs_k[None, :]
    tl.store(out_ptrs, y.to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _tokens_by_row(VID, SCALE, SHIFT, OUT, row, offs_m, pid_k, stride_t, stride_h, M,
                   T_SZ: tl.constexpr, P: tl.constexpr, P_PAD: tl.constexpr, ROW_PAD: tl.constexpr,
                   ROWS: tl.constexpr):
    """ROWS tubelet rows (dt, dh) per program: each row's 3·p interleaved bytes are read as one contiguous
    run (wide loads), then de-interleaved into three planar runs of p features in registers (tl.gather)."""
    K: tl.constexpr = 3 * T_SZ * P * P
    m_ok = offs_m < M
    j = tl.arange(0, ROW_PAD)  # byte within a tubelet row: pixel j // 3, channel j % 3
    o = tl.arange(0, 4 * P_PAD)  # output slot: channel o // P_PAD (3 of 4 used), pixel o % P_PAD
    c = o // P_PAD
    dw = o % P_PAD
    o_ok = (c < 3) & (dw < P)
    src = tl.broadcast_to(tl.where(o_ok, dw * 3 + c, 0)[None, :], [offs_m.shape[0], 4 * P_PAD])
    scale = tl.load(SCALE + c, mask=c < 3, other=0.0)
    shift = tl.load(SHIFT + c, mask=c < 3, other=0.0)
    out_base = OUT + offs_m.to(tl.int64)[:, None] * K
    store_mask = m_ok[:, None] & o_ok[None, :]
    for r in range(pid_k * ROWS, tl.minimum(pid_k * ROWS + ROWS, T_SZ * P)):
        dt = r // P
        dh = r % P  # pyright: ignore[reportOperatorIssue]  # Triton constexpr
        raw = tl.load(VID + row[:, None] + (dt * stride_t + dh * stride_h) + j[None, :],
                      mask=m_ok[:, None] & (j < 3 * P)[None, :], other=0)
        x = tl.gather(raw, src, axis=1)
        y = x.to(tl.float32) * scale[None, :] + shift[None, :]
        col = c * (T_SZ * P * P) + dt * (P * P) + dh * P + dw
        tl.store(out_base + col[None, :], y.to(OUT.dtype.element_ty), mask=store_mask)


@triton.jit
def _patchify_kernel(VID, SCALE, SHIFT, VIS, OUT,
                     stride_b, stride_t, stride_h, stride_w, stride_c,
                     stride_vis_b, stride_vis_n,
                     M, N_OUT, HP, WP,
                     T_SZ: tl.constexpr, P: tl.constexpr, HAS_VIS: tl.constexpr, ROW_OK: tl.constexpr,
                     P_PAD: tl.constexpr, ROW_PAD: tl.constexpr,
                     ROW_GATHER: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, ROWS: tl.constexpr):
    """Normalized tokens. ROW_GATHER (needs the (W, 3) bytes dense, which the launcher states as ROW_OK):
    grid axis 1 walks groups of ROWS tubelet rows; otherwise it walks blocks of BLOCK_K features."""
    pid_m = tl.program_id(0)
    pid_k = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row, _ = _tubelet_offsets(  # pyright: ignore[reportGeneralTypeIssues]  # a triton.jit function
        offs_m, VIS, stride_vis_b, stride_vis_n, stride_b, stride_t, stride_h, stride_w,
        M, N_OUT, HP, WP, T_SZ, P, HAS_VIS)
    if ROW_GATHER:
        # a config tuned for a dense video must never read another layout: fail to compile instead
        tl.static_assert(ROW_OK, "row gathering needs stride_w == 3 and stride_c == 1")
        _tokens_by_row(VID, SCALE, SHIFT, OUT, row, offs_m, pid_k, stride_t, stride_h, M, T_SZ, P, P_PAD, ROW_PAD,
                       ROWS)
    else:
        _tokens_by_element(VID, SCALE, SHIFT, OUT, row, offs_m, pid_k, stride_t, stride_h, stride_w, stride_c, M,
                           T_SZ, P, BLOCK_K)


@triton.jit
def _patch_embed_kernel(VID, W, BIAS, POS, VIS, OUT,
                        stride_b, stride_t, stride_h, stride_w, stride_c,
                        stride_wd, stride_wk, stride_pn, stride_pd,
                        stride_vis_b, stride_vis_n,
                        M, N_OUT, HP, WP, D,
                        T_SZ: tl.constexpr, P: tl.constexpr, ROW_CONTIG: tl.constexpr,
                        HAS_POS: tl.constexpr, HAS_VIS: tl.constexpr, DOT_PRECISION: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    K: tl.constexpr = 3 * T_SZ * P * P
    ROW: tl.constexpr = 3 * P  # bytes of one tubelet row (dw, c)
    pid = tl.program_id(0)
    num_n = tl.cdiv(D, BLOCK_N)
    # neighbouring programs share one block of tokens, so its gathered pixels are read from L2, not DRAM
    pid_m = pid // num_n
    pid_n = pid % num_n
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = offs_m < M
    n_ok = offs_n < D
    row, tub = _tubelet_offsets(offs_m, VIS, stride_vis_b, stride_vis_n, stride_b, stride_t, stride_h, stride_w,
                                M, N_OUT, HP, WP, T_SZ, P, HAS_VIS)
    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_ok = offs_k < K
        # channels-last feature order: (dt, dh) select a tubelet row, `inner` walks its 3·p bytes
        dt = offs_k // (P * ROW)
        dh = (offs_k // ROW) % P
        inner = offs_k % ROW
        if ROW_CONTIG:
            col = dt * stride_t + dh * stride_h + inner
        else:
            col = dt * stride_t + dh * stride_h + (inner // 3) * stride_w + (inner % 3) * stride_c
        a = tl.load(VID + row[:, None] + col[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0)
        w = tl.load(W + offs_k[:, None] * stride_wk + offs_n[None, :] * stride_wd,
                    mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        acc = tl.dot(a.to(W.dtype.element_ty), w, acc, input_precision=DOT_PRECISION)
    acc += tl.load(BIAS + offs_n, mask=n_ok, other=0.0)[None, :]
    if HAS_POS:
        pos = tl.load(POS + tub[:, None] * stride_pn + offs_n[None, :] * stride_pd,
                      mask=m_ok[:, None] & n_ok[None, :], other=0.0)
        acc += pos.to(tl.float32)
    out_ptrs = OUT + offs_m.to(tl.int64)[:, None] * D + offs_n[None, :]
    tl.store(out_ptrs, acc.to(OUT.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


# ----------------------------------------------------------------------------------------------------
# block sizes: autotuned on the GPU, fixed and small on the interpreter

# whether Triton made these kernels interpreted functions (TRITON_INTERPRET at import): `interpreting()`
record_kernel_mode(_patchify_kernel)


def _copy_cfg(bm: int, bk: int, warps: int, row_gather: bool = False, rows: int = 1) -> triton.Config:
    return triton.Config({"BLOCK_M": bm, "BLOCK_K": bk, "ROW_GATHER": row_gather, "ROWS": rows}, num_warps=warps)


# two ways to de-interleave channels: per element (byte loads at stride 3, any layout) or per tubelet row
# (contiguous wide loads + a register gather, dense (W, 3) only); the autotuner measures both
_COPY_CONFIGS = [
    _copy_cfg(32, 256, 4), _copy_cfg(16, 256, 4), _copy_cfg(32, 512, 8), _copy_cfg(64, 256, 8), _copy_cfg(16, 512, 4),
    _copy_cfg(64, 128, 4), _copy_cfg(8, 512, 4),
    _copy_cfg(32, 0, 4, True, 4), _copy_cfg(64, 0, 4, True, 4), _copy_cfg(64, 0, 8, True, 8),
    _copy_cfg(128, 0, 8, True, 4), _copy_cfg(32, 0, 4, True, 8), _copy_cfg(16, 0, 4, True, 16),
]
_ELEMENT_FALLBACK = _COPY_CONFIGS[0]
# the interpreter times nothing; blocks smaller than one tubelet's features exercise the k loop and masks
INTERPRET_BLOCKS = {"copy": {"BLOCK_M": 16, "BLOCK_K": 64, "ROW_GATHER": True, "ROWS": 3},
                    "embed": {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 32}}


def row_gather_ok(video: torch.Tensor) -> bool:
    """Whether the row-gather strategy can read this video: each pixel's 3 channels adjacent and pixels
    adjacent along W, so that a tubelet row is 3·p contiguous bytes (the crop of a dense clip qualifies)."""
    return video.stride(3) == 3 and video.stride(4) == 1


def _prune_copy(configs, named_args, **kwargs):
    # ROW_OK is a constexpr in the autotune key, so a layout that cannot use row gathering is tuned (and
    # pruned) on its own, never handed a config tuned for a dense video
    kept = [c for c in configs if kwargs["ROW_OK"] or not c.kwargs["ROW_GATHER"]]
    return kept or [_ELEMENT_FALLBACK]


def _copy_for_layout(config, consts: dict):
    """A row-gather config on a layout it cannot read becomes the per-element fallback."""
    if consts["ROW_OK"] or not config.kwargs["ROW_GATHER"]:
        return config
    if interpreting():
        return triton.Config({**INTERPRET_BLOCKS["copy"], "ROW_GATHER": False, "ROWS": 1}, num_warps=4,
                             num_stages=1)
    return _ELEMENT_FALLBACK


def _copy_shared_memory(config, consts: dict, itemsize: int) -> int:
    """Per element: the [BLOCK_M, BLOCK_K] output tile (element size `itemsize`) re-laid out for the store;
    row gathering: its [BLOCK_M, ROW_PAD] byte tiles, one per stage plus one for the gather."""
    if not config.kwargs["ROW_GATHER"]:
        return config.kwargs["BLOCK_M"] * config.kwargs["BLOCK_K"] * itemsize
    return (max(1, config.num_stages) + 1) * config.kwargs["BLOCK_M"] * consts["ROW_PAD"]


def _embed_shared_memory(config, consts: dict, itemsize: int) -> int:
    """Per stage the uint8 A tile and the W tile (element size `itemsize`), plus A converted to W's dtype for
    the tensor cores; the epilogue's [BLOCK_M, BLOCK_N] tile reuses that memory after the loop."""
    bm, bn, bk = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"], config.kwargs["BLOCK_K"]
    loop = max(1, config.num_stages) * (bm * bk + bk * bn * itemsize) + bm * bk * itemsize
    return max(loop, bm * bn * itemsize)


# Hopper GEMM tiles: 128 x 128/256 with 8 warps (two warpgroups on wgmma); the gathered A operand is
# loaded through registers, so deeper pipelines help less than in a plain GEMM
_EMBED_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bm, bn, bk, w, s in ((128, 128, 64, 8, 3), (128, 256, 64, 8, 3), (128, 128, 64, 4, 4),
                             (64, 128, 64, 4, 4), (128, 64, 64, 4, 4), (128, 128, 128, 8, 2),
                             (64, 256, 64, 8, 3), (256, 128, 64, 8, 3), (64, 64, 32, 4, 2))
]
# the last one only where nothing else fits (fp32 on GPUs with ~100 KB of shared memory); never tuned elsewhere
_EMBED_LAST_RESORT = _EMBED_CONFIGS[-1:]
# The shared-memory estimates are upper bounds of what Triton 3.6 allocates for sm_90 and sm_80 (every config
# of the `compile_check` profiles, tests/test_kernel_compile.py). ROW_OK / ROW_CONTIG (the video layout) are in
# the keys: the copy kernel's configs depend on it for correctness, the embed kernel's speed does
_patchify_tuned = triton.autotune(_COPY_CONFIGS, key=["N_OUT", "T_SZ", "P", "HAS_VIS", "ROW_OK"],
                                  prune_configs_by={"early_config_prune": prune_to_fit(
                                      _copy_shared_memory, "OUT", then=_prune_copy)})(_patchify_kernel)
_embed_tuned = triton.autotune(_EMBED_CONFIGS, key=["N_OUT", "D", "T_SZ", "P", "HAS_VIS", "HAS_POS", "ROW_CONTIG"],
                               prune_configs_by={"early_config_prune": prune_to_fit(
                                   _embed_shared_memory, "W", last_resort=_EMBED_LAST_RESORT)}
                               )(_patch_embed_kernel)
COPY = KernelSpec("copy", _patchify_kernel, _patchify_tuned, _COPY_CONFIGS, _COPY_CONFIGS[7],
                  INTERPRET_BLOCKS["copy"], _copy_shared_memory, adapt=_copy_for_layout)
EMBED = KernelSpec("embed", _patch_embed_kernel, _embed_tuned, _EMBED_CONFIGS, _EMBED_CONFIGS[0],
                   INTERPRET_BLOCKS["embed"], _embed_shared_memory)


# ----------------------------------------------------------------------------------------------------
# host side


def _grid_dims(video: torch.Tensor, tubelet: tuple[int, int, int]) -> tuple[int, int, int]:
    t, p, _ = tubelet
    _, T, H, W, _ = video.shape
    return T // t, H // p, W // p


def _visible_args(visible: torch.Tensor | None, video: torch.Tensor, n_all: int):
    if visible is None:
        return video, 0, 0, n_all
    if visible.dim() == 1:
        return visible, 0, visible.stride(0), visible.shape[0]
    return visible, visible.stride(0), visible.stride(1), visible.shape[1]


def patchify_tokens(video: torch.Tensor, tubelet: tuple[int, int, int], scale: torch.Tensor, shift: torch.Tensor,
                    visible: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
    """Normalized tubelet tokens `[B, N_out, 3·t·p·p]` (Conv3d-weight feature order).

    `scale`, `shift`: fp32 `[3]` on the video's device, applied as `x * scale + shift`. Arguments are
    trusted (the public `patchify` validates them).
    """
    b = video.shape[0]
    t, p, _ = tubelet
    tp, hp, wp = _grid_dims(video, tubelet)
    n_out = _visible_args(visible, video, tp * hp * wp)[3]
    out = new_output(shape=(b, n_out, 3 * t * p * p), dtype=out_dtype, device=video.device)
    if out.numel() == 0:
        return out
    grid, args, consts = _copy_launch(video, tubelet, scale, shift, visible, out)
    launch(COPY, grid, args, consts, itemsize=out.element_size(), device=video.device)
    return out


def _copy_launch(video: torch.Tensor, tubelet: tuple[int, int, int], scale: torch.Tensor, shift: torch.Tensor,
                 visible: torch.Tensor | None, out: torch.Tensor):
    """(grid function, arguments, constexprs) of the copy kernel writing `out` `[B, N_out, K]`."""
    t, p, _ = tubelet
    b = video.shape[0]
    tp, hp, wp = _grid_dims(video, tubelet)
    vis, svb, svn, n_out = _visible_args(visible, video, tp * hp * wp)
    k = 3 * t * p * p
    m = b * n_out
    args = (video, scale, shift, vis, out, *video.stride(), svb, svn, m, n_out, hp, wp)
    consts = {"T_SZ": t, "P": p, "HAS_VIS": visible is not None, "ROW_OK": row_gather_ok(video),
              "P_PAD": triton.next_power_of_2(p), "ROW_PAD": triton.next_power_of_2(3 * p)}

    def grid(meta):
        if meta["ROW_GATHER"]:
            return triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(t * p, meta["ROWS"])
        return triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(k, meta["BLOCK_K"])

    return grid, args, consts


def fold_normalization(weight: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor,
                       shift: torch.Tensor, tubelet: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """`W' = W · scale[c]` in channels-last feature order `[D, (dt, dh, dw, c)]`, `b' = b + W · shift[c]`.

    Both fp32; `weight` is `[D, 3·t·p·p]` in Conv3d order. Not differentiable (the backward works on W).
    """
    t, p, _ = tubelet
    w = weight.detach().float().reshape(weight.shape[0], 3, t, p, p)
    folded = (w * scale.view(1, 3, 1, 1, 1)).permute(0, 2, 3, 4, 1).reshape(weight.shape[0], -1)
    b = torch.einsum("dcxyz,c->d", w, shift)
    if bias is not None:
        b = b + bias.detach().float()
    return folded, b


def patch_embed(video: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                pos_embed: torch.Tensor | None, visible: torch.Tensor | None, scale: torch.Tensor,
                shift: torch.Tensor, tubelet: tuple[int, int, int], out_dtype: torch.dtype) -> torch.Tensor:
    """Patch embeddings `[B, N_out, D]` straight from uint8 (forward only; see `PatchEmbedFunction`)."""
    t, p, _ = tubelet
    b = video.shape[0]
    d = weight.shape[0]
    tp, hp, wp = _grid_dims(video, tubelet)
    vis, svb, svn, n_out = _visible_args(visible, video, tp * hp * wp)
    m = b * n_out
    out = new_output(shape=(b, n_out, d), dtype=out_dtype, device=video.device)
    if m == 0:
        return out
    w_folded, b_folded = fold_normalization(weight, bias, scale, shift, tubelet)
    # raw pixel values 0..255 are exact in fp16/bf16, so the tensor cores see the data losslessly
    w_folded = w_folded.to(out_dtype)
    if pos_embed is not None:
        pos = pos_embed.reshape(-1, d)
        spn, spd = pos.stride()
    else:
        pos, spn, spd = b_folded, 0, 0
    s = video.stride()
    args = (video, w_folded, b_folded, pos, vis, out, *s, w_folded.stride(0), w_folded.stride(1), spn, spd,
            svb, svn, m, n_out, hp, wp, d)
    consts = {"T_SZ": t, "P": p, "ROW_CONTIG": row_gather_ok(video), "HAS_POS": pos_embed is not None,
              "HAS_VIS": visible is not None, "DOT_PRECISION": dot_precision(out_dtype)}
    launch(EMBED, lambda meta: (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(d, meta["BLOCK_N"]),), args, consts,
           itemsize=w_folded.element_size(), device=video.device)
    return out


class PatchEmbedFunction(torch.autograd.Function):
    """Fused patch embedding, differentiable in the weight, the bias and the position embedding.

    The backward never sees the folded weight: with X the normalized tokens (re-gathered from the uint8
    video by the unfused kernel, so nothing but the video is saved), dW = dYᵀ X, db = Σ dY and the
    position embedding gets dY summed over the batch at the tubelets that were visible.
    """

    @staticmethod
    def forward(ctx, video, weight, bias, pos_embed, visible, scale, shift, tubelet,  # type: ignore[override]
                out_dtype):
        out = patch_embed(video, weight, bias, pos_embed, visible, scale, shift, tubelet, out_dtype)
        ctx.save_for_backward(video, weight, bias, pos_embed, visible, scale, shift)
        ctx.tubelet = tubelet
        return out

    @staticmethod
    def backward(ctx, dout):  # type: ignore[override]
        video, weight, bias, pos_embed, visible, scale, shift = ctx.saved_tensors
        d = weight.shape[0]
        dw = db = dpos = None
        flat = dout.reshape(-1, d)
        if ctx.needs_input_grad[1]:
            compute = dout.dtype if dout.dtype in (torch.float16, torch.bfloat16) else torch.float32
            x = patchify_tokens(video, ctx.tubelet, scale, shift, visible, compute)
            dw = torch.mm(flat.t().to(compute), x.reshape(-1, x.shape[-1])).to(weight.dtype).view_as(weight)
        if bias is not None and ctx.needs_input_grad[2]:
            db = flat.float().sum(0).to(bias.dtype)
        if pos_embed is not None and ctx.needs_input_grad[3]:
            acc = torch.zeros((pos_embed.reshape(-1, d).shape[0], d), dtype=torch.float32, device=dout.device)
            if visible is None:
                acc += dout.float().sum(0)
            else:
                idx = visible.reshape(-1) if visible.dim() == 2 else visible.repeat(dout.shape[0])
                acc.index_add_(0, idx.long(), flat.float())
            dpos = acc.to(pos_embed.dtype).view_as(pos_embed)
        return None, dw, db, dpos, None, None, None, None, None
