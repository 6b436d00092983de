"""BabyWorld corpus: layout that ingest reads, determinism, truth against pixels, age effects, CLI.

Decoding goes through PyAV (FFmpeg's decoders), independent of the renderer; truth is checked against
pixel differences; utterances against the truth of the frame they start on.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import stat
import time
from pathlib import Path

import av
import numpy as np
import pytest

from babyfast.synth import (
    CATEGORIES,
    TRAIN_INSTANCES,
    load_truth,
    read_vocabulary,
    write_corpus,
)
from babyfast.synth._children import AgeModel, child_world
from babyfast.synth._compose import compose
from babyfast.synth.corpus import parse_size, plan_corpus, render_recording
from babyfast.synth._sprites import ANGLE_BUCKETS, size_bucket
from babyfast.synth._toys import toy_sprite
from babyfast.synth.world import CHILD, Recording, RecordingSpec

VIDEO_EXT = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
KW = dict(children=2, hours=2 * 8.0 / 3600, size="64x48", fps=10, seed=0, recording_minutes=4.0 / 60,
          progress=False)


def decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "c"
    return write_corpus(out, workers=1, **KW)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_layout_is_what_ingest_reads(corpus):
    root = corpus.root
    ids = sorted(r.video for r in corpus.recordings)
    assert ids == ["child0_rec000", "child0_rec001", "child1_rec000", "child1_rec001"]
    videos = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXT)
    assert [p.parent for p in videos] == [root] * 4, "videos must lie flat in OUT"
    assert sorted(p.stem for p in videos) == ids
    assert all(p.suffix == ".mp4" for p in videos)
    with open(root / "ages.csv") as f:
        assert f.readline().strip() == "video,subject,age_days"
    ages = read_csv(root / "ages.csv")
    assert sorted(a["video"] for a in ages) == ids
    for a in ages:
        assert a["subject"] == a["video"].split("_")[0]
        assert 60 <= int(a["age_days"]) <= 1100
    by = {a["video"]: int(a["age_days"]) for a in ages}
    assert by["child0_rec001"] > by["child0_rec000"] and by["child1_rec001"] > by["child1_rec000"]
    with open(root / "utterances.csv") as f:
        assert f.readline().strip() == "video,start,end,text"
    for u in read_csv(root / "utterances.csv"):
        assert u["video"] in ids
        assert 0 <= float(u["start"]) < float(u["end"]) <= 4.0 + 1e-6
        assert u["text"]
    assert read_vocabulary(root) == [c.word for c in CATEGORIES]
    for i in ids:
        assert (root / "truth" / f"{i}.npz").is_file()


def test_videos_decode_with_expected_shape(corpus):
    for r in corpus.recordings:
        with av.open(r.path) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == "h264"
            assert st.codec_context.pix_fmt == "yuv420p"
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(st)]
        assert len(frames) == 40 == r.frames
        assert frames[0].shape == (48, 64, 3)
        t = load_truth(corpus.root / "truth" / f"{r.video}.npz")
        assert len(t.camera) == 40 and t.meta["frames"] == 40 and t.meta["age_days"] == r.age_days


def test_deterministic_by_seed_and_independent_of_workers(corpus, tmp_path):
    again = write_corpus(tmp_path / "again", workers=2, **KW)
    assert tree_digests(again.root) == tree_digests(corpus.root)
    other = write_corpus(tmp_path / "other", workers=1, **{**KW, "seed": 1})
    for r in corpus.recordings:
        a = decode(r.path)[5]
        b = decode(other.root / Path(r.path).name)[5]
        assert np.abs(a.astype(int) - b).mean() > 5, f"{r.video}: seeds 0 and 1 look alike"
    c0 = decode(corpus.root / "child0_rec000.mp4")[5]
    c1 = decode(corpus.root / "child1_rec000.mp4")[5]
    assert np.abs(c0.astype(int) - c1).mean() > 5, "two children's recordings look alike"


def test_decoded_video_matches_render(tmp_path):
    # an old child (no blur): the decoded video must be the rendered frames up to coding loss
    spec = RecordingSpec("child0_rec000", 5, 0, 0, 3.0, 10, 96, 96, age_days=800.0)
    render_recording(spec, tmp_path)
    raw = list(Recording(spec).frames())
    dec = decode(tmp_path / "child0_rec000.mp4")
    assert len(dec) == len(raw) == 30
    for a, b in zip(raw, dec):
        mse = np.mean((a.astype(np.float64) - b) ** 2)
        assert 10 * math.log10(255**2 / mse) > 28


def test_truth_matches_pixels():
    """Boxes and visibility agree with the pixels a toy actually changes in the frame."""
    spec = RecordingSpec("t", 2, 1, 0, 20.0, 10, 128, 96, age_days=400.0)
    rec = Recording(spec)
    checked = partial = 0
    for i, frame in enumerate(rec.frames()):
        if i % 3:
            continue
        bg, layers, gain = rec.last_scene
        empty, _ = compose(bg, [], gain, measure=False)
        rows = rec.truth.table("toys")
        for row in rows[(rows["frame"] == i) & (rows["visibility"] > 0.05)]:
            track = int(row["track"])
            (layer,) = [ly for ly in layers if ly.track == track]
            without, _ = compose(bg, [ly for ly in layers if ly.track != track], gain, measure=False)
            alone, _ = compose(bg, [layer], gain, measure=False)
            changed = np.any(frame != without, axis=2)
            footprint = np.count_nonzero(np.any(alone != empty, axis=2))
            if footprint < 100:
                continue
            ys, xs = np.nonzero(changed)
            assert len(ys), f"frame {i}: toy {track} has visibility {row['visibility']} but changes no pixel"
            x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
            assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1, (i, track)
            # visibility counts the whole sprite; the pixel count sees only the part inside the frame
            inside = _inside_mass(layer, frame.shape) / layer.sprite.mass
            expected = row["visibility"] / max(inside, 1e-6)
            assert abs(changed.sum() / footprint - expected) < 0.1, (i, track, changed.sum() / footprint, expected)
            checked += 1
            partial += row["visibility"] < 0.9
    assert checked > 20 and partial > 0, (checked, partial)


def _inside_mass(layer, shape) -> float:
    h, w = shape[:2]
    sp = layer.sprite
    y0, x0 = layer.y + sp.oy, layer.x + sp.ox
    a = sp.alpha[max(0, -y0):max(0, h - y0), max(0, -x0):max(0, w - x0)]
    return float(a.sum())


def test_truth_contents(corpus):
    for r in corpus.recordings:
        t = load_truth(corpus.root / "truth" / f"{r.video}.npz")
        toys = t.toys
        assert set(np.unique(toys["instance"])) <= set(TRAIN_INSTANCES), "a probe instance leaked into training"
        assert (toys["category"] >= 0).all() and (toys["category"] < len(CATEGORIES)).all()
        assert ((toys["visibility"] >= 0) & (toys["visibility"] <= 1)).all()
        vis = toys[toys["visibility"] > 0]
        assert (vis["x0"] >= 0).all() and (vis["x1"] <= 64).all() and (vis["y0"] >= 0).all() and (vis["y1"] <= 48).all()
        assert (vis["x0"] < vis["x1"]).all() and (vis["y0"] < vis["y1"]).all()
        for f in range(0, 40, 7):
            face = t.at("faces", f)
            assert len(face) == 1
            g = int(face["gaze_track"][0])
            assert g == -1 or g in set(t.at("toys", f)["track"].tolist())
        assert t.meta["video"] == r.video and t.meta["categories"] == [c.word for c in CATEGORIES]


def test_toy_box_covers_all_categories():
    for child in range(3):
        home = child_world(0, child)
        assert {c for c, _ in home.toy_box} == set(range(len(CATEGORIES)))
        assert {i for _, i in home.toy_box} <= set(TRAIN_INSTANCES)
    assert len(CATEGORIES) >= 20


def test_categories_have_distinct_shapes():
    masks = {}
    for c in CATEGORIES:
        sp = toy_sprite(c.id, 0, size_bucket(48), 0)
        m = np.zeros((90, 90), bool)
        h, w = sp.shape
        m[80 + sp.oy:80 + sp.oy + h, 45 + sp.ox:45 + sp.ox + w] = sp.alpha > 0.5
        masks[c.word] = m
    for a in masks:
        for b in masks:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.9, f"{a} and {b} have nearly the same silhouette (IoU {iou:.2f})"
    # instances of a category differ in colour
    for c in CATEGORIES:
        cols = [toy_sprite(c.id, i, size_bucket(32), 0).prem.reshape(-1, 3).sum(0) for i in range(8)]
        assert len({tuple(np.round(x / 1e5)) for x in cols}) > 2, c.word


def test_utterances_follow_the_truth():
    spec = RecordingSpec("u", 7, 0, 0, 150.0, 10, 32, 32, age_days=300.0)
    rec = Recording(spec)
    for _ in rec.frames():
        pass
    toys = rec.truth.table("toys")
    kinds = {"in_view": 0, "absent": 0, "none": 0}
    words = {c.word for c in CATEGORIES}
    for u in rec.utterances:
        kinds[u["kind"]] += 1
        f = math.floor(u["start"] * spec.fps + 1e-6)  # the frame on screen at the start, as written
        rows = toys[toys["frame"] == f]
        if u["kind"] == "in_view":
            assert u["word"] in words and u["word"] in u["text"]
            hit = rows[(rows["category"] == u["category"]) & (rows["track"] == u["referent_track"])]
            assert len(hit) == 1 and hit["visibility"][0] >= 0.5
        elif u["kind"] == "absent":
            assert u["word"] in u["text"]
            assert not ((rows["category"] == u["category"]) & (rows["visibility"] > 0)).any()
        else:
            assert not any(w in u["text"].replace("!", " ").replace("?", " ").split() for w in words)
    n = sum(kinds.values())
    assert n > 20
    assert kinds["in_view"] / n > 0.5, kinds
    assert (kinds["absent"] + kinds["none"]) / n > 0.1, kinds


def _camera_stats(age: float) -> tuple[float, float]:
    """(peak head-turn speed, share of head-motion power above 2 Hz) of a 90 s recording's camera."""
    spec = RecordingSpec("a", 11, 0, 0, 90.0, 10, 32, 32, age_days=age)
    rec = Recording(spec)
    for _ in rec.frames():
        pass
    cam = rec.truth.table("camera")
    cut = np.diff(cam["episode"]) != 0  # a new episode is a cut, not a head movement
    smooth, high = [], []
    for axis in ("cx", "cy"):
        v = np.diff(cam[axis].astype(np.float64))
        v[cut] = 0.0
        smooth.append(np.convolve(v, np.ones(5) / 5, "same"))  # 0.5 s: turns, not wobble
        power = np.abs(np.fft.rfft(v - v.mean())) ** 2
        high.append(power[np.fft.rfftfreq(len(v), 1 / spec.fps) > 2.0].sum() / power.sum())
    return float(np.percentile(np.hypot(*smooth), 99)), float(np.mean(high))


