"""Milestone probe suites with known answers, held out from every training recording.

Probes draw only `vocab.PROBE_INSTANCES` toys (never rendered in a corpus), in rooms and with
caregivers from their own random streams (keyed apart from any corpus seed). Each suite is written in
the folder layout its real-benchmark adapter reads, with the answer key and per-frame truth:

``OUT/vocab.csv``, ``OUT/probes.json`` (manifest: suites, trial counts, chance, seed, size). The
manifest is written before any suite folder (the suites being written listed under ``pending``) and
again when they are complete, so it always names every folder that is ours. OUT must be empty or hold
only probe suites; a suite is replaced by deleting the folder the manifest lists for it, and anything
else in OUT makes `write_probes` refuse, naming it. Every file is written atomically (`atomic`).

``object_recognition/`` — Labeled-S style (as in the CVCL evaluation): 4-way trials, one target
category and four frames, one of which shows it.
  - ``frames/<category>/<category>_<k>.png``: one toy (maybe held by a hand) in a room.
  - ``trials.json``: ``{"suite", "data": [{"trial_num", "target_category", "target_img_filename",
    "foil_categories", "foil_img_filenames", "options"}]}``; file names are relative to the suite
    folder; ``options`` lists the four frames in presentation order (target position balanced).
  - ``truth.json``: ``{frame file: {"objects": [...], "faces": [...], "occluders": [...]}}`` with
    objects ``{"track", "category", "word", "instance", "box": [x0, y0, x1, y1], "visibility"}``,
    faces ``{"track", "box", "visibility", "gaze_track"}`` (-1: the camera), occluders
    ``{"track", "box", "visibility", "lifted"}``.
``word_referent/`` — the same form with words from the utterance vocabulary; every frame shows two
toys, the target frame one whose name is the word. ``frames/<k>.png``; ``foil_categories`` holds the
pair of words each foil frame shows; ``target_category`` is the word.
``permanence/`` — IntPhys style violation-of-expectation quadruplets: a screen lifts, lowers, lifts
again and lowers; behind it a toy is (or is not) there each time it lifts. Two movies are possible
(there both times, or never), two impossible (there, then gone; absent, then there). The impossible
movies are spliced from the same frames as the possible ones, so every frame appears equally often
on both sides, and all four movies begin and end on the same frame (the screen down).
  - ``O1/<quad:04d>/<movie 1-4>/scene/scene_<t:03d>.png`` (t from 1), shared frames hard-linked.
  - ``O1/<quad>/<movie>/status.json``: ``{"block": "O1", "possible": bool, "frames": [truth per frame]}``
    (the answer key, as IntPhys dev status files; which movie number is which is shuffled).
``counting/`` — subitizing: frames with 1 to 5 identical toys; total toy area is drawn independently
of the count, so area and mean colour do not give the count away. ``frames/<k>.png``;
``trials.json``: ``{"suite", "choices": [1, 2, 3, 4, 5], "data": [{"trial_num", "image", "answer"}]}``
(answer: the count); ``truth.json``.
``left_right/`` — two toys, one in each half; which side is the named one on? ``trials.json`` data
``{"trial_num", "image", "word", "answer": "left" | "right"}``; ``truth.json``.
``gaze/`` — a face looks at one of three toys set around it at equal distance: which one?
``trials.json`` data ``{"trial_num", "image", "candidates": [[x0, y0, x1, y1] x 3], "answer": index}``;
``truth.json``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np

from babyfast._atomic import write_bytes, write_text
from babyfast._pool import run_jobs

from ._children import stream
from ._compose import Layer, compose
from ._folder import entry_is_file, listed, read_manifest, refuse_foreign, usable_folder
from ._geometry import HORIZON, PANO_W, View, clamp_view
from ._occluders import occluder_sprite, occluder_style
from ._people import face_sprite, hand_sprite, person_style, torso_sprite
from ._room import make_room
from ._sprites import (
    ANGLE_BUCKETS,
    Sprite,
    angle_bucket,
    capsule_sprite,
    shadow_sprite,
    size_bucket,
)
from ._toys import toy_sprite
from .png import encode_png
from .truth import FACE_TRACK, OCCLUDER_TRACK
from .vocab import CATEGORIES, PROBE_INSTANCES, VOCAB_FILE, write_vocabulary

__all__ = ["MANIFEST", "PROBE_DOMAIN", "SUITES", "write_probes"]

log = logging.getLogger(__name__)

SUITES = ("object_recognition", "word_referent", "permanence", "counting", "left_right", "gaze")
PROBE_DOMAIN = 0x9E0BE  # keys every probe stream apart from the corpus streams
MANIFEST = "probes.json"
GENERATOR = "babyfast.synth.probes"
_N_ROOMS = 8
_PNG_LEVEL = 4


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n values in range(k), each value as often as possible equally, in random order."""
    return rng.permutation(np.arange(n) % k)


