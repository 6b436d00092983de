"""`evaluate`: score a run (or a checkpoint) and its controls on every suite, with honest statistics.

Every result says: accuracy, number of scored trials, chance, a 95% interval (Wilson for plain right/wrong
trials, a bootstrap over trials when ties count half), the same architecture with random weights scored
on the same trials (and any other control given, e.g. the shuffled-pairs model), the paired-bootstrap
difference to the random-init control, and for BabyWorld suites the oracle (the truth-reading responder)
on those trials. A milestone is *reached* only when the interval's lower bound is above chance and the
interval of the difference to the random-init control lies above zero.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .features import EvalModel, load_model, random_init
from .protocols import TrialScores, protocols_for, unscored_reason
from .stats import bootstrap_interval, paired_bootstrap, wilson_interval
from .suites import Suite, judge, load_suites

__all__ = ["Row", "Evaluation", "evaluate", "trajectory", "MILESTONES", "score_model"]

log = logging.getLogger(__name__)

MILESTONES = {"object_recognition": "object recognition", "word_referent": "word–referent",
              "permanence": "object permanence", "counting": "counting", "left_right": "left/right",
              "gaze": "gaze following", "labeled_s": "object recognition (Labeled-S)",
              "two_word": "word–referent (Visual Two-Word)", "model_vs_baby": "object recognition (ModelVsBaby)",
              "intphys": "object permanence (IntPhys)"}


@dataclass
class Row:
    """One milestone under one protocol."""

    suite: str
    milestone: str
    protocol: str
    n: int
    accuracy: float
    ci: tuple[float, float]
    chance: float
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    oracle: float | None = None
    reached: bool = False
    headline: bool = False
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # per condition (Trial.group), if any

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ci": list(self.ci)}


@dataclass
class Evaluation:
    model: dict[str, Any]
    rows: list[Row]
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "rows": [r.as_dict() for r in self.rows], "provenance": self.provenance}


def _interval(scores: np.ndarray, judge_: str) -> tuple[float, float]:
    if judge_ == "choice" or set(np.unique(scores)) <= {0.0, 1.0}:
        return wilson_interval(float(scores.sum()), len(scores))
    return bootstrap_interval(scores)


def _groups(suite: Suite, ts: TrialScores, controls: dict[str, TrialScores]) -> dict[str, dict[str, Any]]:
    """Accuracy per condition (ModelVsBaby's image conditions, IntPhys blocks) on the scored trials, with
    each control's accuracy on the same trials; empty when the suite has no groups."""
    group_of = {t.id: t.group for t in suite.trials}
    groups = np.array([group_of[tid] or "" for tid in ts.trial_ids], dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for g in sorted(set(groups) - {""}):
        mask = groups == g
        s = ts.scores[mask]
        out[g] = {"n": int(mask.sum()), "accuracy": float(s.mean()), "ci": list(_interval(s, ts.judge)),
                  "controls": {name: float(c.scores[mask].mean()) for name, c in controls.items()}}
    return out


def _oracle_accuracy(suite: Suite, probes: Path | None, trial_ids: list[str]) -> float | None:
    if probes is None or suite.name not in ("object_recognition", "word_referent", "permanence", "counting",
                                            "left_right", "gaze"):
        return None
    from .oracle import oracle

    respond = oracle(probes, suite.name)
    index = {t.id: i for i, t in enumerate(suite.trials)}
    scores = []
    for tid in trial_ids:
        answer = respond(suite.question(index[tid]))
        scores.append(0.0 if answer == -1 else judge(suite, suite.trials[index[tid]], answer))
    return float(np.mean(scores))


def _labelled(suites: dict[str, Suite]) -> Callable[[], Suite] | None:
    """Where suites without labels take labelled frames from (object recognition's), if it is there."""
    return (lambda: suites["object_recognition"]) if "object_recognition" in suites else None


def score_model(model: EvalModel, suites: dict[str, Suite], seed: int = 0,
                progress: Callable[[str], None] | None = None,
                headline_only: bool = False) -> dict[tuple[str, str], TrialScores]:
    """Per-trial scores of one model on every (suite, protocol) that applies to it."""
    labelled = _labelled(suites)
    out: dict[tuple[str, str], TrialScores] = {}
    for name, suite in suites.items():
        protocols = protocols_for(name, model, labelled)
        for protocol in protocols[:1] if headline_only else protocols:
            if progress:
                progress(f"{model.name}: {name}")
            ts = protocol(model, suite, seed)
            out[(name, ts.protocol)] = ts
    return out


def _rows(trained: dict[tuple[str, str], TrialScores], controls: dict[str, dict[tuple[str, str], TrialScores]],
          suites: dict[str, Suite], probes: Path | None) -> list[Row]:
    rows = []
    seen_suites: set[str] = set()
    for (name, protocol), ts in trained.items():
        acc = float(ts.scores.mean()) if len(ts.scores) else 0.0
        row = Row(name, MILESTONES.get(name, name), protocol, len(ts.scores), acc, _interval(ts.scores, ts.judge),
                  ts.chance, headline=name not in seen_suites)
        seen_suites.add(name)
        for cname, scored in controls.items():
            c = scored.get((name, protocol))
            if c is None:
                continue
            assert c.trial_ids == ts.trial_ids, "a control must be scored on the same trials"
            diff, diff_ci = paired_bootstrap(ts.scores, c.scores)
            row.controls[cname] = {"accuracy": float(c.scores.mean()), "ci": list(_interval(c.scores, c.judge)),
                                   "diff": diff, "diff_ci": list(diff_ci)}
        row.groups = _groups(suites[name], ts, {cname: scored[(name, protocol)] for cname, scored in controls.items()
                                                 if (name, protocol) in scored})
        row.oracle = _oracle_accuracy(suites[name], probes, ts.trial_ids)
        rnd = row.controls.get("random-init")
        row.reached = bool(row.ci[0] > row.chance and rnd is not None and rnd["diff_ci"][0] > 0)
        rows.append(row)
    return rows


def evaluate(path: str | os.PathLike[str], probes: str | os.PathLike[str] | None = None,
             extra: dict[str, Suite] | None = None, controls: dict[str, str | os.PathLike[str]] | None = None,
             device: str = "cpu", seed: int = 0, check_probes: bool = True, progress: bool = True,
             headline_only: bool = False, model: EvalModel | None = None, with_controls: bool = True) -> Evaluation:
    """Score the run or checkpoint `path` on the BabyWorld suites in `probes` and the `extra` suites (from
    the real-benchmark adapters), against the random-init control and the `controls` given (name: run).

    Raises `babyfast.eval.leakage.LeakageError` if a BabyWorld suite overlaps the run's training store.
    """
    from tqdm import tqdm

    model = model or load_model(path, device)
    suites: dict[str, Suite] = {}
    provenance: dict[str, Any] = {}
    probes_path = Path(probes) if probes is not None else None
    if probes_path is not None:
        if check_probes:
            from .leakage import check_leakage

            provenance["leakage_check"] = check_leakage(probes_path, model.cfg.data.store).as_dict()
        suites.update(load_suites(probes_path))
    suites.update(extra or {})
    if not suites:
        raise ValueError("evaluate: no suite to score (give probes= or extra suites)")
    unscored = {name: why for name in suites if (why := unscored_reason(name, model, _labelled(suites))) is not None}
    for name, why in unscored.items():
        log.warning("%s: suite %r is not scored: %s", model.name, name, why)
    provenance["unscored"] = unscored
    bar = tqdm(desc="eval", unit="part", disable=not progress)

    def tick(what: str) -> None:
        bar.set_postfix_str(what)
        bar.update(1)

    with torch.no_grad():
        trained = score_model(model, suites, seed, tick, headline_only)
        scored = {"random-init": score_model(random_init(model, seed), suites, seed, tick, headline_only)} \
            if with_controls else {}
        for name, other in (controls or {}).items():
            scored[name] = score_model(load_model(other, device, name), suites, seed, tick, headline_only)
    bar.close()
    info = {"path": model.path, "objective": model.kind, "model": model.cfg.model.name, "step": model.step,
            "seen": model.seen, "clip": [model.clip_len, model.size, model.size], "seed": seed,
            "controls": {"random-init": "the same architecture with random weights",
                         **{k: str(v) for k, v in (controls or {}).items()}}}
    return Evaluation(info, _rows(trained, scored, suites, probes_path), provenance)


def trajectory(path: str | os.PathLike[str], probes: str | os.PathLike[str] | None = None,
               extra: dict[str, Suite] | None = None, device: str = "cpu", seed: int = 0,
               progress: bool = True) -> list[dict[str, Any]]:
    """Headline scores of every checkpoint of a run (and of its architecture with random weights, as the
    point where nothing was seen yet), with what each had seen: clips, hours, the children's mean age."""
    from babyfast.train.checkpoint import list_checkpoints

    found = list_checkpoints(path)
    if not found:
        raise ValueError(f"{path}: no checkpoints to follow (a run folder with checkpoints/ckpt-*.pt)")
    points = []
    first = load_model(found[0][1], device)
    models = [random_init(first, seed)] + [first] + [load_model(p, device) for _, p in found[1:]]
    for i, model in enumerate(models):
        ev = evaluate(path, probes, extra, device=device, seed=seed, check_probes=i == 0, progress=progress,
                      headline_only=True, model=model, with_controls=False)
        s = model.seen
        age = s.get("age_sum", 0.0) / s["age_n"] if s.get("age_n") else None
        points.append({"step": model.step, "checkpoint": model.path,
                       "seen": {"clips": s.get("clips", 0), "hours": s.get("hours", 0.0), "age_days": age},
                       "rows": [r.as_dict() for r in ev.rows if r.headline]})
    return points