def test_motion_statistics_change_with_age():
    young, old = _camera_stats(100.0), _camera_stats(700.0)
    assert old[0] > young[0] * 1.2, f"older children should turn their heads faster: {young} vs {old}"
    assert young[1] > old[1] * 2, f"younger children's heads should wobble more: {young} vs {old}"
    assert AgeModel(90).blur_sigma > AgeModel(180).blur_sigma > AgeModel(365).blur_sigma > AgeModel(720).blur_sigma


def _sharpness(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean())


def test_acuity_blur_depends_on_age(tmp_path):
    ratios = {}
    for age in (90.0, 800.0):
        spec = RecordingSpec(f"child0_rec{int(age):03d}", 4, 0, 0, 1.0, 10, 128, 128, age_days=age)
        render_recording(spec, tmp_path)
        raw = list(Recording(spec).frames())
        dec = decode(tmp_path / f"{spec.video_id}.mp4")
        ratios[age] = np.mean([_sharpness(d) / _sharpness(r) for d, r in zip(dec, raw)])
    assert ratios[90.0] < 0.8 * ratios[800.0], ratios


def test_camera_like_recording_and_gop(tmp_path):
    spec = RecordingSpec("cam", 0, 0, 0, 1.0, 30, 640, 480, age_days=500.0)
    render_recording(spec, tmp_path / "a")
    with av.open(str(tmp_path / "a" / "cam.mp4")) as c:
        st = c.streams.video[0]
        assert (st.codec_context.width, st.codec_context.height) == (640, 480)
        assert st.average_rate == 30
        keys = [p.is_keyframe for p in c.demux(st) if p.size]
    assert len(keys) == 30 and keys[0] and not any(keys[1:]), "the encoder's default GOP is longer than 30"
    spec = RecordingSpec("gop", 0, 0, 0, 2.0, 10, 64, 64, age_days=500.0)
    render_recording(spec, tmp_path / "b", gop=5)
    with av.open(str(tmp_path / "b" / "gop.mp4")) as c:
        keys = [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size]
    assert [i for i, k in enumerate(keys) if k] == [0, 5, 10, 15]