class _Stage:
    """Static scenes for probe frames: a random room, camera and light; layers placed in pixels."""

    def __init__(self, rng: np.random.Generator, width: int, height: int, rooms):
        self.rng, self.W, self.H, self.rooms = rng, width, height, rooms
        self.meta: dict[int, dict] = {}

    def background(self) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        room = self.rooms[int(rng.integers(len(self.rooms)))]
        zoom = float(rng.uniform(0.95, 1.15))
        cx, cy = clamp_view(float(rng.uniform(150, PANO_W - 150)), float(rng.uniform(HORIZON + 60, HORIZON + 120)),
                            zoom, self.W, self.H)
        level, warm = rng.uniform(0.75, 1.0), rng.uniform(-0.04, 0.04)
        return room.view(View(cx, cy, zoom, self.W, self.H)), np.array([level * (1 + warm), level, level * (1 - warm)])

    def toy(self, track: int, cat: int, inst: int, x: float, y: float, px: float, depth: float,
            shadow: bool = True) -> list[Layer]:
        """Layers of a toy whose sprite square is `px` pixels, standing at pixel (x, y)."""
        # only a spinning toy draws a turn (toy_sprite ignores the bucket of others, but the draw would
        # still move the random stream, and with it every probe)
        ab = int(self.rng.integers(ANGLE_BUCKETS)) if CATEGORIES[cat].spins else 0
        sp = toy_sprite(cat, inst, size_bucket(px), ab)
        if sp is None:
            raise ValueError(f"probe toy {CATEGORIES[cat].word} #{inst} at {px:.1f} px draws no visible pixels")
        self.meta[track] = {"category": cat, "word": CATEGORIES[cat].word, "instance": inst}
        out = [Layer(sp, int(round(x)), int(round(y)), depth, track)]
        if shadow:
            sh = shadow_sprite(max(2, int(px * 0.9)), max(2, int(px * 0.25)))
            if sh is not None:
                out.append(Layer(sh, int(round(x)), int(round(y)), depth - 0.5, occludes=False))
        return out

    def truth(self, seen, faces=None, occluders=None) -> dict:
        objects = []
        for track, info in sorted(self.meta.items()):
            s = seen.get(track)
            if s is None:
                continue
            objects.append({"track": track, **info, "box": list(s.box), "visibility": round(s.visibility, 4)})
        out = {"objects": objects, "faces": [], "occluders": []}
        for track, gaze in (faces or {}).items():
            s = seen[track]
            out["faces"].append({"track": track, "box": list(s.box), "visibility": round(s.visibility, 4),
                                 "gaze_track": gaze})
        for track, lifted in (occluders or {}).items():
            s = seen[track]
            out["occluders"].append({"track": track, "box": list(s.box), "visibility": round(s.visibility, 4),
                                     "lifted": lifted})
        return out


def _instance(rng) -> int:
    return int(rng.choice(PROBE_INSTANCES))


