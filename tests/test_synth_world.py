"""BabyWorld corpus: layout that ingest reads, determinism, truth against pixels, age effects, CLI.

Decoding goes through PyAV (FFmpeg's decoders), independent of the renderer; truth is checked against
pixel differences; utterances against the truth of the frame they start on.
"""
from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import av
import numpy as np
import pytest

from babyfast.synth import CATEGORIES, TRAIN_INSTANCES, load_truth, read_vocabulary, write_corpus
from babyfast.synth.children import AgeModel, child_world
from babyfast.synth.compose import compose
from babyfast.synth.corpus import parse_size, plan_corpus, render_recording
from babyfast.synth.sprites import size_bucket
from babyfast.synth.toys import toy_sprite
from babyfast.synth.world import Recording, RecordingSpec

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
        f = int(u["start"] * spec.fps)
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
