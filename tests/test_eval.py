"""Milestone evaluation on tiny real checkpoints of a BabyWorld corpus: every protocol, the controls, the
statistics, the leakage refusal, the report card and the trajectory, and the command line."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from _train import babyfast

from babyfast.eval import bootstrap_interval, chance_interval, load_suites, paired_bootstrap, score, wilson_interval
from babyfast.eval.leakage import LeakageError, check_leakage
from babyfast.eval.report import compare_runs, format_card, write_report, write_trajectory
from babyfast.eval.run import evaluate, trajectory
from babyfast.store.ingest import ingest
from babyfast.synth import write_corpus, write_probes
from babyfast.train import load_config, train

TINY = ["data.clip_len=4", "data.size=32", "data.batch_size=4", "data.threads=1", "model.embed_dim=64",
        "model.depth=2", "model.num_heads=2", "model.attention_backend=sdpa", "model.patchify_backend=torch",
        "train.device=cpu", "train.progress=false", "train.log_every=2", "train.threads=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    write_corpus(root / "world", children=1, hours=0.01, size=64, fps=10, recording_minutes=0.3, seed=0, workers=1,
                 progress=False)
    assert ingest(root / "world", root / "store", fps=10, size=32, gop=4, codec="raw", progress=False).ok
    write_probes(root / "probes", size=64, trials=48, quads=4, movie_frames=12, seed=1, workers=1, progress=False)
    store = root / "store"
    mae = root / "mae"
    train(load_config(None, [f"data.store={store}", f"train.out={mae}", *TINY, "videomae.mask_ratio=0.75",
                             "videomae.decoder_dim=32", "videomae.decoder_depth=1", "train.steps=4",
                             "train.save_every=2"]))
    con = {}
    for name, shuffle in (("con", "false"), ("shuffled", "true")):
        con[name] = root / name
        train(load_config(None, [f"data.store={store}", f"train.out={con[name]}", *TINY, "objective=contrastive",
                                 "data.anchor=utterance", "contrastive.embed_dim=32", "contrastive.text_dim=32",
                                 f"contrastive.shuffle_pairs={shuffle}", "train.steps=2"]))
    return {"root": root, "store": store, "probes": root / "probes", "mae": mae, **con}


def test_intervals_against_known_binomial_cases() -> None:
    lo, hi = wilson_interval(8, 10)  # the textbook Wilson interval of 8/10
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(4, 4)[1] == 1.0  # rounding once left it at 0.9999999999999999, below the accuracy
    for n in range(1, 60):  # every interval holds its proportion, at 0 and 1 too (no rounding below 1)
        assert all(wilson_interval(k, n)[0] <= k / n <= wilson_interval(k, n)[1] for k in range(n + 1))
    assert chance_interval(0.5, 100) == (0.40, 0.60)
    rng = np.random.default_rng(0)
    x = (rng.random(400) < 0.3).astype(float)
    b_lo, b_hi = bootstrap_interval(x)
    w_lo, w_hi = wilson_interval(x.sum(), len(x))
    assert abs(b_lo - w_lo) < 0.01 and abs(b_hi - w_hi) < 0.01  # the two agree on a plain binomial
    diff, (d_lo, d_hi) = paired_bootstrap(x, x)
    assert diff == 0.0 and d_lo == d_hi == 0.0
    better = np.maximum(x, (rng.random(400) < 0.3))
    diff, (d_lo, d_hi) = paired_bootstrap(better, x)
    assert diff > 0 and d_lo > 0
    with pytest.raises(ValueError, match="same trials"):
        paired_bootstrap(x, x[:10])


def test_a_videomae_run_is_scored_by_every_protocol_with_controls(world: dict[str, Path], tmp_path: Path) -> None:
    ev = evaluate(world["mae"], world["probes"], progress=False)
    rows = {(r.suite, r.protocol): r for r in ev.rows}
    assert set(rows) == {("object_recognition", "linear probe"), *(("object_recognition", f"prototypes k={k}")
                                                                   for k in (1, 5, 10)),
                         *(("word_referent", f"prototypes k={k}") for k in (1, 5, 10)),
                         ("permanence", "VoE surprise"), ("counting", "linear probe"),
                         ("left_right", "linear probe (halves)"), ("gaze", "linear probe (target position)")}
    for r in ev.rows:
        assert r.n > 0 and 0 <= r.accuracy <= 1 and r.ci[0] <= r.accuracy <= r.ci[1]
        rnd = r.controls["random-init"]
        assert rnd["diff_ci"][0] <= rnd["diff"] <= rnd["diff_ci"][1]
        assert r.oracle is not None and r.oracle >= 0.99  # the truth-reading responder on the same trials
        assert r.reached == (r.ci[0] > r.chance and rnd["diff_ci"][0] > 0)
    assert rows[("counting", "linear probe")].chance == pytest.approx(0.2)
    assert rows[("object_recognition", "linear probe")].n == 48  # every trial, cross-fitted by frame
    assert ev.provenance["unscored"] == {}  # every BabyWorld suite has a protocol for VideoMAE
    check = ev.provenance["leakage_check"]
    assert check["probe_instances"] and check["videos_with_truth"] == check["videos"] > 0
    paths = write_report(ev, tmp_path)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert "| object recognition | linear probe | 48 |" in paths["md"].read_text()
    assert json.loads(paths["json"].read_text())["model"]["objective"] == "videomae"


def test_a_contrastive_run_is_scored_against_its_shuffled_control(world: dict[str, Path]) -> None:
    ev = evaluate(world["con"], world["probes"], controls={"shuffled-pairs": world["shuffled"]}, progress=False)
    rows = {(r.suite, r.protocol): r for r in ev.rows}
    word = rows[("word_referent", "contrastive choice")]
    assert word.headline and word.n == 48 and set(word.controls) == {"random-init", "shuffled-pairs"}
    assert ("object_recognition", "contrastive choice") in rows
    assert not any(s == "permanence" for s, _ in rows)  # no decoder: no violation-of-expectation score
    assert ev.provenance["unscored"] == {"permanence": "needs a frame predictor (VideoMAE's decoder) to measure "
                                                       "surprise; this model has none"}
    assert "Not scored: permanence (needs a frame predictor" in format_card(ev.as_dict())


def test_a_model_that_only_tells_frames_apart_scores_chance_on_the_probes(world: dict[str, Path]) -> None:
    # features unique to each frame and unrelated to its category: a probe that has seen a frame with its
    # label must not score it, and the suite's trials do share frames (a distractor here, a target there)
    from babyfast.eval.features import load_model
    from babyfast.eval.protocols import frame_folds, probe_categories, prototypes

    suite = load_suites(world["probes"])["object_recognition"]
    uses = Counter(str(k) for t in suite.trials for k in t.stimuli)
    assert max(uses.values()) > 1
    model = load_model(world["mae"])
    rng = np.random.default_rng(0)
    model._features.update({k: rng.normal(size=64).astype(np.float32) for k in sorted(uses)})
    folds = frame_folds(suite, 0)
    assert set(folds) == set(uses) and set(folds.values()) == {0, 1}
    for protocol in (probe_categories, prototypes(1)):
        ts = protocol(model, suite, 0)
        assert len(ts.scores) == len(suite)  # cross-fitted: every trial scored
        lo, hi = chance_interval(ts.chance, len(ts.scores), level=0.999)
        assert lo <= ts.scores.mean() <= hi, (ts.protocol, ts.scores.mean())


def test_random_responders_land_inside_the_chance_interval(world: dict[str, Path]) -> None:
    rng = np.random.default_rng(4)
    for name, suite in load_suites(world["probes"]).items():
        if suite.judge != "choice":
            continue
        s = score(suite, lambda q: int(rng.integers(len(q.choices))))
        lo, hi = chance_interval(s.chance, s.n, level=0.999)
        assert lo <= s.accuracy <= hi, (name, s)


def test_probes_that_overlap_the_training_store_are_refused(world: dict[str, Path], tmp_path: Path) -> None:
    prov = check_leakage(world["probes"], world["store"])
    assert not set(prov.probe_instances) & set(prov.train_instances) and prov.train_instances
    bad = tmp_path / "probes"
    shutil.copytree(world["probes"], bad)
    manifest = json.loads((bad / "probes.json").read_text())
    manifest["instances"] = prov.train_instances[:1]  # probes drawn from a toy the child has seen
    (bad / "probes.json").write_text(json.dumps(manifest))
    with pytest.raises(LeakageError, match=rf"toy instances \[{prov.train_instances[0]}\] appear both"):
        evaluate(world["mae"], bad, progress=False)
    del manifest["instances"]
    (bad / "probes.json").write_text(json.dumps(manifest))
    with pytest.raises(LeakageError, match="does not say which toy instances"):
        check_leakage(bad, world["store"])


def test_the_trajectory_follows_every_checkpoint(world: dict[str, Path], tmp_path: Path) -> None:
    points = trajectory(world["mae"], world["probes"], progress=False)
    assert [p["step"] for p in points] == [0, 2, 4]  # random weights, then each checkpoint
    assert [p["seen"]["clips"] for p in points] == [0, 8, 16]
    assert points[1]["seen"]["age_days"] is not None and points[1]["seen"]["hours"] > 0
    assert {r["suite"] for r in points[1]["rows"]} == {"object_recognition", "word_referent", "permanence",
                                                       "counting", "left_right", "gaze"}
    paths = write_trajectory(points, tmp_path)
    assert paths["png"].stat().st_size > 10_000


def test_command_line_eval_and_report(world: dict[str, Path], tmp_path: Path) -> None:
    outs = []
    for run in ("mae", "con"):
        out = tmp_path / run
        r = babyfast("eval", str(world[run]), "--probes", str(world["probes"]), "--out", str(out), timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "| milestone | protocol | n |" in r.stdout and (out / "report.png").exists()
        outs.append(out)
    r = babyfast("report", *map(str, outs), "--out", str(tmp_path / "side"), timeout=120)
    assert r.returncode == 0 and "| word–referent | contrastive choice |" in r.stdout
    assert (tmp_path / "side" / "comparison.png").exists()
    r = babyfast("eval", str(tmp_path), "--probes", str(world["probes"]), timeout=120)
    assert r.returncode == 1 and "holds no checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert compare_runs(outs, tmp_path / "again")["md"].exists()