def _place(rng, W, H, sizes, y_min, tries: int = 200):
    """Anchor points (bottom centre) for toys of the given pixel sizes, their squares not overlapping."""
    for _ in range(tries):
        pts = []
        for s in sizes:
            for _ in range(60):
                x = rng.uniform(s / 2 + 1, W - s / 2 - 1)
                y = rng.uniform(max(y_min, s + 1), H - 2)
                if all(abs(x - px) > (s + ps) / 2 + 2 or abs(y - py) > (s + ps) / 2 + 2 for px, py, ps in pts):
                    pts.append((x, y, s))
                    break
            else:
                break
        if len(pts) == len(sizes):
            return [(x, y) for x, y, _ in pts]
    raise RuntimeError(f"could not place {len(sizes)} toys of sizes {sizes} in {W}x{H}")


# ---- suites --------------------------------------------------------------------------------------------


def _object_frame(st: _Stage, cat: int, hands_style) -> tuple[np.ndarray, dict]:
    rng, W, H = st.rng, st.W, st.H
    st.meta = {}
    bg, gain = st.background()
    px = rng.uniform(0.3, 0.45) * min(W, H)
    x = W / 2 + rng.uniform(-0.15, 0.15) * W
    y = rng.uniform(0.6, 0.85) * H
    layers = st.toy(0, cat, _instance(rng), x, y, px, 1.0)
    if rng.random() < 0.3:  # held up by a caregiver's hand, as in so many real frames
        style = hands_style[int(rng.integers(len(hands_style)))]
        hx, hy = x + rng.uniform(-0.25, 0.25) * px, y - px * rng.uniform(0.5, 0.75)
        sx, sy = W * rng.uniform(0.3, 0.7), -0.2 * H
        arm = capsule_sprite(sx, sy, hx, hy, 0.05 * W, style.shirt)
        if arm is not None:
            layers.append(Layer(arm[0], arm[1], arm[2], 1.9))
        ang = angle_bucket(math.atan2(hy - sy, hx - sx))
        layers.append(Layer(hand_sprite(style.skin, size_bucket(0.22 * px + 0.06 * W), ang), int(hx), int(hy), 2.0))
    frame, seen = compose(bg, layers, gain)
    return frame, st.truth(seen)


def _pair_frame(st: _Stage, cats: tuple[int, int]) -> tuple[np.ndarray, dict]:
    rng, W, H = st.rng, st.W, st.H
    st.meta = {}
    bg, gain = st.background()
    sizes = [rng.uniform(0.22, 0.32) * min(W, H) for _ in cats]
    pts = _place(rng, W, H, sizes, 0.45 * H)
    layers = []
    for k, (cat, (x, y), s) in enumerate(zip(cats, pts, sizes, strict=True)):
        layers += st.toy(k, cat, _instance(rng), x, y, s, 1.0 + y / H)
    frame, seen = compose(bg, layers, gain)
    return frame, st.truth(seen)


def _write_frames(root: Path, frames: dict[str, np.ndarray]) -> None:
    for name, img in frames.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(p, _encode(img), fsync=False)


def _encode(img: np.ndarray) -> bytes:
    return encode_png(img, _PNG_LEVEL)


def _labeled_s(root: Path, rng, stage: _Stage, n: int, people) -> dict:
    n_cat = len(CATEGORIES)
    per_cat = max(3, math.ceil(4 * n / n_cat / 3))
    frames, truth, pool = {}, {}, {}
    for cat in CATEGORIES:
        pool[cat.id] = []
        for k in range(per_cat):
            name = f"frames/{cat.word}/{cat.word}_{k:03d}.png"
            frames[name], truth[name] = _object_frame(stage, cat.id, people)
            pool[cat.id].append(name)
    targets = _balanced(rng, n, n_cat)
    positions = _balanced(rng, n, 4)
    data = []
    for i in range(n):
        t = int(targets[i])
        foils = [int(c) for c in rng.choice([c for c in range(n_cat) if c != t], 3, replace=False)]
        timg = pool[t][int(rng.integers(per_cat))]
        fimgs = [pool[c][int(rng.integers(per_cat))] for c in foils]
        options = list(fimgs)
        options.insert(int(positions[i]), timg)
        data.append({"trial_num": i, "target_category": CATEGORIES[t].word, "target_img_filename": timg,
                     "foil_categories": [CATEGORIES[c].word for c in foils], "foil_img_filenames": fimgs,
                     "options": options})
    _write_frames(root, frames)
    write_text(root / "trials.json", json.dumps({"suite": "object_recognition", "data": data}, indent=1))
    write_text(root / "truth.json", json.dumps(truth))
    return {"trials": n, "frames": len(frames), "chance": 0.25}


