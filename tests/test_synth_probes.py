"""BabyWorld probe suites: layouts load back, oracles reading the truth solve them, trivial cues do not.

The oracles (`babyfast.eval.oracle`) parse the truth files themselves (not through the loader) and answer from what the
renderer says is visible; the cue responders answer from pixel statistics that carry no knowledge of
the task, and must land within the interval a chance responder falls in.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from babyfast.eval import chance_interval, load_suite, load_suites, score, wilson_interval
from babyfast.eval.oracle import oracle
from babyfast.synth import PROBE_INSTANCES, SUITES, TRAIN_INSTANCES, read_vocabulary, write_probes
from babyfast.synth.png import encode_png, read_png

N = 240
QUADS = 32
SIZE = 64


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("probes")
    write_probes(out, size=SIZE, trials=N, quads=QUADS, movie_frames=12, seed=3, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def suites(probes):
    return load_suites(probes)


def _json(p: Path):
    return json.loads(p.read_text())


@lru_cache(maxsize=None)
def _status(p: Path) -> dict:
    return _json(p)


# ---- layouts ------------------------------------------------------------------------------------------


def test_layouts_load_back(probes, suites):
    assert set(suites) == set(SUITES)
    manifest = _json(probes / "probes.json")
    assert set(manifest["suites"]) == set(SUITES) and manifest["width"] == SIZE
    for name, s in suites.items():
        assert len(s) == (QUADS if name == "permanence" else N), name
    words = read_vocabulary(probes)
    ls = _json(probes / "object_recognition" / "trials.json")["data"]
    for t in ls:
        assert Path(t["target_img_filename"]).parent.name == t["target_category"]
        assert len(t["foil_img_filenames"]) == 3 and t["target_category"] not in t["foil_categories"]
        assert sorted(t["options"]) == sorted([t["target_img_filename"], *t["foil_img_filenames"]])
        assert (probes / "object_recognition" / t["target_img_filename"]).is_file()
    for t in _json(probes / "word_referent" / "trials.json")["data"]:
        assert t["target_category"] in words
        assert all(t["target_category"] not in pair for pair in t["foil_categories"])
    q = probes / "permanence" / "O1" / "0001"
    assert sorted(p.name for p in q.iterdir()) == ["1", "2", "3", "4"]
    assert sorted(p.name for p in (q / "1" / "scene").iterdir()) == [f"scene_{t:03d}.png" for t in range(1, 13)]
    assert sum(_json(q / m / "status.json")["possible"] for m in "1234") == 2
    question = suites["object_recognition"].question(0)
    assert question.query in words and len(question.stimuli) == 4
    assert all(im.shape == (SIZE, SIZE, 3) and im.dtype == np.uint8 for im in question.stimuli)
    movie = suites["permanence"].question(0).stimuli
    assert len(movie) == 4 and movie[0].shape == (12, SIZE, SIZE, 3)
    assert not hasattr(question, "answer") and "png" not in repr(question)


def test_png_round_trip_through_ffmpeg(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(encode_png(img))
    assert np.array_equal(read_png(tmp_path / "x.png"), img)
    with pytest.raises(ValueError, match="bad.png"):
        (tmp_path / "bad.png").write_bytes(b"not a png")
        read_png(tmp_path / "bad.png")


def test_only_held_out_instances(probes):
    seen = set()
    for name in ("object_recognition", "word_referent", "counting", "left_right", "gaze"):
        for frame in _json(probes / name / "truth.json").values():
            seen |= {o["instance"] for o in frame["objects"]}
    for status in (probes / "permanence").rglob("status.json"):
        for frame in _json(status)["frames"]:
            seen |= {o["instance"] for o in frame["objects"]}
    assert seen and seen <= set(PROBE_INSTANCES) and not seen & set(TRAIN_INSTANCES)


def test_answers_are_balanced(probes, suites):
    for name in ("object_recognition", "word_referent"):
        pos = np.bincount([t.answer for t in suites[name].trials], minlength=4)
        assert (pos == N // 4).all(), (name, pos)
    assert (np.bincount([t.answer for t in suites["counting"].trials]) == N // 5).all()
    assert (np.bincount([t.answer for t in suites["left_right"].trials]) == N // 2).all()
    assert (np.bincount([t.answer for t in suites["gaze"].trials]) == N // 3).all()
    for name in ("object_recognition", "word_referent"):
        targets = Counter(t["target_category"] for t in _json(probes / name / "trials.json")["data"])
        assert len(targets) == 24 and set(targets.values()) == {N // 24}, name


# ---- oracles reading the truth (babyfast.eval.oracle: from the truth files, never the answer key) ------


def _safe(respond):
    def r(q):
        a = respond(q)
        return 0 if a == -1 else a
    return r


@pytest.mark.parametrize("name", SUITES)
def test_oracle_reading_the_truth_scores_99(probes, suites, name):
    s = score(suites[name], _safe(oracle(probes, name)))
    assert s.accuracy >= 0.99, s


# ---- chance responders ---------------------------------------------------------------------------------


def _n_choices(q):
    return len(q.choices)


@pytest.mark.parametrize("name", SUITES)
def test_constant_and_random_responders_score_chance(suites, name):
    s = suites[name]
    if s.judge == "relative":
        const = score(s, lambda q: [0.0] * 4)
        assert const.accuracy == 0.5
        fixed = score(s, lambda q: [1.0, 1.0, 0.0, 0.0])  # "the first two movies are the possible ones"
        assert fixed.chance_range[0] <= fixed.accuracy <= fixed.chance_range[1], fixed
    else:
        for k in range(len(s.trials[0].choices)):
            const = score(s, lambda q, k=k: k)
            assert math.isclose(const.accuracy, s.chance), (k, const)
    rng = np.random.default_rng(123)
    if s.judge == "relative":
        rnd = score(s, lambda q: rng.random(4))
    else:
        rnd = score(s, lambda q: int(rng.integers(_n_choices(q))))
    assert rnd.chance_range[0] <= rnd.accuracy <= rnd.chance_range[1], rnd
    assert not rnd.above_chance


def _mean(im):
    return im.reshape(-1, 3).astype(np.float64).mean(0)


_IMAGE_CUES = {
    "brightest": lambda im: _mean(im).sum(),
    "darkest": lambda im: -_mean(im).sum(),
    "most saturated": lambda im: float((im.max(2).astype(int) - im.min(2)).mean()),
    "most contrast": lambda im: float(im.astype(np.float64).std()),
    "most edges": lambda im: float(np.abs(np.diff(im.astype(np.int16), axis=1)).mean()),
    "reddest": lambda im: _mean(im)[0] - _mean(im)[1:].mean(),
    "salient centre": lambda im: float(np.abs(_mean(im[16:48, 16:48]) - _mean(im)).sum()),
}


@pytest.mark.parametrize("name", ["object_recognition", "word_referent"])
@pytest.mark.parametrize("cue", list(_IMAGE_CUES) + ["odd one out"])
def test_target_frame_is_not_given_away_by_image_statistics(suites, name, cue):
    def respond(q):
        if cue == "odd one out":
            means = np.array([_mean(im) for im in q.stimuli])
            return int(np.argmax([np.abs(means[k] - np.delete(means, k, 0).mean(0)).sum() for k in range(4)]))
        return int(np.argmax([_IMAGE_CUES[cue](im) for im in q.stimuli]))
    s = score(suites[name], respond)
    assert s.chance_range[0] <= s.accuracy <= s.chance_range[1], (cue, s)


@pytest.mark.parametrize("cue", list(_IMAGE_CUES))
def test_side_is_not_given_away_by_image_statistics(suites, cue):
    half = SIZE // 2
    s = score(suites["left_right"], lambda q: int(_IMAGE_CUES[cue](q.stimuli[0][:, half:]) >
                                                    _IMAGE_CUES[cue](q.stimuli[0][:, :half])))
    assert s.chance_range[0] <= s.accuracy <= s.chance_range[1], (cue, s)


def _features(im):
    return np.concatenate([_mean(im), [im.astype(np.float64).std(), float((im.max(2).astype(int) - im.min(2)).mean())]])


def test_count_is_not_given_away_by_colour_or_contrast(suites):
    s = suites["counting"]
    feats = np.array([_features(s.question(i).stimuli[0]) for i in range(len(s))])
    labels = np.array([t.answer for t in s.trials])
    train = np.arange(len(s)) % 2 == 0
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-9
    z = (feats - mu) / sd
    centroids = np.array([z[train & (labels == k)].mean(0) for k in range(5)])
    test_idx = np.flatnonzero(~train)
    pred = {int(i): int(np.argmin(((centroids - z[i]) ** 2).sum(1))) for i in test_idx}
    r = score(s, lambda q: pred[int(q.trial_id.split("/")[1])], trials=list(test_idx))
    assert r.chance_range[0] <= r.accuracy <= r.chance_range[1], r


_BOX_CUES = {
    "nearest the face": lambda b: -math.hypot((b[0] + b[2]) / 2 - SIZE / 2, (b[1] + b[3]) / 2 - 0.23 * SIZE),
    "largest": lambda b: (b[2] - b[0]) * (b[3] - b[1]),
    "leftmost": lambda b: -(b[0] + b[2]),
    "lowest": lambda b: b[1] + b[3],
    "most central": lambda b: -math.hypot((b[0] + b[2]) / 2 - SIZE / 2, (b[1] + b[3]) / 2 - SIZE / 2),
}


@pytest.mark.parametrize("cue", list(_BOX_CUES) + ["brightest"])
def test_gaze_target_is_not_given_away_by_layout(suites, cue):
    def respond(q):
        if cue == "brightest":
            im = q.stimuli[0]
            return int(np.argmax([_mean(im[b[1]:b[3], b[0]:b[2]]).sum() for b in q.choices]))
        return int(np.argmax([_BOX_CUES[cue](b) for b in q.choices]))
    s = score(suites["gaze"], respond)
    assert s.chance_range[0] <= s.accuracy <= s.chance_range[1], (cue, s)


# ---- permanence: no single frame separates possible from impossible ------------------------------------


def _h(a: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()


def test_permanence_movies_are_built_from_the_same_frames(suites):
    s = suites["permanence"]
    for i, t in enumerate(s.trials):
        movies = s.question(i).stimuli
        assert len({_h(m[0]) for m in movies}) == 1, f"{t.id}: first frames differ"
        assert len({_h(m[-1]) for m in movies}) == 1, f"{t.id}: last frames differ"
        possible = sorted(_h(f) for k in t.answer for f in movies[k])
        impossible = sorted(_h(f) for k in range(4) if k not in t.answer for f in movies[k])
        assert possible == impossible, f"{t.id}: possible and impossible movies use different frames"
        assert len({_h(m) for m in movies}) == 4


def test_permanence_single_frame_statistics_are_at_chance(probes, suites):
    s = suites["permanence"]
    movies = {t.id: s.question(i).stimuli for i, t in enumerate(s.trials)}  # decode once
    T = 12
    for t in (0, 3, 6, 9, T - 1):
        r = score(s, lambda q, t=t: [float(m[t].mean()) for m in movies[q.trial_id]])
        assert r.accuracy == 0.5, (t, r)
        r = score(s, lambda q, t=t: [_mean(m[t])[0] - _mean(m[t])[2] for m in movies[q.trial_id]])
        assert r.accuracy == 0.5, (t, r)

        def count(q, t=t):
            qdir = probes / "permanence" / "O1" / q.trial_id.split("/")[1]
            return [float(sum(o["visibility"] > 0 for o in _status(qdir / m / "status.json")["frames"][t]["objects"]))
                    for m in q.choices]
        assert score(s, count).accuracy == 0.5, t
    r = score(s, lambda q: [-float(np.abs(m[0].astype(int) - m[-1]).mean()) for m in movies[q.trial_id]])
    assert r.accuracy == 0.5, r


def _reveal(movies: np.ndarray, half: slice) -> tuple[int, np.ndarray]:
    """The frame of a half where the four movies differ most (the screen up), and where they differ."""
    frames = movies[:, half]
    differ = (frames != frames[:1]).any(axis=(0, 4))  # (t, H, W): some movie differs from the first
    t = int(np.argmax(differ.sum(axis=(1, 2))))
    return half.start + t, differ[t]


def test_permanence_is_solvable_from_the_pixels(suites):
    """No truth: a movie is possible when the pixels behind the screen show the same thing (the toy, or
    the empty floor) at the first reveal and at the second."""
    s = suites["permanence"]
    T = 12

    def respond(q):
        movies = np.stack(q.stimuli)  # (4, T, H, W, 3)
        (t0, d0), (t1, d1) = _reveal(movies, slice(0, T // 2)), _reveal(movies, slice(T // 2, T))
        where = d0 & d1  # what the movies disagree on in both reveals: the spot behind the screen
        assert where.any(), q.trial_id
        return [-float(np.abs(m[t0][where].astype(int) - m[t1][where]).mean()) for m in movies]
    r = score(s, respond)
    assert r.accuracy == 1.0, r


# ---- scoring helpers and CLI ---------------------------------------------------------------------------


def test_scoring_helpers():
    lo, hi = wilson_interval(50, 100)
    assert abs(lo - 0.4038) < 1e-4 and abs(hi - 0.5962) < 1e-4
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and abs(hi - 0.2775) < 1e-4
    # exact binomial tails, summed independently
    n, p = 100, 0.5
    cdf = np.cumsum([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)])
    want = (np.searchsorted(cdf, 0.025) / n, np.searchsorted(cdf, 0.975) / n)
    assert chance_interval(p, n) == want == (0.40, 0.60)


def test_bad_responses_name_the_trial(suites):
    with pytest.raises(ValueError, match="counting/0"):
        score(suites["counting"], lambda q: 7)
    with pytest.raises(ValueError, match="counting/0"):
        score(suites["counting"], lambda q: "three")
    with pytest.raises(ValueError, match="permanence/0001"):
        score(suites["permanence"], lambda q: [1.0, 2.0])


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        load_suite(tmp_path)
    (tmp_path / "trials.json").write_text("{not json")
    with pytest.raises(ValueError, match="trials.json"):
        load_suite(tmp_path)


def test_cli(tmp_path, capsys, caplog):
    from babyfast.cli import main

    with pytest.raises(SystemExit) as e:
        main(["synth-probes", "--help"])
    assert e.value.code == 0 and "--trials" in capsys.readouterr().out
    out = tmp_path / "p"
    assert main(["synth-probes", str(out), "--suites", "counting", "gaze", "--trials", "12", "--size", "32",
                 "--workers", "1", "--no-progress"]) == 0
    assert set(load_suites(out)) == {"counting", "gaze"}
    assert main(["synth-probes", str(out), "--suites", "telepathy", "--no-progress"]) == 2
    assert "telepathy" in caplog.text


def test_gaze_is_drawn_in_the_eyes():
    """The pupils (the only dark pixels of a light-haired face) move toward where the face looks."""
    from babyfast.synth._people import GAZE_CAMERA, PersonStyle, face_sprite
    from babyfast.synth._sprites import size_bucket

    style = PersonStyle(skin=(0.9, 0.75, 0.62), hair=(0.95, 0.85, 0.5), long_hair=False, shirt=(0.2, 0.4, 0.8),
                        iris=(0.2, 0.3, 0.5))

    def pupils(bucket):
        sp = face_sprite(style, size_bucket(96), bucket)
        colour = sp.prem.sum(2) / np.maximum(256 - sp.inv[..., 0].astype(np.float64), 1)
        ys, xs = np.nonzero((colour < 3 * 60) & (sp.alpha > 0.99))
        return xs.mean() + sp.ox, ys.mean() + sp.oy

    x0, y0 = pupils(GAZE_CAMERA)
    assert abs(x0) < 2 and abs(y0 - (-0.05 * 48)) < 4  # centred pupils, slightly above the face centre
    assert pupils(0)[0] > x0 + 3 and pupils(8)[0] < x0 - 3  # right, left (16 buckets from +x)
    assert pupils(4)[1] > y0 + 2 and pupils(12)[1] < y0 - 2  # down, up


# ---- what OUT may hold, and what a rewrite deletes ----------------------------------------------------

TINY = {"size": 32, "trials": 8, "quads": 1, "movie_frames": 12, "seed": 0, "workers": 1, "progress": False}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rewriting_suites_deletes_only_listed_suites(tmp_path):
    out = tmp_path / "p"
    write_probes(out, suites=["counting", "gaze"], **TINY)
    before = _tree(out)
    # a bad argument is refused before anything is touched
    for bad in ({"workers": 0}, {"trials": 2}, {"suites": ["telepathy"]}, {"size": 33}, {"movie_frames": 13}):
        with pytest.raises(ValueError):
            write_probes(out, **{**TINY, **bad})
        assert _tree(out) == before, bad
    # anything in OUT that the manifest does not list is not ours: refused, named, left alone
    for name in ("notes.txt", "left_right"):
        (out / name).mkdir() if name == "left_right" else (out / name).write_text("mine")
        with pytest.raises(FileExistsError, match=str(out / name)):
            write_probes(out, suites=["counting"], **TINY)
        assert (out / name).exists()
        (out / name).rmdir() if name == "left_right" else (out / name).unlink()
        assert _tree(out) == before
    # suites kept beside new ones must match them
    with pytest.raises(ValueError, match="mix"):
        write_probes(out, suites=["counting"], **{**TINY, "size": 48})
    assert _tree(out) == before
    # rewriting one suite replaces its folder and keeps the other
    manifest = write_probes(out, suites=["counting"], **{**TINY, "trials": 10})
    assert set(manifest["suites"]) == {"counting", "gaze"} and "pending" not in manifest
    assert manifest["suites"]["counting"]["trials"] == 10 and len(load_suite(out, "counting")) == 10
    assert {k: v for k, v in _tree(out).items() if k.startswith("gaze/")} == \
        {k: v for k, v in before.items() if k.startswith("gaze/")}
    assert _json(out / "probes.json") == manifest
    # all suites at another size: nothing of the old ones is kept, so nothing mixes
    manifest = write_probes(out, suites=["counting", "gaze"], **{**TINY, "size": 48})
    assert manifest["width"] == 48 and set(manifest["suites"]) == {"counting", "gaze"}


def test_a_folder_with_other_files_is_refused(tmp_path):
    out = tmp_path / "mine"
    (out / "gaze").mkdir(parents=True)  # looks like a suite, but no manifest says it is ours
    (out / "gaze" / "keep.png").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=str(out / "gaze")):
        write_probes(out, suites=["gaze"], **TINY)
    assert (out / "gaze" / "keep.png").read_bytes() == b"precious" and sorted(os.listdir(out)) == ["gaze"]


def test_an_interrupted_run_is_listed_and_cleared(tmp_path):
    """The manifest lists the suites being written before their folders exist."""
    out = tmp_path / "p"
    write_probes(out, suites=["counting"], **TINY)
    doc = _json(out / "probes.json")
    doc["pending"] = ["left_right"]  # as a run that died while writing left_right leaves it
    (out / "probes.json").write_text(json.dumps(doc))
    (out / "left_right" / "frames").mkdir(parents=True)
    (out / "left_right" / "frames" / "0000.png").write_bytes(b"half")
    manifest = write_probes(out, suites=["counting"], **TINY)
    assert set(manifest["suites"]) == {"counting"} and sorted(os.listdir(out)) == ["counting", "probes.json",
                                                                                   "vocab.csv"]
