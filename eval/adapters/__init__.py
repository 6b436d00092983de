"""Readers of the real benchmarks users hold on disk, each into the `Suite` the protocols score:
Labeled-S (``labeled_s``), BabyVLM's Visual Two-Word Test (``two_word``), ModelVsBaby
(``model_vs_baby``) and the IntPhys dev set (``intphys``). Each module's docstring, and the README's
"Real benchmarks" section, give the layout it expects; missing or malformed data is a `ValueError`
that names the file or folder and what is wrong.

>>> from babyfast.eval.adapters import ADAPTERS
>>> suite = ADAPTERS["intphys"]("/data/intphys/dev")  # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..suites import Suite
from . import intphys, labeled_s, model_vs_baby, two_word

__all__ = ["ADAPTERS"]

ADAPTERS: dict[str, Callable[[str | Path], Suite]] = {
    "labeled_s": labeled_s.load, "two_word": two_word.load, "model_vs_baby": model_vs_baby.load,
    "intphys": intphys.load,
}