def _word_referent(root: Path, rng, stage: _Stage, n: int) -> dict:
    n_cat = len(CATEGORIES)
    m = max(2 * n_cat, n)
    order = np.concatenate([rng.permutation(n_cat) for _ in range(math.ceil(2 * m / n_cat) + 1)])
    pairs, j = [], 0
    while len(pairs) < m:  # consecutive categories of a shuffled stream: every word shows equally often
        a, b = int(order[j]), int(order[j + 1])
        j += 1 if a == b else 2
        if a != b:
            pairs.append((a, b))
    frames, truth, names = {}, {}, []
    for k, pair in enumerate(pairs):
        name = f"frames/{k:04d}.png"
        frames[name], truth[name] = _pair_frame(stage, pair)
        names.append(name)
    targets = _balanced(rng, n, n_cat)
    positions = _balanced(rng, n, 4)
    data = []
    for i in range(n):
        t = int(targets[i])
        with_t = [k for k, p in enumerate(pairs) if t in p]
        without = [k for k, p in enumerate(pairs) if t not in p]
        tk = with_t[int(rng.integers(len(with_t)))]
        fks = [int(k) for k in rng.choice(without, 3, replace=False)]
        options = [names[k] for k in fks]
        options.insert(int(positions[i]), names[tk])
        data.append({"trial_num": i, "target_category": CATEGORIES[t].word, "target_img_filename": names[tk],
                     "foil_categories": [[CATEGORIES[c].word for c in pairs[k]] for k in fks],
                     "foil_img_filenames": [names[k] for k in fks], "options": options})
    _write_frames(root, frames)
    write_text(root / "trials.json", json.dumps({"suite": "word_referent", "data": data}, indent=1))
    write_text(root / "truth.json", json.dumps(truth))
    return {"trials": n, "frames": len(frames), "chance": 0.25}


def _counting(root: Path, rng, stage: _Stage, n: int) -> dict:
    W, H = stage.W, stage.H
    counts = _balanced(rng, n, 5) + 1
    frames, truth, data = {}, {}, []
    for i, count in enumerate(counts):
        stage.meta = {}
        bg, gain = stage.background()
        cat, inst = int(rng.integers(len(CATEGORIES))), _instance(rng)
        # total area is drawn independently of the count (numerosity studies control it the same way)
        area = rng.uniform(0.05, 0.1) * W * H
        sizes = [math.sqrt(area / count) * rng.uniform(0.9, 1.1) for _ in range(count)]
        pts = _place(rng, W, H, sizes, 0.3 * H)
        layers = []
        for k, ((x, y), s) in enumerate(zip(pts, sizes, strict=True)):
            layers += stage.toy(k, cat, inst, x, y, s, 1.0 + y / H)
        name = f"frames/{i:04d}.png"
        frames[name], seen = compose(bg, layers, gain)
        truth[name] = stage.truth(seen)
        data.append({"trial_num": i, "image": name, "answer": int(count)})
    _write_frames(root, frames)
    write_text(root / "trials.json",
               json.dumps({"suite": "counting", "choices": [1, 2, 3, 4, 5], "data": data}, indent=1))
    write_text(root / "truth.json", json.dumps(truth))
    return {"trials": n, "frames": len(frames), "chance": 0.2}


