"""Milestone evaluation: probe suites (BabyWorld's and real benchmarks' through adapters), frozen-encoder
protocols, honest statistics with controls, the report card and the developmental trajectory of a run.

Names load on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stats import bootstrap_interval, chance_interval, paired_bootstrap, wilson_interval
    from .suites import Question, Score, Suite, Trial, load_suite, load_suites, score

_LAZY = {
    "Question": "suites", "Score": "suites", "Suite": "suites", "Trial": "suites", "load_suite": "suites",
    "load_suites": "suites", "score": "suites",
    "wilson_interval": "stats", "chance_interval": "stats", "bootstrap_interval": "stats",
    "paired_bootstrap": "stats",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"babyfast.eval.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'babyfast.eval' has no attribute {name!r}")
