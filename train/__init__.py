"""Training: video ViT models, objectives (VideoMAE), the config-driven loop, checkpoints, metrics.

    from babyfast.train import load_config, train, load_encoder
    result = train(load_config("configs/videomae_tiny_cpu.yaml", ["data.store=demo/store", "train.out=runs/a"]))
    encoder, cfg = load_encoder("runs/a")
    records = read_metrics("runs/a")         # one dict per log interval: loss, tokens/s, MFU, stall, ...

Names load on first use (torch, yaml and tensorboard are imported only then).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoint import load_encoder, load_objective
    from .config import Config, ConfigError, load_config
    from .loop import NonFiniteLoss, ResumeError, TrainResult, train
    from .metrics import read_metrics
    from .models import VideoViT, create_model, list_models, register_model
    from .objectives import create_objective, list_objectives, register_objective
    from .plot import plot_run
    from .vocab import Vocabulary, build_vocabulary

_LAZY = {
    "Config": "config", "ConfigError": "config", "load_config": "config",
    "train": "loop", "TrainResult": "loop", "NonFiniteLoss": "loop", "ResumeError": "loop",
    "load_encoder": "checkpoint", "load_objective": "checkpoint",
    "Vocabulary": "vocab", "build_vocabulary": "vocab",
    "create_model": "models", "list_models": "models", "register_model": "models", "VideoViT": "models",
    "create_objective": "objectives", "list_objectives": "objectives", "register_objective": "objectives",
    "plot_run": "plot", "read_metrics": "metrics",
}

__all__ = ["Config", "ConfigError", "NonFiniteLoss", "ResumeError", "TrainResult", "VideoViT", "Vocabulary",
           "build_vocabulary", "create_model", "create_objective", "list_models", "list_objectives", "load_config",
           "load_encoder", "load_objective", "plot_run", "read_metrics", "register_model", "register_objective",
           "train"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"babyfast.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'babyfast.train' has no attribute {name!r}")