def _left_right(root: Path, rng, stage: _Stage, n: int) -> dict:
    W, H = stage.W, stage.H
    sides = _balanced(rng, n, 2)
    frames, truth, data = {}, {}, []
    for i in range(n):
        stage.meta = {}
        bg, gain = stage.background()
        a, b = (int(c) for c in rng.choice(len(CATEGORIES), 2, replace=False))
        layers = []
        xs = []
        for k, cat in enumerate((a, b)):  # a on the left, b on the right
            s = rng.uniform(0.2, 0.3) * min(W, H)
            lo, hi = s / 2 + 1, W / 2 - s / 2 - 2
            x = rng.uniform(lo, hi) if k == 0 else W - rng.uniform(lo, hi)
            y = rng.uniform(0.5, 0.95) * H
            layers += stage.toy(k, cat, _instance(rng), x, y, s, 1.0 + y / H)
            xs.append(x)
        target = a if sides[i] == 0 else b
        name = f"frames/{i:04d}.png"
        frames[name], seen = compose(bg, layers, gain)
        truth[name] = stage.truth(seen)
        data.append({"trial_num": i, "image": name, "word": CATEGORIES[target].word,
                     "answer": "left" if sides[i] == 0 else "right"})
    _write_frames(root, frames)
    write_text(root / "trials.json",
               json.dumps({"suite": "left_right", "choices": ["left", "right"], "data": data}, indent=1))
    write_text(root / "truth.json", json.dumps(truth))
    return {"trials": n, "frames": len(frames), "chance": 0.5}


_GAZE_DIRECTIONS = (15.0, 52.0, 90.0, 128.0, 165.0)  # degrees, screen y down: all below or beside the face


def _gaze(root: Path, rng, stage: _Stage, n: int, people) -> dict:
    W, H = stage.W, stage.H
    m = min(W, H)
    answers = _balanced(rng, n, 3)
    frames, truth, data = {}, {}, []
    for i in range(n):
        stage.meta = {}
        bg, gain = stage.background()
        person = people[int(rng.integers(len(people)))]
        fx, fy = W / 2 + rng.uniform(-0.05, 0.05) * W, rng.uniform(0.2, 0.26) * H
        fsize = rng.uniform(0.24, 0.28) * m
        layers = [Layer(torso_sprite(person, size_bucket(fsize * 1.7)), int(fx), int(fy + fsize * 1.55), 0.2)]
        dirs = sorted(rng.choice(len(_GAZE_DIRECTIONS), 3, replace=False))
        cats = [int(c) for c in rng.choice(len(CATEGORIES), 3, replace=False)]
        centres = []
        for k, (d, cat) in enumerate(zip(dirs, cats, strict=True)):
            ang = math.radians(_GAZE_DIRECTIONS[d] + rng.uniform(-6, 6))
            r = 0.36 * m * rng.uniform(0.95, 1.05)
            s = 0.17 * m * rng.uniform(0.9, 1.1)
            cx, cy = fx + r * math.cos(ang), fy + r * math.sin(ang)
            # anchor at the bottom centre, so the sprite's centre lands on (cx, cy)
            layers += stage.toy(k, cat, _instance(rng), cx, cy + s * 0.45, s, 1.0 + cy / H)
            centres.append((cx, cy))
        order = rng.permutation(3)  # presentation order of the candidates
        target_pos = int(answers[i])
        target = int(order[target_pos])
        tx, ty = centres[target]
        gb = angle_bucket(math.atan2(ty - fy, tx - fx))
        layers.append(Layer(face_sprite(person, size_bucket(fsize), gb, False), int(fx), int(fy), 0.3, FACE_TRACK))
        name = f"frames/{i:04d}.png"
        frames[name], seen = compose(bg, layers, gain)
        truth[name] = stage.truth(seen, faces={FACE_TRACK: target})
        candidates = [list(seen[int(k)].box) for k in order]
        data.append({"trial_num": i, "image": name, "candidates": candidates, "answer": target_pos})
    _write_frames(root, frames)
    write_text(root / "trials.json", json.dumps({"suite": "gaze", "data": data}, indent=1))
    write_text(root / "truth.json", json.dumps(truth))
    return {"trials": n, "frames": len(frames), "chance": 1 / 3}


