"""Checkpoints that resume exactly, written atomically; `load_encoder` for evaluation and other code.

A checkpoint (`RUN/checkpoints/ckpt-<step>.pt`) holds the resolved config, the step, the model and the
optimizer (full state dicts, keyed by parameter name, so DDP and FSDP2 runs save the same thing), every
rank's loader state and RNG states (torch CPU and CUDA, numpy, Python), and what the run has seen so far.
It is written to a temporary name and renamed over the final one, so a full disk or a kill while saving
leaves the previous checkpoint as it was; only then are checkpoints beyond the newest `keep` removed.
Loading uses `torch.load(weights_only=True)`: a checkpoint cannot run code.
"""
from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from babyfast._atomic import atomic_open

from .config import Config, config_from_dict, config_to_dict

__all__ = ["CheckpointError", "checkpoint_dir", "checkpoint_path", "list_checkpoints", "latest_checkpoint",
           "save_checkpoint", "load_checkpoint", "prune_checkpoints", "rng_state", "set_rng_state",
           "load_encoder", "load_objective", "objective_from_state", "FORMAT"]

log = logging.getLogger(__name__)

FORMAT = 1
_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message names the file and the cause."""


def checkpoint_dir(run: str | os.PathLike[str]) -> Path:
    return Path(run) / "checkpoints"


def checkpoint_path(run: str | os.PathLike[str], step: int) -> Path:
    return checkpoint_dir(run) / f"ckpt-{step:08d}.pt"


def list_checkpoints(run: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint of a run, oldest first."""
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run: str | os.PathLike[str]) -> Path | None:
    found = list_checkpoints(run)
    return found[-1][1] if found else None


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically; on failure (full disk, read-only folder) the file at `path`
    and every other checkpoint are left as they were and a CheckpointError names the cause."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            torch.save(state, f)
    except (OSError, RuntimeError) as e:
        # torch's zip writer turns a failed write into a RuntimeError raised while closing; the OSError
        # that caused it is in the chain
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        reason = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(e)
        previous = [str(p) for _, p in list_checkpoints(path.parent.parent) if p != path]
        keep = f"; the newest earlier checkpoint, {previous[-1]}, is intact" if previous else ""
        raise CheckpointError(f"could not save checkpoint {path}: {reason}{keep}") from e
    return path


def prune_checkpoints(run: str | os.PathLike[str], keep: int) -> list[Path]:
    """Remove all but the newest `keep` checkpoints; returns what was removed."""
    found = list_checkpoints(run)
    removed = []
    for _, p in found[:max(0, len(found) - keep)]:
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's contents on the CPU (weights_only: tensors and plain containers)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"{path} holds no checkpoint (looked for {checkpoint_dir(path)}/ckpt-*.pt)")
        path = found
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"checkpoint {path} cannot be read: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT or "config" not in state:
        raise CheckpointError(f"{path} is not a babyfast checkpoint (format {FORMAT})")
    state["path"] = str(path)
    return state


# ------------------------------------------------------------------------------------------------ RNG
def rng_state() -> dict[str, Any]:
    """Every RNG this process draws from, as tensors and plain values (weights_only loads them)."""
    np_state: tuple[Any, ...] = np.random.get_state()  # pyright: ignore[reportAssignmentType]  # legacy: a tuple
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------- encoders
def load_encoder(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                 **overrides: Any) -> tuple[nn.Module, Config]:
    """The trained encoder of a run folder (its newest checkpoint) or a checkpoint file, in eval mode,
    with the run's config. `overrides` replace model arguments (e.g. `attention_backend="sdpa"`).

    Example::

        encoder, cfg = load_encoder("runs/demo")
        tokens = encoder(video_uint8)            # [B, N, D]; features: tokens.mean(1)
    """
    from .build import encoder_overrides
    from .models import create_model

    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"])
    encoder = create_model(cfg.model.name, **{**encoder_overrides(cfg), **overrides})
    prefix = "encoder."
    weights = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    missing, unexpected = encoder.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{state['path']}: encoder weights do not fit {cfg.model.name}: missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    return encoder.to(device).eval(), cfg


def load_objective(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """The whole trained objective of a run or checkpoint (encoder and heads: for a contrastive run the
    text tower and its vocabulary too, `objective.vocabulary`), in eval mode, with the run's config.

    Example::

        objective, cfg = load_objective("runs/contrastive")
        words = objective.embed_text(*objective.vocabulary.encode(["ball", "duck"]))
    """
    objective, cfg = objective_from_state(load_checkpoint(path))
    return objective.to(device).eval(), cfg


def objective_from_state(state: dict[str, Any]) -> tuple[nn.Module, Config]:
    """The objective a loaded checkpoint holds (on the CPU, in training mode), and its config."""
    from .build import build_objective, run_vocabulary

    cfg = config_from_dict(state["config"])
    objective = build_objective(cfg, run_vocabulary(cfg, state))
    objective.load_state_dict(state["model"])
    return objective, cfg


def config_differences(saved: dict[str, Any], cfg: Config, sections: tuple[str, ...]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys of `sections` whose saved value differs from `cfg`'s: {key: (saved, now)}."""
    now = config_to_dict(cfg)
    diff: dict[str, tuple[Any, Any]] = {}

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{key}.{k}" if key else k)
        elif a != b:
            diff[key] = (a, b)

    for s in sections:
        walk(saved.get(s), now.get(s), s)
    return diff
