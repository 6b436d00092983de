"""The real-benchmark adapters on small stand-ins written here in each benchmark's layout (JPEG frames from
PyAV's encoder, PNG from the project's writer): trials, answers, groups and labels; every malformed input
a clear error naming the file; and `babyfast eval` of a tiny checkpoint scoring the adapter suites."""
from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from _media import scene
from _train import babyfast, make_store, tiny

from babyfast.eval.adapters import ADAPTERS
from babyfast.eval.adapters.model_vs_baby import CATEGORIES, CONDITIONS
from babyfast.synth.png import write_png

CATS = ["ball", "car", "cat", "duck"]


def _jpeg(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("mjpeg")
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "yuvj420p"
        for p in [*s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")), *s.encode()]:
            c.mux(p)
    return path


def _png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_png(path, img)


# ------------------------------------------------------------------------------------ stand-ins
def labeled_s(root: Path, trials: int = 8) -> Path:
    """CVCL's layout: eval/dev/<category>/*.jpg and eval_dev.json with the authors' absolute paths."""
    for c, cat in enumerate(CATS):
        for k in range(3):
            _jpeg(root / "eval" / "dev" / cat / f"img_{k}.jpg", scene(10 * c + k, 24, 32))
    far = "/misc/lab/shared_data/S_multimodal/eval/dev"  # not on this machine: found by trailing components
    data = []
    for i in range(trials):
        target = CATS[i % 4]
        foils = [c for c in CATS if c != target]
        data.append({"trial_num": i // 4, "target_category": target,
                     "target_img_filename": f"{far}/{target}/img_{i % 3}.jpg", "foil_categories": foils,
                     "foil_img_filenames": [f"{far}/{c}/img_{(i + 1) % 3}.jpg" for c in foils]})
    (root / "eval_dev.json").write_text(json.dumps({"data": data}))
    return root


def two_word(root: Path) -> Path:
    rows = [("f0.jpg", "wash cup", "fill cup"), ("f1.jpg", "red ball", "blue ball"), ("f2.jpg", "open door", "close door"),
            ("f3.jpg", "eat apple", "throw apple"), ("f4.jpg", "big dog", "small dog"), ("f5.jpg", "read book", "eat book")]
    for k, (name, _, _) in enumerate(rows):
        _jpeg(root / "images" / name, scene(k, 24, 32))
    with (root / "vtwt.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("image", "positive_phrase", "negative_phrase"), *rows])
    return root


def model_vs_baby(root: Path) -> Path:
    """Flat condition folders with the category in the file name; `features/` sorted into subfolders."""
    for c, cond in enumerate(CONDITIONS):
        for k, cat in enumerate(CATEGORIES):
            for j in range(2):
                img = scene(8 * k + j, 16, 16) // (c + 1)
                name = f"{cat}/{j}.png" if cond == "features" else f"{cat.capitalize()}_{j}.png"
                _png(root / cond / name, img)
    return root


def intphys(root: Path) -> Path:
    """O1 and O2, two quadruplets each, three frames a movie; O2's status files in BabyWorld's form."""
    for block in ("O1", "O2"):
        for q in ("1", "2"):
            for m in range(1, 5):
                movie = root / block / q / str(m)
                for t in (1, 2, 10):  # scene_10 after scene_2: frames are ordered by number
                    _png(movie / "scene" / f"scene_{t}.png", scene(t + m, 16, 16))
                possible = m in ((1, 3) if q == "1" else (2, 4))
                status = {"header": {"is_possible": possible}} if block == "O1" else {"possible": possible}
                (movie / "status.json").write_text(json.dumps(status))
    return root


# ------------------------------------------------------------------------------------ the adapters
def test_labeled_s_reads_cvcl_trial_lists(tmp_path: Path) -> None:
    root = labeled_s(tmp_path / "S_multimodal")
    suite = ADAPTERS["labeled_s"](root)
    assert (suite.name, suite.judge, len(suite), suite.chance) == ("labeled_s", "choice", 8, 0.25)
    for i, t in enumerate(suite.trials):
        assert t.id == f"labeled_s/{i}" and t.query == CATS[i % 4] and t.choices == (0, 1, 2, 3)
        assert Path(t.stimuli[t.answer]) == root / "eval" / "dev" / t.query / f"img_{i % 3}.jpg"
        assert t.labels[t.answer] == t.query and sorted(t.labels) == CATS
        assert [Path(s).parent.name for s in t.stimuli] == list(t.labels)
    assert Counter(t.answer for t in suite.trials) == {0: 2, 1: 2, 2: 2, 3: 2}  # not always first, as in CVCL
    images = suite.question(0).stimuli
    assert [im.shape for im in images] == [(24, 32, 3)] * 4  # JPEG decoded
    assert ADAPTERS["labeled_s"](root / "eval_dev.json").trials == suite.trials  # the list file itself


def test_two_word_reads_the_babyvlm_item_list(tmp_path: Path) -> None:
    root = two_word(tmp_path / "vtwt")
    suite = ADAPTERS["two_word"](root)
    assert (suite.name, suite.judge, len(suite), suite.chance) == ("two_word", "choice", 6, 0.5)
    rows = list(csv.DictReader((root / "vtwt.csv").open()))
    for t, row in zip(suite.trials, rows):
        assert t.query is None and t.stimuli == (str(root / "images" / row["image"]),)
        assert t.choices[t.answer] == row["positive_phrase"] and t.choices[1 - t.answer] == row["negative_phrase"]
    assert Counter(t.answer for t in suite.trials) == {0: 3, 1: 3}
    assert suite.question(2).stimuli[0].shape == (24, 32, 3)


def test_model_vs_baby_reads_five_conditions_as_groups(tmp_path: Path) -> None:
    root = model_vs_baby(tmp_path / "mvb")
    suite = ADAPTERS["model_vs_baby"](root)
    assert (suite.name, len(suite), suite.chance) == ("model_vs_baby", 80, 1 / 8)
    assert Counter(t.group for t in suite.trials) == {c: 16 for c in CONDITIONS}
    for t in suite.trials:
        assert t.choices == CATEGORIES and t.choices[t.answer] == t.labels[0]
        assert t.labels[0] in Path(t.stimuli[0]).relative_to(root).as_posix().lower()
        assert Path(t.stimuli[0]).relative_to(root).parts[0] == t.group
    assert Counter(t.labels[0] for t in suite.trials) == {c: 10 for c in CATEGORIES}


def test_intphys_reads_blocks_of_quadruplets(tmp_path: Path) -> None:
    root = intphys(tmp_path / "dev")
    (root / "O1" / ".DS_Store").write_text("")  # stray files are not quadruplets
    suite = ADAPTERS["intphys"](root)
    assert (suite.name, suite.judge, suite.chance) == ("intphys", "relative", 0.5)
    assert [(t.id, t.group, t.answer) for t in suite.trials] == [
        ("intphys/O1/1", "O1", (0, 2)), ("intphys/O1/2", "O1", (1, 3)),
        ("intphys/O2/1", "O2", (0, 2)), ("intphys/O2/2", "O2", (1, 3))]
    movie = suite.trials[0].stimuli[1]
    assert [Path(p).name for p in movie] == ["scene_1.png", "scene_2.png", "scene_10.png"]
    assert suite.question(0).stimuli[0].shape == (3, 16, 16, 3)


# --------------------------------------------------------------------------------- malformed inputs
def _edit_json(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_labeled_s_errors_name_the_file(tmp_path: Path) -> None:
    good = labeled_s(tmp_path / "good")
    load = ADAPTERS["labeled_s"]

    def copy(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name))

    bad = copy("nolist")
    (bad / "eval_dev.json").unlink()
    with pytest.raises(ValueError, match=r"nolist: no Labeled-S trial list"):
        load(bad)
    bad = copy("two")
    shutil.copy(bad / "eval_dev.json", bad / "eval_test.json")
    with pytest.raises(ValueError, match=r"several trial lists \['eval_test.json', 'eval_dev.json'\]"):
        load(bad)
    bad = copy("json")
    (bad / "eval_dev.json").write_text('{"data": [')
    with pytest.raises(ValueError, match=r"json/eval_dev.json: cannot read Labeled-S trial list"):
        load(bad)
    bad = copy("shape")
    (bad / "eval_dev.json").write_text("[]")
    with pytest.raises(ValueError, match=r"eval_dev.json: expected CVCL's evaluation format"):
        load(bad)
    bad = copy("empty")
    (bad / "eval_dev.json").write_text('{"data": []}')
    with pytest.raises(ValueError, match=r"eval_dev.json: no trials found"):
        load(bad)
    bad = copy("key")
    _edit_json(bad / "eval_dev.json", lambda d: d["data"][3].pop("foil_categories"))
    with pytest.raises(ValueError, match=r"eval_dev.json trial 3: missing \['foil_categories'\]"):
        load(bad)
    bad = copy("frame")
    (bad / "eval" / "dev" / "cat" / "img_1.jpg").unlink()
    with pytest.raises(ValueError, match=r"eval_dev.json trial \d: image file '.*/cat/img_1.jpg' referenced but absent"):
        load(bad)
    bad = copy("folder")
    shutil.rmtree(bad / "eval" / "dev" / "duck")
    with pytest.raises(ValueError, match=r"eval_dev.json trial \d: category folder for 'duck' absent"):
        load(bad)
    bad = copy("label")
    _edit_json(bad / "eval_dev.json", lambda d: d["data"][0].update(target_category="car", foil_categories=["ball", "cat", "duck"]))
    with pytest.raises(ValueError, match=r"trial 0: .*/ball/img_0.jpg is listed as category 'car' but lies in folder 'ball'"):
        load(bad)


def test_two_word_errors_name_the_file(tmp_path: Path) -> None:
    good = two_word(tmp_path / "good")
    load = ADAPTERS["two_word"]
    with pytest.raises(ValueError, match=r"missing: Visual Two-Word Test folder not found"):
        load(tmp_path / "missing")
    bad = Path(shutil.copytree(good, tmp_path / "nocsv"))
    (bad / "vtwt.csv").unlink()
    with pytest.raises(ValueError, match=r"nocsv: no vtwt.csv"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "cols"))
    (bad / "vtwt.csv").write_text("image,positive_phrase\nf0.jpg,wash cup\n")
    with pytest.raises(ValueError, match=r"cols/vtwt.csv: missing columns \['negative_phrase'\]"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "empty"))
    (bad / "vtwt.csv").write_text("image,positive_phrase,negative_phrase\n")
    with pytest.raises(ValueError, match=r"empty/vtwt.csv: no items found"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "img"))
    (bad / "images" / "f1.jpg").unlink()
    with pytest.raises(ValueError, match=r"img/vtwt.csv line 3: image file 'f1.jpg' referenced but absent"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "blank"))
    (bad / "vtwt.csv").write_text("image,positive_phrase,negative_phrase\nf0.jpg,,fill cup\n")
    with pytest.raises(ValueError, match=r"blank/vtwt.csv line 2: 'positive_phrase' must be a non-empty string"):
        load(bad)


