"""Frozen-encoder protocols: each scores one model on one suite, trial by trial.

- Linear probe: features standardized on the probe's training split, logistic regression whose
  regularization is chosen by cross-validation on that split only (scikit-learn); the trials are split in
  half by a seed, the same for every model, and only the other half is scored. For object categories
  (the category of each frame; a 4-way trial picks the frame most likely to show the target), counts,
  left/right (a word classifier on each half of the image; the side more likely to show the named toy)
  and gaze (ridge regression of the looked-at toy's position; the nearest candidate).
- k-shot prototypes (self-supervised models): the mean feature of k labelled frames per category, drawn
  from the training split (for word–referent trials: from the object-recognition frames); a trial picks
  the frame closest (cosine) to the query's prototype. k in {1, 5, 10}.
- Contrastive choice: the query word's text embedding against each frame's clip embedding (cosine).
- Violation of expectation (VideoMAE models): a movie's surprise is its largest prediction error of
  frames from the frames before them; possible movies must be less surprising than impossible ones
  (IntPhys's relative judging over quadruplets).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .features import EvalModel
from .suites import Suite, judge

__all__ = ["TrialScores", "split", "PROTOCOLS", "protocols_for", "unscored_reason", "KSHOTS"]

log = logging.getLogger(__name__)

KSHOTS = (1, 5, 10)
_CS = np.logspace(-3, 2, 6)


@dataclass
class TrialScores:
    """Per-trial scores (1 right, 0 wrong, 0.5 a tie under relative judging) of one model."""

    suite: str
    protocol: str
    trial_ids: list[str]
    scores: np.ndarray
    chance: float
    judge: str


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) trial indices: a seeded half each, the same for every model."""
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return np.sort(order[:n // 2]), np.sort(order[n // 2:])


def frame_folds(suite: Suite, seed: int) -> dict[str, int]:
    """Fold 0 or 1 of every distinct labelled frame of `suite`: a seeded half of each label's frames.

    Trials share frames (a frame is a distractor in one trial and the target of another), so a split of
    the trials would train a probe on frames it is then scored on. Split by frame instead, and score each
    frame with what was fitted on the other fold."""
    by_label: dict[str, list[str]] = {}
    seen: set[str] = set()
    for t in suite.trials:
        if t.labels is None:
            raise ValueError(f"{suite.name}: trial {t.id} has no labels to train on")
        for key, label in zip(t.stimuli, t.labels, strict=True):
            if str(key) not in seen:
                seen.add(str(key))
                by_label.setdefault(label, []).append(str(key))
    rng = np.random.default_rng([seed, 0xF01D])
    folds: dict[str, int] = {}
    for label in sorted(by_label):
        keys = sorted(by_label[label])
        for j, o in enumerate(rng.permutation(len(keys))):
            folds[keys[o]] = j % 2
    return folds


def _fold_frames(model: EvalModel, suite: Suite, folds: dict[str, int]
                 ) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, list[str]]]]:
    """The features of every distinct frame (by key), each decoded once, and (features, labels) of each
    fold's frames."""
    images: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for i, t in enumerate(suite.trials):
        if any(str(k) not in images for k in t.stimuli):
            for key, img, label in zip(t.stimuli, suite.question(i).stimuli, t.labels or (), strict=True):
                images.setdefault(str(key), img)
                labels.setdefault(str(key), label)
    keys = list(images)
    feats = dict(zip(keys, model.features([images[k] for k in keys], keys), strict=True))
    per_fold = []
    for f in (0, 1):
        mine = [k for k in keys if folds[k] == f]
        per_fold.append((np.stack([feats[k] for k in mine]), [labels[k] for k in mine]))
    return feats, per_fold


def _stimuli(suite: Suite, indices: Any) -> tuple[list[Any], list[str]]:
    images, keys = [], []
    for i in indices:
        images.extend(suite.question(int(i)).stimuli)
        keys.extend(str(s) for s in suite.trials[int(i)].stimuli)
    return images, keys


