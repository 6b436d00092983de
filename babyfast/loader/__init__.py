"""The clip loader: planning (C++), reading and decoding, augmentation, and `ClipLoader` itself.

Names load on first use, so that `babyfast.loader.plan` does not pull in torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load on first use
    from .augment import Augment
    from .batch import ClipBatch
    from .clip_loader import ClipLoader
    from .plan import DEFAULT_WINDOW, ORDERS, ClipPlan

__all__ = ["Augment", "ClipBatch", "ClipLoader", "ClipPlan", "ORDERS", "DEFAULT_WINDOW"]

_LAZY = {"Augment": "augment", "ClipBatch": "batch", "ClipLoader": "clip_loader", "ClipPlan": "plan",
         "ORDERS": "plan", "DEFAULT_WINDOW": "plan"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"babyfast.loader.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'babyfast.loader' has no attribute {name!r}")