def test_model_vs_baby_errors_name_the_file(tmp_path: Path) -> None:
    good = model_vs_baby(tmp_path / "good")
    load = ADAPTERS["model_vs_baby"]
    bad = Path(shutil.copytree(good, tmp_path / "cond"))
    shutil.rmtree(bad / "geons")
    with pytest.raises(ValueError, match=r"cond: condition folders \['geons'\] absent"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "noname"))
    _png(bad / "blurred" / "thing_3.png", scene(0, 16, 16))
    with pytest.raises(ValueError, match=r"blurred/thing_3.png: the file name names no category"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "twice"))
    _png(bad / "realistic" / "dog_with_cup.png", scene(0, 16, 16))
    with pytest.raises(ValueError, match=r"dog_with_cup.png: the file name names several categories \['cup', 'dog'\]"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "sub"))
    _png(bad / "features" / "horse" / "0.png", scene(0, 16, 16))
    with pytest.raises(ValueError, match=r"features/horse: not a category folder"):
        load(bad)
    bad = Path(shutil.copytree(good, tmp_path / "none"))
    shutil.rmtree(bad / "silhouette")
    (bad / "silhouette").mkdir()
    with pytest.raises(ValueError, match=r"none/silhouette: no images"):
        load(bad)


def test_intphys_errors_name_the_file(tmp_path: Path) -> None:
    good = intphys(tmp_path / "good")
    load = ADAPTERS["intphys"]

    def copy(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name))

    with pytest.raises(ValueError, match=r"empty: no IntPhys block folder \['O1', 'O2', 'O3'\]"):
        (tmp_path / "empty").mkdir()
        load(tmp_path / "empty")
    bad = copy("three")
    shutil.rmtree(bad / "O2" / "2" / "4")
    with pytest.raises(ValueError, match=r"three/O2/2: a quadruplet holds 4 movies \['1', '2', '3', '4'\], found \['1', '2', '3'\]"):
        load(bad)
    bad = copy("poss")
    _edit_json(bad / "O1" / "2" / "1" / "status.json", lambda d: d["header"].update(is_possible=True))
    with pytest.raises(ValueError, match=r"poss/O1/2: 3 of its movies are possible \(\['1', '2', '4'\]\)"):
        load(bad)
    bad = copy("json")
    (bad / "O1" / "1" / "3" / "status.json").write_text("{")
    with pytest.raises(ValueError, match=r"json/O1/1/3/status.json: cannot read movie status"):
        load(bad)
    bad = copy("key")
    (bad / "O1" / "1" / "3" / "status.json").write_text('{"header": {}}')
    with pytest.raises(ValueError, match=r"key/O1/1/3/status.json: no header.is_possible"):
        load(bad)
    bad = copy("nostatus")
    (bad / "O2" / "1" / "2" / "status.json").unlink()
    with pytest.raises(ValueError, match=r"nostatus/O2/1/2/status.json: movie status not found"):
        load(bad)
    bad = copy("frames")
    shutil.rmtree(bad / "O1" / "2" / "4" / "scene")
    with pytest.raises(ValueError, match=r"frames/O1/2/4/scene: no scene frames"):
        load(bad)
    bad = copy("noquads")
    for q in (bad / "O2").iterdir():
        shutil.rmtree(q)
    with pytest.raises(ValueError, match=r"noquads/O2: no quadruplet folders found"):
        load(bad)