@pytest.mark.parametrize("codec,ext,name", [("hevc", "mp4", "hevc"), ("vp9", "webm", "vp9"), ("mjpeg", "avi", "mjpeg")])
def test_other_codecs(tmp_path, codec, ext, name):
    spec = RecordingSpec("v", 0, 0, 0, 1.0, 10, 64, 48, age_days=400.0)
    render_recording(spec, tmp_path, codec=codec)
    path = tmp_path / f"v.{ext}"
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == name
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 10 and (frames[0].width, frames[0].height) == (64, 48)


def test_plan_and_arguments():
    specs = plan_corpus(3, 0.5, 10, 256, 256, 0)
    assert len(specs) == 6 and all(s.n_frames == 3000 for s in specs)
    assert parse_size("640x480") == (640, 480) and parse_size(256) == (256, 256)
    for bad in ("33", "64x", "0", "abc"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
    with pytest.raises(ValueError, match="children"):
        plan_corpus(0, 1, 10, 64, 64, 0)


def test_refuses_to_mix_with_an_existing_corpus(corpus):
    with pytest.raises(FileExistsError, match=str(corpus.root)):
        write_corpus(corpus.root, workers=1, **KW)


def test_cli(tmp_path, capsys):
    from babyfast.cli import main

    with pytest.raises(SystemExit) as e:
        main(["synth", "--help"])
    assert e.value.code == 0 and "--children" in capsys.readouterr().out
    out = tmp_path / "cli"
    args = ["synth", str(out), "--children", "1", "--hours", str(1.5 / 3600), "--size", "32", "--workers", "1",
            "--no-progress"]
    assert main(args) == 0
    assert (out / "child0_rec000.mp4").is_file() and (out / "ages.csv").is_file()
    assert main(args) == 2
    assert main(args + ["--overwrite"]) == 0
    with pytest.raises(SystemExit) as e:
        main(["synth", str(out), "--size", "33x32"])
    assert e.value.code == 2 and "even" in capsys.readouterr().err


def test_utterance_words_come_from_the_frame_of_the_written_start():
    """A start just below a frame boundary is written rounded (2.29996 -> "2.300"): its words must come
    from frame 23, the frame "2.300" maps to, not frame 22."""
    from babyfast.synth._speech import caregiver_utterances
    from babyfast.synth.truth import DTYPES

    spec = RecordingSpec("s", 0, 0, 0, 3.0, 10, 64, 64, age_days=300.0)
    duck, ball = (next(c.id for c in CATEGORIES if c.word == w) for w in ("duck", "ball"))

    class Builder:  # two frames of truth: a duck on screen in frame 22, a ball in frame 23
        def __init__(self):
            self.spec = spec

        def table(self, name):
            if name == "toys":
                rows = [(f, track, cat, 0, 10, 10, 40, 40, 1.0, 0, -1, False)
                        for f, track, cat in ((22, 0, duck), (23, 1, ball))]
            else:
                rows = [(f, 10_000, 0, 0, 0, 0, 0.0, -1, -1, False) for f in (22, 23)]
            return np.array(rows, dtype=DTYPES[name])

    utts = caregiver_utterances(Builder(), [(2.29996, 2.8)] * 40, np.random.default_rng(0))
    named = [u for u in utts if u["kind"] == "in_view"]
    assert named and all(u["start"] == 2.3 and u["word"] == "ball" for u in named), named


def test_carried_toy_target_is_stable_within_a_frame():
    """The child's hand carrying a toy heads for one target per frame: evaluating the target of the
    step in progress again gives the same point (no fresh random offset per evaluation: no jitter)."""
    spec = RecordingSpec("c", 0, 0, 0, 60.0, 10, 32, 32, age_days=800.0)
    rec = Recording(spec)
    checked = 0
    for _ in rec.frames():
        hand = rec.hands[CHILD]
        if hand.holding is not None and hand.step is not None and hand.step[0] == "goto":
            target = hand.step[1]
            assert target() == target() == target()
            checked += 1
    assert checked > 5, "the child never carried a toy: pick another seed"


def test_sprites_of_non_spinning_toys_ignore_the_angle():
    spinning = {c.id for c in CATEGORIES if c.spins}
    assert spinning and len(spinning) < len(CATEGORIES)
    for c in CATEGORIES:
        sprites = {id(toy_sprite(c.id, 1, size_bucket(40), a)) for a in range(ANGLE_BUCKETS)}
        if c.id in spinning:
            assert len(sprites) == ANGLE_BUCKETS, c.word
        else:
            assert len(sprites) == 1, f"{c.word} does not spin but is cached once per angle"


def test_video_extensions_match_the_store():
    from babyfast.store.recording import VIDEO_EXTENSIONS as STORE
    from babyfast.synth.corpus import VIDEO_EXTENSIONS

    assert VIDEO_EXTENSIONS == STORE


# ---- what OUT may hold, and what overwrite deletes -----------------------------------------------------

SMALL = {"children": 1, "hours": 2 * 1.0 / 3600, "size": 32, "fps": 10, "seed": 0, "recording_minutes": 1.0 / 60,
         "workers": 1, "progress": False}


def test_overwrite_deletes_only_the_corpus_listed_in_world_json(tmp_path):
    out = tmp_path / "c"
    first = write_corpus(out, **SMALL)
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["complete"] and [r["path"] for r in manifest["recordings"]] == ["child0_rec000.mp4",
                                                                                    "child0_rec001.mp4"]
    before = tree_digests(out)
    # a bad argument is refused before anything is deleted
    for bad in ({"workers": 0}, {"workers": -1}, {"gop": 0}, {"hours": -1.0}, {"codec": "dv"}, {"size": 33}):
        with pytest.raises(ValueError):
            write_corpus(out, **{**SMALL, **bad, "overwrite": True})
        assert tree_digests(out) == before, bad
    # files that are not ours: refused (with overwrite too), named, and left alone
    for name in ("mine.mp4", "notes.txt", "truth/mine.npz"):
        (out / name).write_bytes(b"user data")
        with pytest.raises(FileExistsError, match=str(out / name)):
            write_corpus(out, **{**SMALL, "overwrite": True})
        assert (out / name).read_bytes() == b"user data"
        (out / name).unlink()
        assert tree_digests(out) == before
    (out / "sub").mkdir()
    with pytest.raises(FileExistsError, match=str(out / "sub")):
        write_corpus(out, **{**SMALL, "overwrite": True})
    (out / "sub").rmdir()
    # a temporary file a crashed write left behind is ours; a different codec replaces every old video
    (out / ".child0_rec001.mp4.4242.0123abcd.tmp").write_bytes(b"half a video")
    again = write_corpus(out, **{**SMALL, "codec": "mjpeg", "overwrite": True})
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ages.csv", "child0_rec000.avi", "child0_rec001.avi", "truth", "utterances.csv", "vocab.csv",
                     "world.json"], names
    assert sorted(p.name for p in (out / "truth").iterdir()) == ["child0_rec000.npz", "child0_rec001.npz"]
    assert [r.video for r in again.recordings] == [r.video for r in first.recordings]