def _classifier(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """Standardize, then multinomial logistic regression with C chosen by stratified CV on (x, y)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, counts = np.unique(y, return_counts=True)
    folds = int(min(5, counts.min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the weakest C values
        if folds >= 2:
            # Cs takes an int or a list of C values (sklearn docs); the stub only says int
            model = LogisticRegressionCV(Cs=_CS, cv=folds, max_iter=2000,  # pyright: ignore[reportArgumentType]
                                         random_state=seed)
        else:  # a class with one example: no fold can hold it out; plain L2 at C = 1
            model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
        return make_pipeline(StandardScaler(), model).fit(x, y)


def _proba(clf: Any, x: np.ndarray, label: Any) -> np.ndarray:
    classes = list(clf.classes_)
    if label not in classes:
        return np.zeros(len(x))
    return clf.predict_proba(x)[:, classes.index(label)]


def _labels(suite: Suite, idx: np.ndarray) -> list[str]:
    """The per-stimulus labels of trials `idx`, in order (ValueError for a trial without labels)."""
    out: list[str] = []
    for i in idx:
        trial = suite.trials[i]
        if trial.labels is None:
            raise ValueError(f"{suite.name}: trial {trial.id} has no labels to train on")
        out.extend(trial.labels)
    return out


def _result(suite: Suite, protocol: str, test: np.ndarray, scores: list[float]) -> TrialScores:
    chance = float(np.mean([1.0 / len(suite.trials[i].choices) for i in test])) if suite.judge == "choice" else 0.5
    return TrialScores(suite.name, protocol, [suite.trials[i].id for i in test], np.asarray(scores, float), chance,
                       suite.judge)


# ------------------------------------------------------------------------------------ linear probes
def probe_categories(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
    """4-way trials with per-frame categories (object recognition, Labeled-S), cross-fitted by frame: a
    classifier per fold of frames (`frame_folds`), each frame of a trial scored by the other fold's. Every
    trial is scored; a trial whose named category one of those classifiers never saw counts as chance."""
    folds = frame_folds(suite, seed)
    feats, per_fold = _fold_frames(model, suite, folds)
    clfs = [_classifier(x, np.array(y), seed) for x, y in per_fold]
    test = np.arange(len(suite))
    scores = []
    for i in test:
        t = suite.trials[i]
        keys = [str(k) for k in t.stimuli]
        judges = [clfs[1 - folds[k]] for k in keys]
        if any(t.query not in list(c.classes_) for c in judges):
            scores.append(1.0 / len(t.choices))
            continue
        p = [float(_proba(c, feats[k][None], t.query)[0]) for k, c in zip(keys, judges, strict=True)]
        scores.append(float(int(np.argmax(p)) == t.answer))
    return _result(suite, "linear probe", test, scores)


def probe_classes(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
    """One image per trial, its answer the class (counting, ModelVsBaby)."""
    train, test = split(len(suite), seed)
    x = model.features(*_stimuli(suite, train))
    clf = _classifier(x, np.array([suite.trials[i].answer for i in train]), seed)
    pred = clf.predict(model.features(*_stimuli(suite, test)))
    return _result(suite, "linear probe", test,
                   [float(p == suite.trials[i].answer) for p, i in zip(pred, test, strict=True)])


def _halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = image.shape[1] // 2
    return image[:, :w], image[:, image.shape[1] - w:]


def probe_left_right(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
    """A classifier of which toy a half-image shows, trained on the named halves of the training trials;
    a test trial picks the half more likely to show the named toy."""
    train, test = split(len(suite), seed)
    crops, words = [], []
    for i in train:
        t = suite.trials[i]
        crops.append(_halves(suite.question(int(i)).stimuli[0])[t.answer])
        words.append(t.query)
    clf = _classifier(model.features(crops), np.array(words), seed)
    scores = []
    for i in test:
        t = suite.trials[i]
        p = _proba(clf, model.features(list(_halves(suite.question(int(i)).stimuli[0]))), t.query)
        scores.append(0.5 if p[0] == p[1] else float(int(np.argmax(p)) == t.answer))
    return _result(suite, "linear probe (halves)", test, scores)


def _centre(box: Any) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], dtype=np.float64)


def probe_gaze(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
    """Ridge regression (alpha by CV on the training split) of the looked-at toy's centre; a test trial
    picks the candidate nearest the prediction."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = split(len(suite), seed)
    y = np.stack([_centre(suite.trials[i].choices[suite.trials[i].answer]) for i in train])
    reg = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13))).fit(
        model.features(*_stimuli(suite, train)), y)
    pred = reg.predict(model.features(*_stimuli(suite, test)))
    scores = []
    for p, i in zip(pred, test, strict=True):
        t = suite.trials[i]
        dist = [np.linalg.norm(_centre(c) - p) for c in t.choices]
        scores.append(float(int(np.argmin(dist)) == t.answer))
    return _result(suite, "linear probe (target position)", test, scores)


# -------------------------------------------------------------------------------------- prototypes
def _prototypes(feats: np.ndarray, labels: list[str], k: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, k, 0x9807])
    mean = feats.mean(0)
    out = {}
    for lab in sorted(set(labels)):
        idx = [j for j, x in enumerate(labels) if x == lab]
        pick = rng.choice(idx, size=min(k, len(idx)), replace=False)
        v = (feats[pick] - mean).mean(0)
        out[lab] = v / (np.linalg.norm(v) + 1e-12)
    out["__mean__"] = mean
    return out


def _similarity(protos: dict[str, np.ndarray], feat: np.ndarray, query: str | None) -> float | None:
    """Cosine of a frame's centred features with the query's prototype (None: no prototype for it)."""
    if query is None or query not in protos:
        return None
    x = feat - protos["__mean__"]
    return float(x @ protos[query] / (np.linalg.norm(x) + 1e-12))


