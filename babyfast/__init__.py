"""babyfast: pretrain video foundation models on what a baby sees, with one GPU.

The store (`babyfast.store`), the synthetic world (`babyfast.synth`) and the clip loader live here;
kernels, training and evaluation are `babyfast.kernels`, `babyfast.train`, `babyfast.eval`.
`import babyfast` stays light: torch is imported only when the loader is first used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load on first use
    from babyfast.loader.augment import Augment
    from babyfast.loader.batch import ClipBatch
    from babyfast.loader.clip_loader import ClipLoader
    from babyfast.loader.plan import ClipPlan

__version__ = "0.1.0"

__all__ = ["Augment", "ClipBatch", "ClipLoader", "ClipPlan", "__version__"]

_LAZY = {
    "ClipBatch": "babyfast.loader.batch",
    "ClipLoader": "babyfast.loader.clip_loader",
    "Augment": "babyfast.loader.augment",
    "ClipPlan": "babyfast.loader.plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'babyfast' has no attribute {name!r}")