def test_a_folder_with_other_files_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "holiday.mp4").write_bytes(b"precious")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="holiday.mp4"):
            write_corpus(out, **{**SMALL, "overwrite": overwrite})
    assert sorted(p.name for p in out.iterdir()) == ["holiday.mp4"]
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a folder"):
        write_corpus(tmp_path / "file", **SMALL)


def test_files_are_written_atomically(tmp_path):
    from babyfast._atomic import atomic_open, temp_path, temp_target, write_text

    p = tmp_path / "a.json"
    write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_open(p, "w") as f:
        f.write("new, half writ")
        raise RuntimeError("crash")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["a.json"], "a failed write must leave no trace"
    write_text(p, "new")
    assert p.read_text() == "new" and os.listdir(tmp_path) == ["a.json"]
    umask = os.umask(0o22)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, "the file gets the usual permissions"
    assert temp_target(temp_path(p).name) == "a.json"
    for name in ("a.json", ".a.json", ".a.json.tmp", ".a.json.12.zz.tmp", ".a.json.x.0123abcd.tmp"):
        assert temp_target(name) is None, name


def test_a_failed_recording_stops_the_run_at_once(tmp_path):
    """The failure is raised naming the recording, and recordings not yet started are not rendered."""
    from babyfast.synth.corpus import _render_all

    class Bar:
        def update(self, n):
            pass

    good = [RecordingSpec(f"good{k:02d}", 0, 0, k, 30.0, 10, 32, 32, age_days=400.0) for k in range(16)]
    bad = RecordingSpec("broken", 0, 0, 0, 1.0, 10, 30, 15, age_days=400.0)  # odd height: refused
    with pytest.raises(RuntimeError, match="recording broken failed.*15"):
        _render_all([good[0], bad, *good[1:3]], tmp_path / "serial", "h264", None, 1, Bar())
    assert sorted(p.name for p in (tmp_path / "serial").glob("*.mp4")) == ["good00.mp4"]
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="recording broken failed"):
        _render_all([bad, *good], tmp_path / "pool", "h264", None, 2, Bar())
    secs = time.perf_counter() - t0
    # at most the recordings already handed to the two workers (and the one queued behind) get rendered
    written = list((tmp_path / "pool").glob("*.mp4"))
    assert len(written) <= 8, f"{len(written)} of 16 recordings rendered after the failure ({secs:.1f} s)"
    assert not list((tmp_path / "pool").glob(".*.tmp")), "half-written files left behind"


def test_an_interrupted_corpus_can_be_overwritten(tmp_path, monkeypatch):
    """world.json is written before any recording, so the files of a run that died are all ours."""
    import babyfast.synth.corpus as corpus_mod

    real = corpus_mod.render_recording

    def dies_on_the_second(spec, *a, **kw):
        if spec.index == 1:
            raise KeyboardInterrupt
        return real(spec, *a, **kw)

    out = tmp_path / "c"
    monkeypatch.setattr(corpus_mod, "render_recording", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        write_corpus(out, **SMALL)
    monkeypatch.undo()
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["complete"] is False and len(manifest["recordings"]) == 2
    assert (out / "child0_rec000.mp4").is_file() and not (out / "ages.csv").exists()
    with pytest.raises(FileExistsError, match="overwrite"):
        write_corpus(out, **SMALL)
    write_corpus(out, **{**SMALL, "overwrite": True})
    assert json.loads((out / "world.json").read_text())["complete"] is True
