"""What every objective gives the loop: a loss from a batch, and its size (tokens, FLOPs) for the logs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.nn as nn

__all__ = ["Objective", "ObjectiveOutput", "register_objective", "create_objective", "list_objectives",
           "objective_class"]


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor                                      # scalar, float32: the value reported
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # scalar tensors, logged beside the loss
    # what the loop differentiates, if not `loss` (a loss over negatives gathered from every rank is
    # scaled by the world size, so that DDP's average of the ranks' gradients is its whole gradient)
    backward: torch.Tensor | None = None

    @property
    def to_differentiate(self) -> torch.Tensor:
        return self.loss if self.backward is None else self.backward


class Objective(nn.Module):
    """An objective owns the encoder it trains (`self.encoder`) and whatever heads it needs.

    `forward(batch, step, offset, total)` returns an `ObjectiveOutput`; `offset`/`total` place this
    micro-batch's samples inside the global batch of the step, so that anything random per sample (masks)
    is the same however the batch is split over ranks and micro-batches.
    """

    name = ""
    encoder: nn.Module
    # config sections passed as keyword arguments of the same names, for objectives built from others
    # (the section named like the objective is always passed, its fields as keyword arguments)
    extra_sections: tuple[str, ...] = ()
    needs_vocabulary = False  # built with `vocabulary=` (a babyfast.train.vocab.Vocabulary)

    def inputs(self, batch: Any, loader: Any) -> dict[str, Any]:
        """The forward's `batch` from a loader's ClipBatch (on the CPU, before the step): the video by default;
        objectives that need text tokenize it here."""
        return {"video": batch.video}

    def forward(self, batch: dict[str, Any], step: int, offset: int = 0,  # type: ignore[override]
                total: int | None = None) -> ObjectiveOutput:
        raise NotImplementedError

    def tokens_per_clip(self, clip_shape: tuple[int, int, int]) -> tuple[int, int]:
        """(input tubelets, tubelets the encoder computes) for a clip of (T, H, W)."""
        raise NotImplementedError

    def flops_per_clip(self, clip_shape: tuple[int, int, int]) -> float:
        """Forward matmul FLOPs for one clip of (T, H, W) (see `babyfast.train.flops`)."""
        raise NotImplementedError

    def no_weight_decay(self) -> set[str]:
        """Names of parameters besides norms and biases that take no weight decay."""
        return set()


_OBJECTIVES: dict[str, type[Objective]] = {}
T = TypeVar("T", bound=type[Objective])


def register_objective(name: str) -> Callable[[T], T]:
    """Register an `Objective` subclass under `name`; the config section of the same name holds its
    keyword arguments."""
    def deco(cls: T) -> T:
        if name in _OBJECTIVES and _OBJECTIVES[name] is not cls:
            raise ValueError(f"register_objective: {name!r} is already registered ({_OBJECTIVES[name].__name__})")
        cls.name = name
        _OBJECTIVES[name] = cls
        return cls
    return deco


def list_objectives() -> list[str]:
    _load_builtin()
    return sorted(_OBJECTIVES)


def objective_class(name: str) -> type[Objective]:
    _load_builtin()
    if name not in _OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; registered: {', '.join(sorted(_OBJECTIVES))}")
    return _OBJECTIVES[name]


def create_objective(name: str, encoder: nn.Module, **kwargs: Any) -> Objective:
    try:
        cls = objective_class(name)
    except ValueError as e:
        raise ValueError(f"create_objective: {e}") from None
    return cls(encoder, **kwargs)


def _load_builtin() -> None:
    from . import contrastive, videomae  # noqa: F401
