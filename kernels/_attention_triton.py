"""Flash attention forward and backward in Triton.

Layout: tensors are addressed through their strides as `[B, H, N, D]`, so the `[B, N, H, D]` layout that
a fused QKV projection yields is read in place (the caller passes `x.transpose(1, 2)`, a view).

Numerics: scores are scaled by `softmax_scale * log2(e)` once, so every exponential is an `exp2`; the
row statistics (running max `m`, running sum `l`) are fp32 and the saved log-sum-exp is in base 2.
Rows that see no key (causal rows beyond a fully padded prefix, batches whose keys are all padded) have
`l == 0`: their output is written as 0 and their log-sum-exp as +inf, so that the backward's
`exp2(s - lse)` is exactly 0 for them and their gradients vanish without any NaN.

Masks cost only where they are needed: the key loop runs the interior blocks without bound or causal
checks and handles the boundary / diagonal blocks in a second loop (the key-padding mask, when given,
applies everywhere).

Block sizes are autotuned per (sequence-length bucket, head dim, causal, mask, dtype) on the first call;
`BABYFAST_AUTOTUNE=0` skips that and uses one default config per kernel (quick start, e.g. in tests). Configs
that cannot fit in the device's shared memory (estimated from the element size and the head dim) are
pruned before tuning and never used as the default (`_runtime.launch`).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._runtime import (
    SUPPORTED_HEAD_DIMS,
    KernelSpec,
    dot_precision,
    fix_interpreter_scalars,
    forced_configs,
    interpreting,
    launch,
    new_output,
    prune_to_fit,
    record_kernel_mode,
    run_plain,
)

__all__ = ["flash_attention", "FlashAttentionFunction", "SUPPORTED_HEAD_DIMS", "forced_configs"]

LOG2E = 1.4426950408889634


# ----------------------------------------------------------------------------------------------------
# shared helpers (inlined by Triton)


@triton.jit
def _load_tile(base, offs_rows, offs_d, stride_row, stride_d, n_rows,
               HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, MASK_ROWS: tl.constexpr):
    """Load a [rows, BLOCK_D] tile; bounds are checked only where rows or the head dim can overflow."""
    ptrs = base + offs_rows[:, None] * stride_row + offs_d[None, :] * stride_d
    if MASK_ROWS:
        if BLOCK_D == HEAD_DIM:
            tile = tl.load(ptrs, mask=offs_rows[:, None] < n_rows, other=0.0)
        else:
            tile = tl.load(ptrs, mask=(offs_rows[:, None] < n_rows) & (offs_d[None, :] < HEAD_DIM), other=0.0)
    else:
        if BLOCK_D == HEAD_DIM:
            tile = tl.load(ptrs)
        else:
            tile = tl.load(ptrs, mask=offs_d[None, :] < HEAD_DIM, other=0.0)
    return tile


@triton.jit
def _load_keep(kpm_base, offs_n, stride_kpm_n, N_K):
    """Key-padding mask for a block of keys (True = attend); keys past the end count as padded."""
    keep = tl.load(kpm_base + offs_n * stride_kpm_n, mask=offs_n < N_K, other=0)
    return keep != 0


# ----------------------------------------------------------------------------------------------------
# forward


@triton.jit
def _fwd_block(acc, l_i, m_i, q, k_base, v_base, kpm_base, start_n, offs_m, offs_d,
               stride_kn, stride_kd, stride_vn, stride_vd, stride_kpm_n, N_K, qk_scale,
               HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
               MASK_N: tl.constexpr, MASK_CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr,
               DOT_PRECISION: tl.constexpr):
    offs_n = start_n + tl.arange(0, BLOCK_N)
    k = _load_tile(k_base, offs_n, offs_d, stride_kn, stride_kd, N_K, HEAD_DIM, BLOCK_D, MASK_N)
    qk = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
    if MASK_N or MASK_CAUSAL or HAS_KPM:
        keep = tl.full([BLOCK_N], 1, tl.int1)[None, :]
        if MASK_N:
            keep = keep & (offs_n[None, :] < N_K)
        if MASK_CAUSAL:
            keep = keep & (offs_n[None, :] <= offs_m[:, None])
        if HAS_KPM:
            keep = keep & _load_keep(kpm_base, offs_n, stride_kpm_n, N_K)[None, :]
        qk = tl.where(keep, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        # a row with no visible key yet keeps m = -inf; subtracting 0 instead avoids (-inf) - (-inf)
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        m_use = m_new
    p = tl.math.exp2(qk - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    v = _load_tile(v_base, offs_n, offs_d, stride_vn, stride_vd, N_K, HEAD_DIM, BLOCK_D, MASK_N)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc, input_precision=DOT_PRECISION)
    return acc, l_i, m_new


@triton.jit
def _attn_fwd_kernel(Q, K, V, O, LSE, KPM,
                     stride_qb, stride_qh, stride_qn, stride_qd,
                     stride_kb, stride_kh, stride_kn, stride_kd,
                     stride_vb, stride_vh, stride_vn, stride_vd,
                     stride_ob, stride_oh, stride_on, stride_od,
                     stride_kpm_b, stride_kpm_n,
                     H, N_Q, N_K, N_BUCKET, qk_scale,
                     HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr,
                     HAS_KPM: tl.constexpr, DOT_PRECISION: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q_base = Q + b * stride_qb + h * stride_qh
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    kpm_base = KPM + b * stride_kpm_b

    q = _load_tile(q_base, offs_m, offs_d, stride_qn, stride_qd, N_Q, HEAD_DIM, BLOCK_D, True)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)

    if CAUSAL:
        # query i sees keys j <= i (top-left aligned, as SDPA's is_causal): every key below start_m is
        # visible to the whole block, so only [full_hi, start_m + BLOCK_M) needs the causal mask
        hi = tl.minimum(start_m + BLOCK_M, N_K)
        full_hi = (tl.minimum(start_m, N_K) // BLOCK_N) * BLOCK_N
    else:
        hi = N_K
        full_hi = (N_K // BLOCK_N) * BLOCK_N
    for start_n in range(0, full_hi, BLOCK_N):
        acc, l_i, m_i = _fwd_block(acc, l_i, m_i, q, k_base, v_base, kpm_base, start_n, offs_m, offs_d,
                                   stride_kn, stride_kd, stride_vn, stride_vd, stride_kpm_n, N_K, qk_scale,
                                   HEAD_DIM, BLOCK_D, BLOCK_N, False, False, HAS_KPM, DOT_PRECISION)
    for start_n in range(full_hi, hi, BLOCK_N):
        acc, l_i, m_i = _fwd_block(acc, l_i, m_i, q, k_base, v_base, kpm_base, start_n, offs_m, offs_d,
                                   stride_kn, stride_kd, stride_vn, stride_vd, stride_kpm_n, N_K, qk_scale,
                                   HEAD_DIM, BLOCK_D, BLOCK_N, True, CAUSAL, HAS_KPM, DOT_PRECISION)

    empty = l_i == 0.0
    out = acc / tl.where(empty, 1.0, l_i)[:, None]
    lse = tl.where(empty, float("inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i)))
    tl.store(LSE + pid_bh.to(tl.int64) * N_Q + offs_m, lse, mask=offs_m < N_Q)
    o_ptrs = O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :] * stride_od
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=(offs_m[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM))


# ----------------------------------------------------------------------------------------------------
# backward


@triton.jit
def _bwd_delta_kernel(O, DO, DELTA,
                      stride_ob, stride_oh, stride_on, stride_od,
                      stride_dob, stride_doh, stride_don, stride_dod,
                      H, N_Q,
                      HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
    """delta_i = sum_d dO_id * O_id, the row term of the softmax backward."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    o = _load_tile(O + b * stride_ob + h * stride_oh, offs_m, offs_d, stride_on, stride_od, N_Q,
                   HEAD_DIM, BLOCK_D, True)
    do = _load_tile(DO + b * stride_dob + h * stride_doh, offs_m, offs_d, stride_don, stride_dod, N_Q,
                    HEAD_DIM, BLOCK_D, True)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(DELTA + pid_bh.to(tl.int64) * N_Q + offs_m, delta, mask=offs_m < N_Q)


