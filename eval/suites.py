"""Load probe suites back from their folders and score responders on them.

A responder is any callable taking a `Question` (what a participant sees: the query word, the choices,
the images or movies) and returning its answer: an index into `question.choices`, or for the
permanence suite one plausibility score per movie (higher: more possible). `score` compares answers
with the key and reports accuracy with a 95% Wilson interval, the chance level, and the interval a
chance responder would fall in 95% of the time.

The layouts are documented in `babyfast.synth.probes` (which only writes them); the adapters of the real
benchmarks (`babyfast.eval.adapters`) read theirs into the same `Suite`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from babyfast.synth.png import read_png
from babyfast.synth.probes import SUITES as _SUITES

from .stats import chance_interval, wilson_interval

__all__ = ["Trial", "Question", "Suite", "Score", "load_suite", "load_suites", "score", "judge"]


@dataclass(frozen=True)
class Trial:
    """One trial. `stimuli`: image paths, or for movies tuples of frame paths. `answer`: an index into
    `choices` (permanence: the indices of the possible movies). `labels`: what each stimulus shows, where
    the suite says it (the category of each frame of a 4-way trial), for probes trained on a split of the
    suite. `group`: a condition to report separately (ModelVsBaby's image conditions, IntPhys blocks)."""

    id: str
    query: str | None
    choices: tuple
    stimuli: tuple
    answer: Any
    labels: tuple | None = None
    group: str | None = None


@dataclass(frozen=True)
class Question:
    """What a responder is shown: no answer, no file names. `stimuli` are (H, W, 3) uint8 images or
    (T, H, W, 3) uint8 movies, decoded when first asked for."""

    suite: str
    trial_id: str
    query: str | None
    choices: tuple
    _load: Callable[[], list] = field(repr=False, compare=False)

    @cached_property
    def stimuli(self) -> list:
        return self._load()


@dataclass
class Suite:
    """A loaded probe suite: its trials and how they are judged ("choice" or "relative")."""

    name: str
    root: Path
    trials: list[Trial]
    judge: str

    def __len__(self) -> int:
        return len(self.trials)

    @property
    def chance(self) -> float:
        if self.judge == "relative":
            return 0.5
        return float(np.mean([1.0 / len(t.choices) for t in self.trials]))

    def question(self, i: int) -> Question:
        """The question of trial i, with its images decoded."""
        t = self.trials[i]
        paths = t.stimuli  # the loader sees the files only, never the trial and its answer

        def load() -> list:
            return [np.stack([_image(p) for p in s]) if isinstance(s, tuple) else _image(s) for s in paths]

        return Question(self.name, t.id, t.query, t.choices, load)


@lru_cache(maxsize=1024)
def _image(path: str) -> np.ndarray:
    img = read_png(path)
    img.setflags(write=False)
    return img


def read_json(path: Path, what: str) -> Any:
    """A JSON file of a probe suite or benchmark; ValueError naming the file and `what` it should be."""
    if not path.is_file():
        raise ValueError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read {what} ({e})") from e


def load_suite(path: str | Path, name: str | None = None) -> Suite:
    """Load a suite from its folder (`OUT/counting`), or from the probe folder and a suite name."""
    root = Path(path) / name if name else Path(path)
    if (root / "O1").is_dir():
        return _load_permanence(root)
    tj = root / "trials.json"
    if not tj.is_file():
        raise ValueError(f"{root}: not a probe suite folder (no trials.json or O1/); suites: {list(_SUITES)}")
    doc = read_json(tj, "probe file")
    kind = doc.get("suite")
    data = doc.get("data")
    if kind not in _SUITES or not isinstance(data, list):
        raise ValueError(f"{tj}: suite {kind!r} with {type(data).__name__} data; expected one of {list(_SUITES)}")
    trials = []
    for d in data:
        tid = f"{kind}/{d['trial_num']}"
        if kind in ("object_recognition", "word_referent"):
            opts = tuple(str(root / o) for o in d["options"])
            answer = d["options"].index(d["target_img_filename"])
            labels = None
            if kind == "object_recognition":
                shown = dict(zip(d["foil_img_filenames"], d["foil_categories"], strict=False))
                shown[d["target_img_filename"]] = d["target_category"]
                labels = tuple(shown[o] for o in d["options"])
            trials.append(Trial(tid, d["target_category"], tuple(range(len(opts))), opts, answer, labels))
        elif kind == "counting":
            choices = tuple(doc["choices"])
            trials.append(Trial(tid, None, choices, (str(root / d["image"]),), choices.index(d["answer"])))
        elif kind == "left_right":
            choices = tuple(doc["choices"])
            trials.append(Trial(tid, d["word"], choices, (str(root / d["image"]),), choices.index(d["answer"])))
        else:  # gaze
            cands = tuple(tuple(b) for b in d["candidates"])
            trials.append(Trial(tid, None, cands, (str(root / d["image"]),), int(d["answer"])))
    return Suite(kind, root, trials, "choice")


def _load_permanence(root: Path) -> Suite:
    trials = []
    for qdir in sorted(p for p in (root / "O1").iterdir() if p.is_dir()):
        movies, possible = [], []
        numbers = sorted((p for p in qdir.iterdir() if p.is_dir()), key=lambda p: int(p.name))
        if len(numbers) != 4:
            raise ValueError(f"{qdir}: a quadruplet needs 4 movies, found {[p.name for p in numbers]}")
        for k, mdir in enumerate(numbers):
            frames = tuple(str(p) for p in sorted((mdir / "scene").glob("scene_*.png")))
            if not frames:
                raise ValueError(f"{mdir}/scene: no scene_*.png frames")
            movies.append(frames)
            if read_json(mdir / "status.json", "probe file").get("possible"):
                possible.append(k)
        if len(possible) != 2:
            raise ValueError(f"{qdir}: {len(possible)} movies marked possible; a quadruplet has 2")
        trials.append(Trial(f"permanence/{qdir.name}", None, tuple(p.name for p in numbers), tuple(movies),
                            tuple(possible)))
    return Suite("permanence", root, trials, "relative")


def load_suites(path: str | Path) -> dict[str, Suite]:
    """All suites present under a probe folder, by name."""
    root = Path(path)
    return {n: load_suite(root / n) for n in _SUITES if (root / n).is_dir()}


@dataclass(frozen=True)
class Score:
    """Accuracy of a responder on a suite, with its 95% interval and where chance lies."""

    suite: str
    n: int
    correct: float
    accuracy: float
    ci: tuple[float, float]
    chance: float
    chance_range: tuple[float, float]

    @property
    def above_chance(self) -> bool:
        """Whether the accuracy is beyond what a chance responder reaches 97.5% of the time."""
        return self.accuracy > self.chance_range[1]


def judge(suite: Suite, trial: Trial, answer: Any) -> float:
    """The score of one answer to one trial: 1 or 0 (relative judging: 0.5 for a tie)."""
    if suite.judge == "relative":
        s = np.asarray(answer, dtype=np.float64).reshape(-1)
        if s.shape != (len(trial.choices),) or not np.isfinite(s).all():
            raise ValueError(f"{trial.id}: the responder must return {len(trial.choices)} finite scores, "
                             f"got {answer!r}")
        pos = s[list(trial.answer)].sum()
        neg = s.sum() - pos
        return 1.0 if pos > neg else 0.5 if pos == neg else 0.0
    try:
        k = int(answer)
    except (TypeError, ValueError):
        k = -1
    if not 0 <= k < len(trial.choices) or k != answer:
        raise ValueError(f"{trial.id}: the responder returned {answer!r}; "
                         f"allowed: an index 0..{len(trial.choices) - 1}")
    return 1.0 if k == trial.answer else 0.0


def score(suite: Suite, responder: Callable[[Question], Any], trials: Sequence[int] | None = None) -> Score:
    """Run `responder` on the suite's trials (all, or the given indices) and score it."""
    idx = range(len(suite)) if trials is None else trials
    correct = sum(judge(suite, suite.trials[i], responder(suite.question(i))) for i in idx)
    n = len(idx)
    chance = suite.chance
    return Score(suite.name, n, correct, correct / max(n, 1), wilson_interval(correct, n), chance,
                 chance_interval(chance, n))
