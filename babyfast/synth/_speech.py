"""What the caregiver says: child-directed utterances that usually name the toy in play, sometimes not.

Timing is fixed before rendering (the face's mouth moves while she talks); the words are chosen from
the rendered truth at the utterance's start, the way a caregiver comments on what is in front of the
child. The noise is deliberate, as in real transcripts: some utterances name a toy that is not in view
("where's the duck?" with no duck around), some name nothing.
"""
from __future__ import annotations

import math

import numpy as np

from .vocab import CATEGORIES

__all__ = ["caregiver_utterances", "start_frame", "NAMING", "ABSENT", "GENERIC", "P_NONE", "P_ABSENT"]

P_NONE = 0.14  # utterances that name no toy
P_ABSENT = 0.12  # utterances that name a toy out of view
MIN_VISIBILITY = 0.5

NAMING = (
    "look at the {w}!", "where's the {w}? there it is!", "that's a {w}", "do you want the {w}?", "see the {w}?",
    "{w}! yes, a {w}", "can you get the {w}?", "oh, a {w}!", "here's the {w}", "what a nice {w}",
    "you like the {w}?", "the {w}, look", "is that the {w}?", "a {w}! a big {w}",
)
ROLLING = ("the {w} is rolling!", "whee, there goes the {w}", "oops, the {w} fell down")
ABSENT = ("where's the {w}?", "shall we find the {w}?", "where did the {w} go?", "do you want your {w}?")
GENERIC = (
    "good job!", "uh oh!", "what's that?", "are you hungry?", "mommy's here", "look at you!", "all done?",
    "yay!", "peekaboo!", "so big!", "let's play", "what do you see?", "come here, sweetie", "you're silly",
)


def start_frame(start: float, fps: float, n_frames: int) -> int:
    """The frame on screen at `start` seconds (frame i shows from i / fps on), within the recording.

    The tolerance absorbs float error in `start * fps` (2.3 * 10 == 22.999...), so that a start
    written with 3 decimals maps to the same frame when read back.
    """
    return min(max(math.floor(start * fps + 1e-6), 0), n_frames - 1)


def caregiver_utterances(builder, schedule: list[tuple[float, float]], rng: np.random.Generator) -> list[dict]:
    """Turn a speech schedule into utterances using the truth collected so far (a `truth.TruthBuilder`)."""
    spec = builder.spec
    toys = builder.table("toys")
    faces = builder.table("faces")
    min_side = 0.05 * min(spec.width, spec.height)
    out = []
    for start, end in schedule:
        # the times are stored (and written to utterances.csv) with 3 decimals: the words must come
        # from the frame that the stored start maps to, not the unrounded one
        start, end = round(float(start), 3), round(float(end), 3)
        f = start_frame(start, spec.fps, spec.n_frames)
        rows = toys[toys["frame"] == f]
        big = ((rows["x1"] - rows["x0"]) >= min_side) & ((rows["y1"] - rows["y0"]) >= min_side)
        vis = rows[(rows["visibility"] >= MIN_VISIBILITY) & big]
        face = faces[faces["frame"] == f]
        gaze = int(face["gaze_track"][0]) if len(face) else -1
        r = rng.random()
        entry = {"start": start, "end": end, "word": "", "referent_track": -1,
                 "category": -1, "kind": "none"}
        if r < P_NONE or (len(vis) == 0 and r >= P_NONE + P_ABSENT):
            entry["text"] = str(rng.choice(GENERIC))
        elif r < P_NONE + P_ABSENT:
            in_view = {int(c) for c in rows["category"][rows["visibility"] > 0]}
            absent = [c.id for c in CATEGORIES if c.id not in in_view]
            cat = int(rng.choice(absent))
            word = CATEGORIES[cat].word
            entry.update(text=str(rng.choice(ABSENT)).format(w=word), word=word, category=cat, kind="absent")
        else:
            if gaze in set(vis["track"].tolist()):
                pick = vis[vis["track"] == gaze][0]
            elif (vis["holder"] >= 0).any():
                pick = vis[vis["holder"] >= 0][0]
            else:
                area = (vis["x1"] - vis["x0"]).astype(np.int64) * (vis["y1"] - vis["y0"]) * vis["visibility"]
                pick = vis[int(np.argmax(area))]
            word = CATEGORIES[int(pick["category"])].word
            templates = ROLLING if pick["state"] in (1, 2) and rng.random() < 0.6 else NAMING
            entry.update(text=str(rng.choice(templates)).format(w=word), word=word,
                         referent_track=int(pick["track"]), category=int(pick["category"]), kind="in_view")
        out.append(entry)
    return out
