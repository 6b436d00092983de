"""AdamW with VideoMAE's parameter groups, and the learning-rate schedule (warm-up, then cosine)."""
from __future__ import annotations

import math
from collections.abc import Set as AbstractSet

import torch
import torch.nn as nn

from .config import OptimConfig

__all__ = ["param_groups", "build_optimizer", "learning_rate"]


def param_groups(module: nn.Module, weight_decay: float, no_decay: AbstractSet[str] = frozenset()) -> list[dict]:
    """Two groups: decayed weights, and norms, biases, position embeddings and the names in `no_decay`
    (e.g. mask tokens) without weight decay."""
    decay, plain = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        short = name.rsplit(".", 1)[-1]
        if p.ndim <= 1 or "pos_embed" in name or short in no_decay or name in no_decay:
            plain.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def build_optimizer(module: nn.Module, cfg: OptimConfig, device: torch.device,
                    no_decay: AbstractSet[str] = frozenset()) -> torch.optim.AdamW:
    """AdamW (fused on CUDA: one kernel for all parameters)."""
    groups = param_groups(module, cfg.weight_decay, no_decay)
    betas: tuple[float, float] = tuple(cfg.betas)  # pyright: ignore[reportAssignmentType]  # 2 by the config
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps,
                             fused=device.type == "cuda")


def learning_rate(step: int, total_steps: int, cfg: OptimConfig, global_batch: int) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up over `warmup_steps`, then a half
    cosine from the peak to `min_lr` at `total_steps`. With `scale_lr` both scale by global batch / 256."""
    scale = global_batch / 256.0 if cfg.scale_lr else 1.0
    peak, floor = cfg.lr * scale, cfg.min_lr * scale
    if step < cfg.warmup_steps:
        return peak * (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