def _half_timeline(rng, length: int) -> np.ndarray:
    """Lift fraction 0..1 of the screen per frame of a half: down, up, held, down, down."""
    cuts = np.sort(rng.uniform([0.08, 0.3, 0.55, 0.8], [0.18, 0.42, 0.68, 0.9]))
    t = (np.arange(length) + 0.5) / length
    up = np.clip((t - cuts[0]) / (cuts[1] - cuts[0]), 0, 1)
    down = np.clip((t - cuts[2]) / (cuts[3] - cuts[2]), 0, 1)
    lift = up - down
    lift[0] = lift[-1] = 0.0
    return 0.5 - 0.5 * np.cos(np.pi * lift)


def _permanence(root: Path, rng, stage: _Stage, n: int, movie_frames: int, people) -> dict:
    W, H = stage.W, stage.H
    m = min(W, H)
    half = movie_frames // 2
    o1 = root / "O1"
    for q in range(n):
        stage.meta = {}
        bg, gain = stage.background()
        style = occluder_style(rng, "screen")
        ow, oh = rng.uniform(0.32, 0.42) * W, rng.uniform(0.3, 0.38) * m
        ox, oy = W / 2 + rng.uniform(-0.15, 0.15) * W, rng.uniform(0.78, 0.9) * H
        screen = occluder_sprite(style, size_bucket(ow), size_bucket(oh))
        sh, sw = screen.shape
        cat, inst = int(rng.integers(len(CATEGORIES))), _instance(rng)
        px = 0.62 * min(sw, sh)
        toy_layers = stage.toy(0, cat, inst, ox, oy - 0.1 * sh, px, 1.0, shadow=False)
        toy_sp: Sprite = toy_layers[0].sprite
        # the toy must lie wholly within the screen's opaque interior when the screen is down
        tx0, ty0 = toy_layers[0].x + toy_sp.ox, toy_layers[0].y + toy_sp.oy
        sx0, sy0 = int(ox) + screen.ox, int(oy) + screen.oy
        inner = screen.alpha[ty0 - sy0:ty0 - sy0 + toy_sp.shape[0], tx0 - sx0:tx0 - sx0 + toy_sp.shape[1]]
        if inner.shape != toy_sp.shape or inner.min() < 1.0:
            raise RuntimeError(f"permanence quad {q}: toy not inside the screen ({inner.shape} vs {toy_sp.shape})")
        others = []
        for k in range(int(rng.integers(0, 3))):  # clutter elsewhere, the same in all four movies
            s = rng.uniform(0.15, 0.22) * m
            side = -1 if rng.random() < 0.5 else 1
            x = float(np.clip(ox + side * (ow / 2 + s * rng.uniform(0.7, 1.4)), s / 2, W - s / 2))
            others += stage.toy(1 + k, int(rng.integers(len(CATEGORIES))), _instance(rng), x,
                                rng.uniform(0.45, 0.7) * H, s, 0.5)
        lift_px = rng.uniform(0.82, 0.95) * sh
        person = people[int(rng.integers(len(people)))]
        arm_x = W * rng.uniform(0.3, 0.7)
        halves = {}
        for hk in (0, 1):
            timeline = _half_timeline(rng, half)
            for present in (True, False):
                seq = []
                for lift in timeline:
                    y = int(round(oy - lift * lift_px))
                    layers = list(others) + (toy_layers if present else [])
                    layers.append(Layer(screen, int(ox), y, 2.0, OCCLUDER_TRACK))
                    hx, hy = ox + 0.25 * sw, y - sh + 0.04 * sh
                    arm = capsule_sprite(arm_x, -0.2 * H, hx, hy, 0.045 * W, person.shirt)
                    if arm is not None:
                        layers.append(Layer(arm[0], arm[1], arm[2], 2.9))
                    ab = angle_bucket(math.atan2(hy + 0.2 * H, hx - arm_x))
                    layers.append(Layer(hand_sprite(person.skin, size_bucket(0.1 * W), ab), int(hx), int(hy), 3.0))
                    frame, seen = compose(bg, layers, gain)
                    tr = stage.truth(seen, occluders={OCCLUDER_TRACK: bool(lift > 0.5)})
                    if not present:
                        tr["objects"] = [o for o in tr["objects"] if o["track"] != 0]
                    seq.append((frame, tr))
                halves[hk, present] = seq
        # the four movies and which number each gets
        conditions = [(True, True, True), (False, False, True), (True, False, False), (False, True, False)]
        numbers = rng.permutation(4) + 1
        qdir = o1 / f"{q + 1:04d}"
        written: dict[tuple[int, bool, int], Path] = {}
        for (first, second, possible), number in zip(conditions, numbers, strict=True):
            mdir = qdir / str(int(number))
            (mdir / "scene").mkdir(parents=True, exist_ok=True)
            frames_truth = []
            for t in range(2 * half):
                hk, present = (0, first) if t < half else (1, second)
                frame, tr = halves[hk, present][t % half]
                path = mdir / "scene" / f"scene_{t + 1:03d}.png"
                key = (hk, present, t % half)
                if key in written:
                    _link(written[key], path)
                else:
                    write_bytes(path, _encode(frame), fsync=False)
                    written[key] = path
                frames_truth.append(tr)
            write_text(mdir / "status.json", json.dumps({"block": "O1", "possible": possible, "frames": frames_truth}),
                       fsync=False)  # atomic, not synced one by one (as the frames): one per movie
    return {"trials": n, "movie_frames": 2 * half, "chance": 0.5}


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links: copy
        write_bytes(dst, src.read_bytes(), fsync=False)


