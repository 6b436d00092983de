"""Which stretches of which videos clips may come from: the segment table the planner works on.

A segment is a run of start frames in one video of one store: a whole video (`anchor="video"`), or the
starts whose clip overlaps one utterance of the transcript (`anchor="utterance"`). The planner sees only
segments, so the filters (subjects, a held-out subject list, an age range) act in the plan itself: an
excluded video has no candidate, nothing is read and skipped.

With several stores the segments of all of them form one table (`source` says which store); mixing
weights are applied by `babyfast.loader._mixing.MixedPlan` over the stores' parts of it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Segments", "Filters", "Anchor", "select_segments"]

Anchor = Literal["video", "utterance"]


@dataclass(frozen=True)
class Filters:
    """Videos clips may come from: `subjects` (None: all), minus `exclude_subjects`, with an age in days
    inside `age_days` (inclusive; a video of unknown age is excluded by an age range)."""

    subjects: tuple[str, ...] | None = None
    exclude_subjects: tuple[str, ...] = ()
    age_days: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.age_days is not None:
            lo, hi = self.age_days
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"age_days must be (low, high) with low <= high, got {self.age_days!r}")
        if self.subjects is not None and set(self.subjects) & set(self.exclude_subjects):
            raise ValueError(f"subjects {sorted(set(self.subjects) & set(self.exclude_subjects))} are both selected "
                             f"and excluded")

    def keep(self, subjects: np.ndarray, ages: np.ndarray) -> np.ndarray:
        ok = np.ones(len(subjects), dtype=bool)
        if self.subjects is not None:
            ok &= np.isin(subjects, list(self.subjects))
        if self.exclude_subjects:
            ok &= ~np.isin(subjects, list(self.exclude_subjects))
        if self.age_days is not None:
            with np.errstate(invalid="ignore"):
                ok &= (ages >= self.age_days[0]) & (ages <= self.age_days[1])
        return ok

    def describe(self) -> dict[str, Any]:
        return {"subjects": list(self.subjects) if self.subjects is not None else None,
                "exclude_subjects": list(self.exclude_subjects),
                "age_days": list(self.age_days) if self.age_days is not None else None}


@dataclass(frozen=True)
class Segments:
    """One row per segment: clips start at `offset + k * stride` for `k = 0 .. (frames - span) // stride`."""

    source: np.ndarray   # int64: index of the store
    video: np.ndarray    # int64: index of the video in its store
    offset: np.ndarray   # int64: first start frame
    frames: np.ndarray   # int64: frames the segment covers, >= span
    age_days: np.ndarray  # float64, NaN unknown
    anchor: np.ndarray   # int64: the utterance of the segment (index into its video's transcript), -1 none

    def __len__(self) -> int:
        return len(self.video)

    def part(self, source: int) -> np.ndarray:
        """Row indices of one store's segments."""
        return np.flatnonzero(self.source == source)


def _subjects(source: Any) -> np.ndarray:
    index = getattr(source, "index", None)
    if index is not None and "subject" in index:  # zarr gives a variable-width string dtype
        return np.array([str(x) for x in index["subject"]], dtype=object)
    return np.array([""] * len(source.frames_per_video), dtype=object)


def _utterance_segments(source: Any, v: int, span: int, stride: int) -> list[tuple[int, int, int]]:
    """(offset, frames, utterance index) of the starts whose clip overlaps each utterance of video v: starts
    on the stride grid within [first frame - span + 1, last frame], or, if the grid has none there, the one
    start that covers the utterance's first frame."""
    meta = source.meta(v)
    n = int(source.frames_per_video[v])
    if n < span or not meta.utterances:
        return []
    ts = meta.timestamps if meta.timestamps is not None else np.arange(n) / meta.fps
    out = []
    for u, (t0, t1, _text) in enumerate(meta.utterances):
        first = int(np.searchsorted(ts, t0, side="left"))
        last = int(np.searchsorted(ts, t1, side="left")) - 1
        if first >= n or last < first:
            continue  # outside the stored frames
        lo, hi = max(0, first - span + 1), min(last, n - span)
        k0 = -(-lo // stride)
        if lo <= hi and k0 * stride <= hi:
            k1 = hi // stride
            out.append((k0 * stride, (k1 - k0) * stride + span, u))
        else:
            out.append((max(0, min(first, n - span)), span, u))
    return out


def select_segments(sources: Sequence[Any], span: int, stride: int, anchor: Anchor = "video",
                    filters: Filters = Filters()) -> Segments:
    """The segment table of `sources` (StoreSource or VideoFileSource) under `filters`."""
    if anchor not in ("video", "utterance"):
        raise ValueError(f"anchor must be 'video' or 'utterance', got {anchor!r}")
    rows: list[tuple[int, int, int, int, float, int]] = []
    longest, selected = 0, 0
    for s, source in enumerate(sources):
        frames = np.asarray(source.frames_per_video, dtype=np.int64)
        ages = np.asarray(source.ages, dtype=np.float64)
        keep = filters.keep(_subjects(source), ages)
        selected += int(keep.sum())
        longest = max([longest, *frames[keep].tolist()])
        for v in np.flatnonzero(keep & (frames >= span)):
            v = int(v)
            if anchor == "video":
                rows.append((s, v, 0, int(frames[v]), float(ages[v]), -1))
            else:
                rows.extend((s, v, off, n, float(ages[v]), u)
                            for off, n, u in _utterance_segments(source, v, span, stride))
    if not rows:
        if not selected:
            raise ValueError(f"no video is selected by the filters {filters.describe()}")
        if longest < span:
            raise ValueError(f"no clip can be planned: a clip spans {span} frames but the longest selected video "
                             f"has {longest}")
        raise ValueError(f"no clip can be planned: no utterance of the {selected} selected videos lies in their "
                         f"stored frames (anchor='utterance' needs transcripts)")
    cols = list(zip(*rows, strict=False))
    return Segments(source=np.array(cols[0], np.int64), video=np.array(cols[1], np.int64),
                    offset=np.array(cols[2], np.int64), frames=np.array(cols[3], np.int64),
                    age_days=np.array(cols[4], np.float64), anchor=np.array(cols[5], np.int64))