def prototypes(k: int, source: Callable[[], Suite] | None = None) -> Callable[[EvalModel, Suite, int], TrialScores]:
    """The k-shot prototype protocol: prototypes from the suite's own labelled frames, cross-fitted by
    frame as in `probe_categories`, or from all frames of `source()` (for suites without labels)."""
    def run(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
        test = np.arange(len(suite))
        if source is None:
            folds = frame_folds(suite, seed)
            feats, per_fold = _fold_frames(model, suite, folds)
            fold_protos = [_prototypes(x, y, k, seed) for x, y in per_fold]
        else:
            lab_suite = source()
            lab_idx = np.arange(len(lab_suite))
            imgs, keys = _stimuli(lab_suite, lab_idx)
            protos = _prototypes(model.features(imgs, keys), _labels(lab_suite, lab_idx), k, seed)
        scores = []
        for i in test:
            t = suite.trials[i]
            if source is None:
                sims = [_similarity(fold_protos[1 - folds[str(key)]], feats[str(key)], t.query) for key in t.stimuli]
            else:
                x = model.features(*_stimuli(suite, [i]))
                sims = [_similarity(protos, x[j], t.query) for j in range(len(x))]
            known = [v for v in sims if v is not None]
            if len(known) < len(sims):  # a frame's prototypes lack the named category: chance
                scores.append(1.0 / len(t.choices))
            else:
                scores.append(float(int(np.argmax(known)) == t.answer))
        return _result(suite, f"prototypes k={k}", test, scores)
    return run


# ------------------------------------------------------------------------------- contrastive, VoE
def contrastive_choice(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
    """The query's text embedding against each frame's clip embedding; all trials are scored. A trial with
    no query and one image (the Visual Two-Word Test) is the other way round: each choice is a phrase,
    and the phrase whose text embedding is closest to the image's clip embedding is picked."""
    test = np.arange(len(suite))
    queried = [int(i) for i in test if suite.trials[i].query is not None]
    queries = [q for i in queried if (q := suite.trials[i].query) is not None]  # all of them: queried has a query
    words = dict(zip(queried, model.text_embeddings(queries), strict=False)) if queried else {}
    scores = []
    for i in test:
        t = suite.trials[i]
        frames = model.video_embeddings(suite.question(int(i)).stimuli)
        if t.query is None:
            pick = int(np.argmax(model.text_embeddings(list(t.choices)) @ frames[0]))
        else:
            pick = int(np.argmax(frames @ words[int(i)]))
        scores.append(float(pick == t.answer))
    return _result(suite, "contrastive choice", test, scores)


def surprise(model: EvalModel, suite: Suite, seed: int) -> TrialScores:
    """Violation of expectation: plausibility = minus the largest prediction error along each movie."""
    test = np.arange(len(suite))
    scores = []
    for i in test:
        movies = suite.question(int(i)).stimuli
        plausibility = [-float(model.prediction_error(m).max()) for m in movies]
        scores.append(judge(suite, suite.trials[i], plausibility))
    return _result(suite, "VoE surprise", test, scores)


PROTOCOLS: dict[str, Callable[[EvalModel, Suite, int], TrialScores]] = {
    "probe_categories": probe_categories, "probe_classes": probe_classes, "probe_left_right": probe_left_right,
    "probe_gaze": probe_gaze, "contrastive_choice": contrastive_choice, "surprise": surprise,
}


def unscored_reason(suite: str, model: EvalModel, labelled: Callable[[], Suite] | None = None) -> str | None:
    """Why no protocol scores `suite` for this model (None when one does): the report says so rather than
    leave the milestone out without a word."""
    if protocols_for(suite, model, labelled):
        return None
    if suite == "two_word":
        return "needs a text encoder (a contrastive model); this model has none"
    if suite in ("permanence", "intphys"):
        return "needs a frame predictor (VideoMAE's decoder) to measure surprise; this model has none"
    if suite == "word_referent":
        return "needs a text encoder (a contrastive model) or object_recognition's labelled images for prototypes"
    return f"no protocol for this model ({model.kind})"


def protocols_for(suite: str, model: EvalModel, labelled: Callable[[], Suite] | None = None
                  ) -> list[Callable[[EvalModel, Suite, int], TrialScores]]:
    """Which protocols score `suite` for this model (the first is the milestone's headline); an empty list
    when none applies (`unscored_reason` says why)."""
    con, mae = model.contrastive is not None, model.mae is not None
    shots = [prototypes(k) for k in KSHOTS]
    if suite in ("object_recognition", "labeled_s"):
        return [probe_categories, *([contrastive_choice] if con else []), *shots]
    if suite == "word_referent":
        return ([contrastive_choice] if con else []) + ([prototypes(k, labelled) for k in KSHOTS] if labelled else [])
    if suite == "two_word":
        return [contrastive_choice] if con else []
    if suite in ("counting", "model_vs_baby"):
        return [probe_classes]
    if suite == "left_right":
        return [probe_left_right]
    if suite == "gaze":
        return [probe_gaze]
    if suite in ("permanence", "intphys"):
        return [surprise] if mae else []
    raise ValueError(f"no protocol scores suite {suite!r}")