def _make_suite(name: str, out: str, seed: int, width: int, height: int, n: int, quads: int, movie_frames: int) -> dict:
    index = SUITES.index(name)
    rng = stream(seed, PROBE_DOMAIN, index)
    rooms = [make_room(stream(seed, PROBE_DOMAIN, index, 100 + k), width) for k in range(_N_ROOMS)]
    people = [person_style(stream(seed, PROBE_DOMAIN, index, 200 + k)) for k in range(6)]
    stage = _Stage(rng, width, height, rooms)
    root = Path(out) / name
    root.mkdir(parents=True)  # write_probes removed the previous one; never write into a folder that is there
    if name == "object_recognition":
        info = _labeled_s(root, rng, stage, n, people)
    elif name == "word_referent":
        info = _word_referent(root, rng, stage, n)
    elif name == "permanence":
        info = _permanence(root, rng, stage, quads, movie_frames, people)
    elif name == "counting":
        info = _counting(root, rng, stage, n)
    elif name == "left_right":
        info = _left_right(root, rng, stage, n)
    else:
        info = _gaze(root, rng, stage, n, people)
    return {"suite": name, **info}


def _suite_job(job: tuple, report) -> dict:
    return _make_suite(*job)


def _read_manifest(path: Path) -> dict | None:
    """A probe manifest, or None if `path` is missing or is something else."""
    doc = read_manifest(path, GENERATOR)
    return doc if doc is not None and isinstance(doc.get("suites"), dict) else None


def _claim(out: Path, names: tuple[str, ...], width: int, height: int, seed: int) -> dict:
    """Check that OUT holds only our probe files and that the suites kept fit the new ones; returns the
    previous manifest's entries of the suites that stay. Changes nothing on disk."""
    if not usable_folder(out):
        return {}
    old = _read_manifest(out / MANIFEST) or {}
    listed_suites = {s for s in [*old.get("suites", {}), *old.get("pending", [])] if s in SUITES}
    files = {MANIFEST, VOCAB_FILE} if old else set()
    foreign = [p for p in sorted(out.iterdir())
               if not (p.name in listed_suites and not entry_is_file(p) or listed(p.name, files) and entry_is_file(p))]
    refuse_foreign(out, foreign, f"BabyWorld probe suites listed in its {MANIFEST}", "probes")
    kept = {s: v for s, v in old.get("suites", {}).items() if s in SUITES and s not in names}
    if kept and (old.get("width"), old.get("height"), old.get("seed")) != (width, height, seed):
        raise ValueError(
            f"{out}: holds suites {sorted(kept)} written at {old.get('width')}x{old.get('height')} with seed "
            f"{old.get('seed')}; writing {list(names)} at {width}x{height} with seed {seed} would mix the two in "
            "one folder: write all suites, or into another folder"
        )
    return kept


