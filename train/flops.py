"""FLOPs counted from the model's shape, for MFU. Matmuls only (2 FLOPs per multiply-add); norms,
softmax, GELU and the optimizer are left out, as in the usual MFU convention (PaLM, appendix B).

Forward FLOPs of one transformer block of width d over n tokens, MLP ratio r:

    qkv 6·n·d²  +  output projection 2·n·d²  +  MLP 4·r·n·d²  +  scores q·kᵀ 2·n²·d  +  weighted sum 2·n²·d

A training step costs 3x the forward (the backward computes gradients of activations and of weights,
each as many FLOPs as the forward).

VideoMAE, per clip with N tubelets of K = 3·t·p·p pixels, N_v visible and N_m = N - N_v masked, encoder
width D, decoder width D_d:

    patch embedding 2·N_v·K·D  +  encoder blocks on N_v tokens  +  encoder→decoder 2·N_v·D·D_d
    +  decoder blocks on N tokens  +  head 2·N_m·D_d·K
"""
from __future__ import annotations

__all__ = ["block_flops", "linear_flops", "TRAIN_FLOPS_PER_FORWARD"]

TRAIN_FLOPS_PER_FORWARD = 3.0


def linear_flops(tokens: int, fan_in: int, fan_out: int) -> float:
    return 2.0 * tokens * fan_in * fan_out


def block_flops(tokens: int, dim: int, mlp_ratio: float = 4.0) -> float:
    """Forward matmul FLOPs of one pre-norm transformer block over `tokens` tokens of width `dim`."""
    n, d = float(tokens), float(dim)
    return (6 + 2 + 4 * mlp_ratio) * n * d * d + 4 * n * n * d
