"""Per-frame ground truth of a recording, written beside the corpus in a file training never reads.

`OUT/truth/<video id>.npz` holds structured arrays (one row per frame and thing) and a JSON header:

- `camera`: frame, cx, cy, zoom (world units, see `geometry`), gain_r, gain_g, gain_b (light), episode
- `toys`: frame, track, category, instance, x0, y0, x1, y1 (pixels, the toy's full extent clipped to the
  frame), visibility (fraction of the toy's pixels that show: 0 off screen or fully hidden), state
  (0 resting, 1 rolling, 2 falling, 3 held), holder (-1 none, 0 caregiver, 1 child), covered (under a
  blanket)
- `faces`: frame, track, x0, y0, x1, y1, visibility, gaze_track (toy track looked at; -1 the camera),
  gaze_bucket (screen direction of the gaze, 16 buckets from +x clockwise; -1 frontal), speaking
- `hands`: frame, track, owner (0 caregiver, 1 child), x0, y0, x1, y1, visibility, holding (track or -1)
- `occluders`: frame, track, kind (0 screen, 1 blanket), x0, y0, x1, y1, visibility, covering (toy
  track under a blanket, or -1)
- `meta` (a JSON string): video id, subject, child, recording index, age_days, seed, fps, width,
  height, frames, blur_sigma, maturity, the category words (index = category id), and `utterances`
  (start, end, text, word, referent_track, category, kind: "in_view" | "absent" | "none").

Track ids are unique within a recording (toys count from 0, faces from 10000, occluders from 20000,
hands from 30000); a new episode brings new toy tracks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from babyfast._atomic import atomic_open

from .vocab import CATEGORIES

if TYPE_CHECKING:  # annotations only: world imports this module
    from ._children import AgeModel
    from .world import RecordingSpec

__all__ = ["Truth", "TruthBuilder", "load_truth", "TRUTH_DIR", "FACE_TRACK", "OCCLUDER_TRACK", "HAND_TRACK"]

TRUTH_DIR = "truth"
FACE_TRACK = 10_000  # track ids of faces start here; toys count from 0
OCCLUDER_TRACK = 20_000
HAND_TRACK = 30_000

_BOX = [("x0", "i2"), ("y0", "i2"), ("x1", "i2"), ("y1", "i2"), ("visibility", "f4")]
DTYPES = {
    "camera": np.dtype([("frame", "i4"), ("cx", "f4"), ("cy", "f4"), ("zoom", "f4"), ("gain_r", "f4"),
                        ("gain_g", "f4"), ("gain_b", "f4"), ("episode", "i2")]),
    "toys": np.dtype([("frame", "i4"), ("track", "i4"), ("category", "i2"), ("instance", "i2"), *_BOX,
                      ("state", "i1"), ("holder", "i1"), ("covered", "?")]),
    "faces": np.dtype([("frame", "i4"), ("track", "i4"), *_BOX, ("gaze_track", "i4"), ("gaze_bucket", "i1"),
                       ("speaking", "?")]),
    "hands": np.dtype([("frame", "i4"), ("track", "i4"), ("owner", "i1"), *_BOX, ("holding", "i4")]),
    "occluders": np.dtype([("frame", "i4"), ("track", "i4"), ("kind", "i1"), *_BOX, ("covering", "i4")]),
}
_TABLES = tuple(DTYPES)


@dataclass
class Truth:
    """The ground truth of one recording (see the module docstring for the columns)."""

    meta: dict
    camera: np.ndarray
    toys: np.ndarray
    faces: np.ndarray
    hands: np.ndarray
    occluders: np.ndarray

    @property
    def utterances(self) -> list[dict]:
        return self.meta.get("utterances", [])

    def at(self, table: str, frame: int) -> np.ndarray:
        """The rows of `table` for one frame."""
        t = getattr(self, table)
        lo, hi = np.searchsorted(t["frame"], [frame, frame + 1])
        return t[lo:hi]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _TABLES}
        with atomic_open(path, "wb") as f:
            np.savez_compressed(f, meta=np.frombuffer(json.dumps(self.meta).encode(), np.uint8), **arrays)
        return path


def load_truth(path: str | Path) -> Truth:
    """Read `OUT/truth/<id>.npz` (ValueError naming the file if it is not a truth file)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            tables = {name: z[name] for name in _TABLES}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a BabyWorld truth file ({e})") from e
    return Truth(meta=meta, **tables)


@dataclass
class TruthBuilder:
    """Collects rows while a recording renders."""

    spec: RecordingSpec
    age_days: float
    model: AgeModel
    rows: dict = field(default_factory=lambda: {name: [] for name in _TABLES})
    occluder_kinds: list = field(default_factory=list)
    utterances: list = field(default_factory=list)

    def add_frame(self, i, view, gain, episode, info, seen, rec) -> None:
        r = self.rows
        r["camera"].append((i, view.cx, view.cy, view.zoom, gain[0], gain[1], gain[2], episode))
        none = ((0, 0, 0, 0), 0.0)
        for th in info["toys"]:
            s = seen.get(th.track)
            (x0, y0, x1, y1), vis = (s.box, s.visibility) if s else none
            holder = -1 if th.holder is None else th.holder.owner
            r["toys"].append((i, th.track, th.category, th.instance, x0, y0, x1, y1, vis, th.state, holder,
                              th.covered_by is not None))
        s = seen.get(FACE_TRACK)
        (x0, y0, x1, y1), vis = (s.box, s.visibility) if s else none
        gaze = -1 if rec.gaze is None else rec.gaze.track
        r["faces"].append((i, FACE_TRACK, x0, y0, x1, y1, vis, gaze, rec.face_gaze_bucket, rec._speaking()))
        for track, hand in info["hands"]:
            s = seen.get(track)
            (x0, y0, x1, y1), vis = (s.box, s.visibility) if s else none
            holding = -1 if hand.holding is None else hand.holding.track
            r["hands"].append((i, track, hand.owner, x0, y0, x1, y1, vis, holding))
        for th in info["occluders"]:
            s = seen.get(th.track)
            (x0, y0, x1, y1), vis = (s.box, s.visibility) if s else none
            cov = -1 if th.covering is None else th.covering.track
            r["occluders"].append((i, th.track, 0 if th.kind == "screen" else 1, x0, y0, x1, y1, vis, cov))

    def table(self, name: str) -> np.ndarray:
        return np.array(self.rows[name], dtype=DTYPES[name])

    def build(self) -> Truth:
        spec = self.spec
        meta = {
            "video": spec.video_id, "subject": f"child{spec.child}", "child": spec.child, "recording": spec.index,
            "age_days": round(float(self.age_days), 2), "seed": spec.seed, "fps": spec.fps, "width": spec.width,
            "height": spec.height, "frames": spec.n_frames, "blur_sigma": self.model.blur_sigma,
            "maturity": self.model.maturity, "categories": [c.word for c in CATEGORIES],
            "utterances": self.utterances,
        }
        return Truth(meta=meta, **{name: self.table(name) for name in _TABLES})
