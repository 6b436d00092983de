"""A registry of model constructors in timm's manner: `@register_model`, `create_model`, `list_models`."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

__all__ = ["register_model", "create_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Register a constructor under its function name; `create_model(name, **overrides)` calls it."""
    name = fn.__name__
    if name in _MODELS and _MODELS[name] is not fn:
        raise ValueError(f"register_model: a model named {name!r} is already registered "
                         f"({_MODELS[name].__module__}.{name})")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    _load_builtin()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model; keyword overrides replace the size's defaults (e.g. `depth=2`).

    Example::

        model = create_model("vit_small", drop_path=0.1)
    """
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(f"create_model: unknown model {name!r}; registered: {', '.join(list_models())}")
    return _MODELS[name](**overrides)


def _load_builtin() -> None:
    from . import vit  # noqa: F401  (its @register_model calls fill the registry)
