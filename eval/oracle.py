"""The oracle of BabyWorld's suites: a responder that answers from the rendered truth (truth.json, the
per-frame status of permanence movies), never from the answer key. It shows what the stimuli make
answerable: a suite whose oracle is not near 100% is broken, not hard."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["oracle"]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the truth the oracle answers from ({e})") from e


def _possible(movie: Path) -> bool:
    """A permanence movie is possible when the toy is seen in both lifts of the screen, or in neither."""
    runs, cur = [], None
    for frame in _json(movie / "status.json")["frames"]:
        lifted = frame["occluders"][0]["lifted"]
        seen = any(o["track"] == 0 and o["visibility"] > 0.5 for o in frame["objects"])
        if lifted:
            cur = bool(cur) or seen
        elif cur is not None:
            runs.append(cur)
            cur = None
    return len(runs) == 2 and len(set(runs)) == 1


def oracle(probes: str | Path, name: str) -> Callable[[Any], Any]:
    """The truth-reading responder for suite `name` of a BabyWorld probe folder (answers -1 where the
    truth leaves the trial ambiguous, which `score` counts as wrong)."""
    root = Path(probes) / name
    if name == "permanence":
        def respond_movies(q: Any) -> list[float]:
            quad = root / "O1" / q.trial_id.split("/")[1]
            return [1.0 if _possible(quad / m) else 0.0 for m in q.choices]
        return respond_movies
    truth = _json(root / "truth.json")
    width = int(_json(Path(probes) / "probes.json")["width"])
    trials = {f"{name}/{t['trial_num']}": t for t in _json(root / "trials.json")["data"]}

    def visible(frame: str, word: Any = None) -> list[dict]:
        return [o for o in truth[frame]["objects"] if o["visibility"] >= 0.5 and (word is None or o["word"] == word)]

    def respond(q: Any) -> Any:
        t = trials[q.trial_id]
        if name in ("object_recognition", "word_referent"):
            hits = [k for k, f in enumerate(t["options"]) if visible(f, q.query)]
            return hits[0] if len(hits) == 1 else -1
        if name == "counting":
            return q.choices.index(len(visible(t["image"])))
        if name == "left_right":
            named = visible(t["image"], q.query)
            if len(named) != 1:
                return -1
            box = named[0]["box"]
            return q.choices.index("left" if (box[0] + box[2]) / 2 < width / 2 else "right")
        face = truth[t["image"]]["faces"][0]
        looked_at = [o for o in truth[t["image"]]["objects"] if o["track"] == face["gaze_track"]]
        return q.choices.index(tuple(looked_at[0]["box"])) if len(looked_at) == 1 else -1

    return respond
