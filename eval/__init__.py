"""Milestone evaluation: probe suites (BabyWorld's and real benchmarks' through adapters), frozen-encoder
protocols, honest statistics with controls, the report card and the developmental trajectory of a run.

    from babyfast.eval import evaluate, write_report, trajectory, write_trajectory
    evaluation = evaluate("runs/a", "probes")               # the run and its random-init control
    paths = write_report(evaluation, "runs/a/eval")         # report.json, report.md, report.png
    points = trajectory("runs/a", "probes")                 # every checkpoint of the run
    write_trajectory(points, "runs/a/eval")                 # trajectory.json, trajectory.png

Names load on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .features import EvalModel, load_model, random_init
    from .report import compare_runs, format_card, plot_card, read_report, write_report, write_trajectory
    from .run import Evaluation, Row, evaluate, trajectory
    from .stats import bootstrap_interval, chance_interval, paired_bootstrap, wilson_interval
    from .suites import Question, Score, Suite, Trial, load_suite, load_suites, score

_LAZY = {
    "Question": "suites", "Score": "suites", "Suite": "suites", "Trial": "suites", "load_suite": "suites",
    "load_suites": "suites", "score": "suites",
    "wilson_interval": "stats", "chance_interval": "stats", "bootstrap_interval": "stats",
    "paired_bootstrap": "stats",
    "evaluate": "run", "trajectory": "run", "Evaluation": "run", "Row": "run",
    "write_report": "report", "format_card": "report", "plot_card": "report", "read_report": "report",
    "compare_runs": "report", "write_trajectory": "report",
    "EvalModel": "features", "load_model": "features", "random_init": "features",
}

__all__ = ["EvalModel", "Evaluation", "Question", "Row", "Score", "Suite", "Trial", "bootstrap_interval",
           "chance_interval", "compare_runs", "evaluate", "format_card", "load_model", "load_suite", "load_suites",
           "paired_bootstrap", "plot_card", "random_init", "read_report", "score", "trajectory", "wilson_interval",
           "write_report", "write_trajectory"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"babyfast.eval.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'babyfast.eval' has no attribute {name!r}")