@triton.jit
def _bwd_dkdv_block(dk, dv, k, v, keep_n, q_base, do_base, lse_base, delta_base, start_m, offs_n, offs_d,
                    stride_qn, stride_qd, stride_don, stride_dod, N_Q, qk_scale,
                    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
                    MASK_M: tl.constexpr, MASK_CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr,
                    DOT_PRECISION: tl.constexpr):
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = _load_tile(q_base, offs_m, offs_d, stride_qn, stride_qd, N_Q, HEAD_DIM, BLOCK_D, MASK_M)
    do = _load_tile(do_base, offs_m, offs_d, stride_don, stride_dod, N_Q, HEAD_DIM, BLOCK_D, MASK_M)
    if MASK_M:
        # rows past the end get lse = +inf, hence p = 0: they add nothing, with no extra mask
        lse = tl.load(lse_base + offs_m, mask=offs_m < N_Q, other=float("inf"))
        delta = tl.load(delta_base + offs_m, mask=offs_m < N_Q, other=0.0)
    else:
        lse = tl.load(lse_base + offs_m)
        delta = tl.load(delta_base + offs_m)
    # transposed scores [BLOCK_N, BLOCK_M] so that dk, dv accumulate without transposing the accumulators
    s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale
    p_t = tl.math.exp2(s_t - lse[None, :])
    if MASK_CAUSAL:
        p_t = tl.where(offs_m[None, :] >= offs_n[:, None], p_t, 0.0)
    if HAS_KPM:
        p_t = tl.where(keep_n[:, None], p_t, 0.0)
    dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=DOT_PRECISION)
    dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)
    ds_t = p_t * (dp_t - delta[None, :])
    dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=DOT_PRECISION)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv_kernel(Q, K, V, DO, DK, DV, LSE, DELTA, KPM,
                          stride_qb, stride_qh, stride_qn, stride_qd,
                          stride_kb, stride_kh, stride_kn, stride_kd,
                          stride_vb, stride_vh, stride_vn, stride_vd,
                          stride_dob, stride_doh, stride_don, stride_dod,
                          stride_dkb, stride_dkh, stride_dkn, stride_dkd,
                          stride_dvb, stride_dvh, stride_dvn, stride_dvd,
                          stride_kpm_b, stride_kpm_n,
                          H, N_Q, N_K, N_BUCKET, qk_scale, sm_scale,
                          HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr,
                          HAS_KPM: tl.constexpr, DOT_PRECISION: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """One program owns a block of keys and walks the queries that can see it."""
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    start_n = pid_n * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_base = Q + b * stride_qb + h * stride_qh
    do_base = DO + b * stride_dob + h * stride_doh
    lse_base = LSE + pid_bh.to(tl.int64) * N_Q
    delta_base = DELTA + pid_bh.to(tl.int64) * N_Q
    # keys past the end are loaded as 0; their rows of dk, dv are never stored, so they need no mask
    k = _load_tile(K + b * stride_kb + h * stride_kh, offs_n, offs_d, stride_kn, stride_kd, N_K,
                   HEAD_DIM, BLOCK_D, True)
    v = _load_tile(V + b * stride_vb + h * stride_vh, offs_n, offs_d, stride_vn, stride_vd, N_K,
                   HEAD_DIM, BLOCK_D, True)
    if HAS_KPM:
        keep_n = _load_keep(KPM + b * stride_kpm_b, offs_n, stride_kpm_n, N_K)
    else:
        keep_n = offs_n < N_K
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)

    full_m = (N_Q // BLOCK_M) * BLOCK_M
    if CAUSAL:
        # query blocks before `lo` see none of these keys; blocks from `diag_end` on see all of them
        lo = (start_n // BLOCK_M) * BLOCK_M
        diag_end = tl.cdiv(start_n + BLOCK_N - 1, BLOCK_M) * BLOCK_M
        for start_m in range(lo, tl.minimum(diag_end, N_Q), BLOCK_M):
            dk, dv = _bwd_dkdv_block(dk, dv, k, v, keep_n, q_base, do_base, lse_base, delta_base, start_m,
                                     offs_n, offs_d, stride_qn, stride_qd, stride_don, stride_dod, N_Q,
                                     qk_scale, HEAD_DIM, BLOCK_D, BLOCK_M, True, True, HAS_KPM,
                                     DOT_PRECISION)
    else:
        diag_end = 0
    for start_m in range(diag_end, full_m, BLOCK_M):
        dk, dv = _bwd_dkdv_block(dk, dv, k, v, keep_n, q_base, do_base, lse_base, delta_base, start_m,
                                 offs_n, offs_d, stride_qn, stride_qd, stride_don, stride_dod, N_Q,
                                 qk_scale, HEAD_DIM, BLOCK_D, BLOCK_M, False, False, HAS_KPM, DOT_PRECISION)
    for start_m in range(tl.maximum(diag_end, full_m), N_Q, BLOCK_M):
        dk, dv = _bwd_dkdv_block(dk, dv, k, v, keep_n, q_base, do_base, lse_base, delta_base, start_m,
                                 offs_n, offs_d, stride_qn, stride_qd, stride_don, stride_dod, N_Q,
                                 qk_scale, HEAD_DIM, BLOCK_D, BLOCK_M, True, False, HAS_KPM, DOT_PRECISION)

    dk = dk * sm_scale
    store_mask = (offs_n[:, None] < N_K) & (offs_d[None, :] < HEAD_DIM)
    dk_ptrs = DK + b * stride_dkb + h * stride_dkh + offs_n[:, None] * stride_dkn + offs_d[None, :] * stride_dkd
    dv_ptrs = DV + b * stride_dvb + h * stride_dvh + offs_n[:, None] * stride_dvn + offs_d[None, :] * stride_dvd
    tl.store(dk_ptrs, dk.to(DK.dtype.element_ty), mask=store_mask)
    tl.store(dv_ptrs, dv.to(DV.dtype.element_ty), mask=store_mask)


@triton.jit
def _bwd_dq_block(dq, q, do, lse, delta, k_base, v_base, kpm_base, start_n, offs_m, offs_d,
                  stride_kn, stride_kd, stride_vn, stride_vd, stride_kpm_n, N_K, qk_scale,
                  HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
                  MASK_N: tl.constexpr, MASK_CAUSAL: tl.constexpr, HAS_KPM: tl.constexpr,
                  DOT_PRECISION: tl.constexpr):
    offs_n = start_n + tl.arange(0, BLOCK_N)
    k = _load_tile(k_base, offs_n, offs_d, stride_kn, stride_kd, N_K, HEAD_DIM, BLOCK_D, MASK_N)
    v = _load_tile(v_base, offs_n, offs_d, stride_vn, stride_vd, N_K, HEAD_DIM, BLOCK_D, MASK_N)
    s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
    p = tl.math.exp2(s - lse[:, None])
    if MASK_N or MASK_CAUSAL or HAS_KPM:
        keep = tl.full([BLOCK_N], 1, tl.int1)[None, :]
        if MASK_N:
            keep = keep & (offs_n[None, :] < N_K)
        if MASK_CAUSAL:
            keep = keep & (offs_n[None, :] <= offs_m[:, None])
        if HAS_KPM:
            keep = keep & _load_keep(kpm_base, offs_n, stride_kpm_n, N_K)[None, :]
        p = tl.where(keep, p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
    ds = p * (dp - delta[:, None])
    dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=DOT_PRECISION)
    return dq


@triton.jit
def _attn_bwd_dq_kernel(Q, K, V, DO, DQ, LSE, DELTA, KPM,
                        stride_qb, stride_qh, stride_qn, stride_qd,
                        stride_kb, stride_kh, stride_kn, stride_kd,
                        stride_vb, stride_vh, stride_vn, stride_vd,
                        stride_dob, stride_doh, stride_don, stride_dod,
                        stride_dqb, stride_dqh, stride_dqn, stride_dqd,
                        stride_kpm_b, stride_kpm_n,
                        H, N_Q, N_K, N_BUCKET, qk_scale, sm_scale,
                        HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr,
                        HAS_KPM: tl.constexpr, DOT_PRECISION: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """One program owns a block of queries and walks the keys it sees (no atomics: dq has one writer)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    kpm_base = KPM + b * stride_kpm_b
    q = _load_tile(Q + b * stride_qb + h * stride_qh, offs_m, offs_d, stride_qn, stride_qd, N_Q,
                   HEAD_DIM, BLOCK_D, True)
    do = _load_tile(DO + b * stride_dob + h * stride_doh, offs_m, offs_d, stride_don, stride_dod, N_Q,
                    HEAD_DIM, BLOCK_D, True)
    lse = tl.load(LSE + pid_bh.to(tl.int64) * N_Q + offs_m, mask=offs_m < N_Q, other=float("inf"))
    delta = tl.load(DELTA + pid_bh.to(tl.int64) * N_Q + offs_m, mask=offs_m < N_Q, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)

    if CAUSAL:
        hi = tl.minimum(start_m + BLOCK_M, N_K)
        full_hi = (tl.minimum(start_m, N_K) // BLOCK_N) * BLOCK_N
    else:
        hi = N_K
        full_hi = (N_K // BLOCK_N) * BLOCK_N
    for start_n in range(0, full_hi, BLOCK_N):
        dq = _bwd_dq_block(dq, q, do, lse, delta, k_base, v_base, kpm_base, start_n, offs_m, offs_d,
                           stride_kn, stride_kd, stride_vn, stride_vd, stride_kpm_n, N_K, qk_scale,
                           HEAD_DIM, BLOCK_D, BLOCK_N, False, False, HAS_KPM, DOT_PRECISION)
    for start_n in range(full_hi, hi, BLOCK_N):
        dq = _bwd_dq_block(dq, q, do, lse, delta, k_base, v_base, kpm_base, start_n, offs_m, offs_d,
                           stride_kn, stride_kd, stride_vn, stride_vd, stride_kpm_n, N_K, qk_scale,
                           HEAD_DIM, BLOCK_D, BLOCK_N, True, CAUSAL, HAS_KPM, DOT_PRECISION)

    dq = dq * sm_scale
    dq_ptrs = DQ + b * stride_dqb + h * stride_dqh + offs_m[:, None] * stride_dqn + offs_d[None, :] * stride_dqd
    tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=(offs_m[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM))


# ----------------------------------------------------------------------------------------------------
# block sizes: autotuned on the GPU, fixed (and deliberately unequal, to exercise the block logic) on the
# interpreter, which cannot time anything

# whether Triton made these kernels interpreted functions (TRITON_INTERPRET at import): `interpreting()`
record_kernel_mode(_attn_fwd_kernel)


def _n_bucket(n: int) -> int:
    """Autotune key for a sequence length: the next power of two, so nearby lengths share a tuning."""
    return 1 << max(4, (max(n, 1) - 1).bit_length())


def _prune_by_length(rows_arg: str, rows_meta: str):
    def prune(configs, named_args, **kwargs):
        n = named_args[rows_arg]
        # a block much longer than the sequence only computes padding
        fit = [c for c in configs if c.kwargs[rows_meta] <= max(64, _n_bucket(n))]
        return fit or configs[:1]
    return prune


def _shared_memory(kernel: str):
    """Estimated shared memory of a config: the tiles streamed through the key/query loop, one buffer per
    pipeline stage, plus the tiles a program keeps for its whole life (all [rows, BLOCK_D] wide). fp32
    inputs take the FMA path (no tensor cores), whose dot operands pass the [BLOCK_M, BLOCK_N] score tile
    through shared memory to change layout: up to 4 bytes per score on top.

    An upper bound of Triton 3.6's allocation (up to `_runtime`'s 1 KiB margin) for every config and
    `compile_check` profile on sm_90 and sm_80 (`tests/test_kernel_compile.py`); bf16/fp16 on sm_90 need
    the tiles exactly, on sm_80 less."""

    def estimate(config, consts: dict, itemsize: int) -> int:
        bm, bn = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"]
        if kernel == "fwd":  # streams K, V; keeps Q
            streamed, kept = 2 * bn, bm
        elif kernel == "dq":  # streams K, V; keeps Q, dO
            streamed, kept = 2 * bn, 2 * bm
        else:  # dkdv: streams Q, dO; keeps K, V
            streamed, kept = 2 * bm, 2 * bn
        scores = 4 * bm * bn if itemsize == 4 else 0
        return itemsize * consts["BLOCK_D"] * (max(1, config.num_stages) * streamed + kept) + scores

    return estimate


def _cfg(bm: int, bn: int, warps: int, stages: int) -> triton.Config:
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=warps, num_stages=stages)


# Hopper: 128-row query blocks with 8 warps keep two warpgroups busy on wgmma; 64-key blocks fit 3-4
# pipeline stages in shared memory at head dim 128.
_FWD_CONFIGS = [
    _cfg(128, 64, 8, 3), _cfg(128, 64, 4, 3), _cfg(128, 128, 8, 2), _cfg(128, 128, 8, 3),
    _cfg(128, 32, 4, 4), _cfg(64, 64, 4, 3), _cfg(64, 64, 4, 4), _cfg(64, 32, 4, 4), _cfg(64, 128, 4, 2),
]
_DKDV_CONFIGS = [
    _cfg(32, 128, 8, 2), _cfg(64, 128, 8, 2), _cfg(32, 64, 4, 3), _cfg(64, 64, 4, 3), _cfg(64, 64, 8, 2),
    _cfg(32, 128, 4, 3), _cfg(16, 64, 4, 4),
]
_DQ_CONFIGS = [
    _cfg(128, 32, 8, 2), _cfg(128, 64, 8, 2), _cfg(64, 64, 4, 3), _cfg(64, 32, 4, 3), _cfg(128, 32, 4, 3),
    _cfg(64, 128, 4, 2),
]
# last resorts, never tuned where the lists above fit: small blocks for fp32 at head dim 128 on GPUs with
# ~100 KB of shared memory (sm_86 / sm_89), where nothing above fits
_LAST_RESORT = {"fwd": _cfg(32, 32, 4, 2), "dkdv": _cfg(16, 32, 4, 2), "dq": _cfg(16, 32, 4, 2)}
_KEY = ["N_BUCKET", "HEAD_DIM", "CAUSAL", "HAS_KPM"]

# fixed blocks for the interpreter: unequal M and N so the causal diagonal spans several key blocks
INTERPRET_BLOCKS = {"fwd": (32, 16), "dkdv": (16, 32), "dq": (16, 32)}


def _spec(name: str, raw, configs, rows_arg: str, rows_meta: str) -> KernelSpec:
    estimate = _shared_memory(name)
    last = [_LAST_RESORT[name]]
    configs = configs + last
    tuned = triton.autotune(configs, key=_KEY, prune_configs_by={"early_config_prune": prune_to_fit(
        estimate, "Q", then=_prune_by_length(rows_arg, rows_meta), last_resort=last)})(raw)
    bm, bn = INTERPRET_BLOCKS[name]
    return KernelSpec(name, raw, tuned, configs, configs[0], {"BLOCK_M": bm, "BLOCK_N": bn}, estimate)


_FWD = _spec("fwd", _attn_fwd_kernel, _FWD_CONFIGS, "N_Q", "BLOCK_M")
_DKDV = _spec("dkdv", _attn_bwd_dkdv_kernel, _DKDV_CONFIGS, "N_K", "BLOCK_N")
_DQ = _spec("dq", _attn_bwd_dq_kernel, _DQ_CONFIGS, "N_Q", "BLOCK_M")
SPECS = {"fwd": _FWD, "dkdv": _DKDV, "dq": _DQ}
# the autotuners, by the names bench/kernels.py reads their `best_config` from
_fwd_tuned, _dkdv_tuned, _dq_tuned = _FWD.tuned, _DKDV.tuned, _DQ.tuned


def _launch(spec: KernelSpec, grid_rows: int, grid_bh: int, args: tuple, consts: dict, q: torch.Tensor) -> None:
    row_meta = "BLOCK_N" if spec.name == "dkdv" else "BLOCK_M"
    launch(spec, lambda meta: (triton.cdiv(grid_rows, meta[row_meta]), grid_bh), args, consts,
           itemsize=q.element_size(), device=q.device)


# ----------------------------------------------------------------------------------------------------
# host side


def _strides4(t: torch.Tensor) -> tuple[int, int, int, int]:
    return tuple(t.stride())  # type: ignore[return-value]


def _alloc_like(x: torch.Tensor) -> torch.Tensor:
    """A dense tensor of x's shape in x's layout: [B, N, H, D] memory when x's heads lie inside its tokens
    (a transposed view, or slices of a fused QKV projection), else [B, H, N, D]."""
    b, h, n, d = x.shape
    if x.stride(1) < x.stride(2):
        return new_output(shape=(b, n, h, d), dtype=x.dtype, device=x.device).transpose(1, 2)
    return new_output(shape=(b, h, n, d), dtype=x.dtype, device=x.device)


def _kpm_args(kpm: torch.Tensor | None, like: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    if kpm is None:
        return like, 0, 0
    return kpm, kpm.stride(0), kpm.stride(1)


def _consts(q: torch.Tensor, causal: bool, has_kpm: bool) -> dict:
    d = q.shape[-1]
    return {
        "HEAD_DIM": d,
        "BLOCK_D": max(16, triton.next_power_of_2(d)),
        "CAUSAL": causal,
        "HAS_KPM": has_kpm,
        "DOT_PRECISION": dot_precision(q.dtype),
    }


def _forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kpm: torch.Tensor | None, causal: bool,
             sm_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    b, h, n_q, _ = q.shape
    n_k = k.shape[2]
    o = _alloc_like(q)  # a [B, N, H, D] input gives a dense [B, N, H, D] output
    lse = new_output(shape=(b * h, n_q), dtype=torch.float32, device=q.device)
    kpm_t, skb, skn = _kpm_args(kpm, q)
    args = (q, k, v, o, lse, kpm_t, *_strides4(q), *_strides4(k), *_strides4(v), *_strides4(o), skb, skn,
            h, n_q, n_k, _n_bucket(max(n_q, n_k)), sm_scale * LOG2E)
    _launch(_FWD, n_q, b * h, args, _consts(q, causal, kpm is not None), q)
    return o, lse


def _backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
              lse: torch.Tensor, kpm: torch.Tensor | None, causal: bool, sm_scale: float
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, h, n_q, d = q.shape
    n_k = k.shape[2]
    consts = _consts(q, causal, kpm is not None)
    delta = new_output(like=lse)
    block = 16 if interpreting() else 64
    fix_interpreter_scalars()
    run_plain(_bwd_delta_kernel, (triton.cdiv(n_q, block), b * h),
              (o, do, delta, *_strides4(o), *_strides4(do), h, n_q),
              {"HEAD_DIM": d, "BLOCK_D": consts["BLOCK_D"], "BLOCK_M": block})
    dq, dk, dv = _alloc_like(q), _alloc_like(k), _alloc_like(v)
    kpm_t, skb, skn = _kpm_args(kpm, q)
    common = (*_strides4(q), *_strides4(k), *_strides4(v), *_strides4(do))
    tail = (skb, skn, h, n_q, n_k, _n_bucket(max(n_q, n_k)), sm_scale * LOG2E, sm_scale)
    _launch(_DKDV, n_k, b * h,
            (q, k, v, do, dk, dv, lse, delta, kpm_t, *common, *_strides4(dk), *_strides4(dv), *tail), consts, q)
    _launch(_DQ, n_q, b * h, (q, k, v, do, dq, lse, delta, kpm_t, *common, *_strides4(dq), *tail), consts, q)
    return dq, dk, dv


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd wrapper: saves q, k, v, the output and the base-2 log-sum-exp for the backward."""

    @staticmethod
    def forward(ctx, q, k, v, kpm, causal, sm_scale):  # type: ignore[override]
        o, lse = _forward(q, k, v, kpm, causal, sm_scale)
        ctx.save_for_backward(q, k, v, o, lse, kpm)
        ctx.causal = causal
        ctx.sm_scale = sm_scale
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, o, lse, kpm = ctx.saved_tensors
        if do.stride(-1) != 1:
            do = do.contiguous()
        dq, dk, dv = _backward(do, q, k, v, o, lse, kpm, ctx.causal, ctx.sm_scale)
        return dq, dk, dv, None, None, None


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kpm: torch.Tensor | None) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"flash_attention: q, k, v must be 4-d, got shapes {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.device == k.device == v.device) or (kpm is not None and kpm.device != q.device):
        raise ValueError(f"flash_attention: tensors on different devices: q {q.device}, k {k.device}, v {v.device}"
                         + (f", key_padding_mask {kpm.device}" if kpm is not None else ""))
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"flash_attention: q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"flash_attention: dtype {q.dtype} not supported; use float16, bfloat16 or float32")
    b, h, _, d = q.shape
    if k.shape[:2] != (b, h) or v.shape[:2] != (b, h) or k.shape[2] != v.shape[2]:
        raise ValueError(f"flash_attention: shapes do not match: q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)} (as [B, H, N, D])")
    if k.shape[3] != d or v.shape[3] != d:
        raise ValueError(f"flash_attention: head dims differ: q {d}, k {k.shape[3]}, v {v.shape[3]}")
    if d not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"flash_attention: head dim {d} not supported; allowed: {SUPPORTED_HEAD_DIMS}")
    if kpm is not None and (kpm.dtype != torch.bool or tuple(kpm.shape) != (b, k.shape[2])):
        raise ValueError(f"flash_attention: key_padding_mask must be bool [B, N_k] = [{b}, {k.shape[2]}], "
                         f"got {kpm.dtype} {tuple(kpm.shape)}")


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                    softmax_scale: float | None = None) -> torch.Tensor:
    """Triton flash attention on `[B, H, N, D]`-indexed tensors (any strides; the output has q's layout).

    `key_padding_mask`: bool `[B, N_k]`, True = attend. `causal`: query i sees keys j <= i (top-left
    aligned, like SDPA's `is_causal`). Rows that see no key output 0 and get zero gradients.

    Example::

        q, k, v = (torch.randn(2, 6, 197, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        out = flash_attention(q, k, v)            # [2, 6, 197, 64]
    """
    _check(q, k, v, key_padding_mask)
    sm_scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    kpm = key_padding_mask.view(torch.uint8) if key_padding_mask is not None else None
    return FlashAttentionFunction.apply(q, k, v, kpm, bool(causal), float(sm_scale))
