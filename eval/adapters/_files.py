"""What the adapters share: reading a benchmark's index files, finding its images, saying clearly what is
missing. Every error is a `ValueError` that names the file or folder and what is wrong with it.

Images are not decoded here: `Suite.question` decodes them when a protocol asks, with
`babyfast.synth.png.read_png`, which goes through FFmpeg and so reads the JPEG and PNG files the real
benchmarks ship. Their size does not matter either: `babyfast.eval.features.as_clips` resizes every
stimulus to the model's input size.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def folder(path: str | Path, what: str) -> Path:
    """`path` as a folder that exists, or a clear error naming it."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{p}: {what} folder not found" if not p.exists() else f"{p}: not a folder ({what})")
    return p


def images_in(directory: Path) -> list[Path]:
    """The image files directly in `directory`, sorted by name (hidden files and anything else skipped)."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def subfolders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def natural_key(name: str) -> tuple:
    """Sort key that orders "scene_2" before "scene_10" and "9" before "10"."""
    return tuple(int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name))


def balanced_positions(n: int, k: int, seed: int) -> np.ndarray:
    """Where the answer goes in each of n trials of k options: every position equally often, in a seeded
    order. The published lists put the answer first; a protocol that breaks ties by taking the first
    option would then score a model that sees nothing as perfect."""
    return np.random.default_rng([seed, n, k]).permutation(np.arange(n) % k)


def text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def strings(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: {key!r} must be a non-empty list, got {value!r}")
    return [text(v, where, key) for v in value]


def require(mapping: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where}: expected an object with {list(keys)}, got {type(mapping).__name__}")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{where}: missing {missing} (has {sorted(mapping)})")


def nonempty(trials: Iterable, where: Path, what: str) -> list:
    out = list(trials)
    if not out:
        raise ValueError(f"{where}: no {what} found; nothing to score")
    return out