# ------------------------------------------------------------------------------------- end to end
def test_babyfast_eval_scores_the_adapter_suites(tmp_path: Path) -> None:
    from babyfast.train import load_config, train

    run = tmp_path / "run"
    train(load_config(None, tiny(make_store(tmp_path), run, "train.steps=2")))
    suites = {"--labeled-s": labeled_s(tmp_path / "ls"), "--model-vs-baby": model_vs_baby(tmp_path / "mvb"),
              "--intphys": intphys(tmp_path / "dev")}
    out = tmp_path / "eval"
    args = [a for flag, folder in suites.items() for a in (flag, str(folder))]
    r = babyfast("eval", str(run), "--suites", *args, "--out", str(out), "--headline", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {r["suite"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert set(rows) == {"labeled_s", "model_vs_baby", "intphys"}
    assert (rows["labeled_s"]["protocol"], rows["labeled_s"]["n"]) == ("linear probe", 8)  # all, cross-fitted
    assert (rows["model_vs_baby"]["n"], rows["model_vs_baby"]["chance"]) == (40, 1 / 8)
    assert (rows["intphys"]["protocol"], rows["intphys"]["n"]) == ("VoE surprise", 4)
    for name, groups in (("model_vs_baby", set(CONDITIONS)), ("intphys", {"O1", "O2"})):
        g = rows[name]["groups"]
        assert set(g) == groups and sum(x["n"] for x in g.values()) == rows[name]["n"]
        assert all("random-init" in x["controls"] for x in g.values())
    assert not rows["labeled_s"]["groups"]
    card = (out / "report.md").read_text()
    assert "| object recognition (ModelVsBaby) | linear probe | 40 |" in card and "| ↳ realistic |" in card
    assert "| ↳ O2 |" in card

    shutil.rmtree(suites["--intphys"] / "O1" / "2" / "3")
    r = babyfast("eval", str(run), "--suites", "--intphys", str(suites["--intphys"]), timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{suites['--intphys']}/O1/2: a quadruplet holds 4 movies" in r.stderr


def test_a_contrastive_model_chooses_between_the_two_phrases(tmp_path: Path) -> None:
    """Random weights of a real contrastive architecture: the protocol picks the phrase whose text
    embedding is closer to the frame's, and the suite is scored with its random-init control."""
    import torch

    from babyfast.eval.features import EvalModel, _eval_objective
    from babyfast.eval.protocols import contrastive_choice
    from babyfast.eval.run import evaluate
    from babyfast.train import load_config
    from babyfast.train.build import build_objective
    from babyfast.train.vocab import build_vocabulary

    suite = ADAPTERS["two_word"](two_word(tmp_path / "vtwt"))
    cfg = load_config(None, [*tiny(tmp_path / "unused", tmp_path / "run"), "objective=contrastive",
                             "data.anchor=utterance", "contrastive.embed_dim=32", "contrastive.text_dim=32"])
    vocab = build_vocabulary([p for t in suite.trials for p in t.choices])
    model = EvalModel("trained", _eval_objective(build_objective(cfg, vocab), torch.device("cpu")), cfg)
    ts = contrastive_choice(model, suite, seed=0)
    for t, s in zip(suite.trials, ts.scores):
        frame = model.video_embeddings(suite.question(int(t.id.split("/")[1])).stimuli)[0]
        closer = int(np.argmax(model.text_embeddings(list(t.choices)) @ frame))
        assert s == float(closer == t.answer)
    ev = evaluate(None, extra={"two_word": suite}, model=model, progress=False)
    (row,) = ev.rows
    assert (row.suite, row.protocol, row.n, row.chance) == ("two_word", "contrastive choice", 6, 0.5)
    assert "random-init" in row.controls and row.milestone == "word–referent (Visual Two-Word)"