def write_probes(
    out: str | os.PathLike,
    size: int | str | tuple[int, int] = 256,
    trials: int = 480,
    quads: int = 100,
    movie_frames: int = 24,
    seed: int = 0,
    suites: tuple[str, ...] | list[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write the probe suites (see the module docstring for the layouts) into `out`; returns the manifest.

    `trials` per suite (permanence: `quads` quadruplets of `movie_frames`-frame movies). `suites`
    (default all) are replaced if `out` holds them already; others there are kept (they must have been
    written with the same size and seed). Files in `out` that are not probe suites are never deleted
    (they make this raise FileExistsError naming them).

    Example::

        from babyfast.synth import write_probes
        from babyfast.eval import load_suite, score
        write_probes("demo/probes", size=128, trials=60, quads=12)
        suite = load_suite("demo/probes/counting")
        print(score(suite, lambda q: 0))   # a constant responder: chance
    """
    from .corpus import _check_workers, parse_size

    # every argument is checked before anything in `out` is touched
    width, height = parse_size(size)
    names = _check_suites(suites, trials, quads, movie_frames)
    _check_workers(workers)
    out = Path(out)
    kept = _claim(out, names, width, height, seed)
    header = {"generator": GENERATOR, "seed": seed, "width": width, "height": height,
              "instances": list(PROBE_INSTANCES)}
    _clear(out, header, kept, names)
    args = [(s, str(out), seed, width, height, trials, quads, movie_frames) for s in names]
    results = _make_suites(args, min(len(args), workers or os.cpu_count() or 1), progress)
    write_vocabulary(out / VOCAB_FILE)
    manifest = {**header, "suites": {**kept, **{r.pop("suite"): r for r in results}}}
    write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    log.info("wrote probe suites %s into %s", list(names), out)
    return manifest


def _check_suites(suites: tuple[str, ...] | list[str] | None, trials: int, quads: int,
                  movie_frames: int) -> tuple[str, ...]:
    """The suites asked for (each once, in order), once the suite names and sizes are checked."""
    names = tuple(dict.fromkeys(suites)) if suites else SUITES
    bad = [s for s in names if s not in SUITES]
    if bad:
        raise ValueError(f"unknown probe suite(s) {bad}; allowed: {list(SUITES)}")
    if trials < 4:
        raise ValueError(f"trials {trials}: need at least 4 per suite")
    if quads < 1:
        raise ValueError(f"quads {quads}: need at least 1")
    if movie_frames < 12 or movie_frames % 2:
        raise ValueError(f"movie_frames {movie_frames}: must be even and at least 12 (two lifts of the screen)")
    return names


def _clear(out: Path, header: dict, kept: dict, names: tuple[str, ...]) -> None:
    """List what is about to be written before writing it, then remove the folders being replaced (and
    those a crashed run left pending)."""
    old = _read_manifest(out / MANIFEST) or {}
    stale = [s for s in old.get("pending", []) if s in SUITES and s not in names]  # a crashed run's leftovers
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / MANIFEST, json.dumps({**header, "suites": kept, "pending": sorted({*names, *stale})}, indent=1))
    for s in (*names, *stale):
        if (out / s).is_dir():
            shutil.rmtree(out / s)
    write_text(out / MANIFEST, json.dumps({**header, "suites": kept, "pending": sorted(names)}, indent=1))


def _make_suites(args: list[tuple], n_workers: int, progress: bool) -> list[dict]:
    """Each suite's manifest entry, in the order of `args` (the order asked for), made on `n_workers`."""
    from tqdm import tqdm

    results = {}
    with tqdm(total=len(args), unit="suite", desc="probes", disable=not progress) as bar:
        def done(job: tuple, f) -> None:
            results[job[0]] = f.result()
            bar.update(1)

        run_jobs(_suite_job, args, n_workers, done)
    return [results[a[0]] for a in args]
