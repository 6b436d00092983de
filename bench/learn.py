"""Does the stack learn? vit_tiny VideoMAE and contrastive runs on a BabyWorld corpus, on this CPU, scored on
held-out probe suites against the same architectures with random weights.

1. a BabyWorld corpus (--children, --hours) is rendered and ingested (reused from --keep when present);
2. VideoMAE (configs/videomae_tiny_cpu.yaml) and the contrastive baseline (configs/contrastive_tiny_cpu.yaml)
   train for --mae-steps and --con-steps optimizer steps;
3. probe suites of --trials trials (other seeds than the corpus: the evaluation's leakage check refuses an
   overlap) score each run's headline protocols against its random-init control.

Targets (issue 14): trained above random-init with non-overlapping 95% intervals on object recognition
(VideoMAE, linear probe) and on word–referent (contrastive, the word against four frames). A target that is
missed is reported as missed. Writes bench/results/learn.json and bench/results/learn.png.

    python -m bench.learn [--mae-steps 2400] [--con-steps 1200] [--trials 480] [--keep DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from babyfast._atomic import atomic_open
from bench._common import RESULTS, write_result

# (objective, config, suite of the target, its milestone)
RUNS = (("videomae", "videomae_tiny_cpu.yaml", "object_recognition"),
        ("contrastive", "contrastive_tiny_cpu.yaml", "word_referent"))


def _corpus(work: Path, children: int, hours: float, size: int) -> Path:
    from babyfast.store.ingest import ingest
    from babyfast.synth import write_corpus

    world, store = work / "world", work / "store"
    if not (world / "ages.csv").exists():
        write_corpus(world, children=children, hours=hours, size=size, fps=10, recording_minutes=1.0, seed=0,
                     workers=2)
    result = ingest(world, store, fps=10, size=size, gop=16, workers=2, progress=False)
    if not result.ok:
        raise SystemExit(f"ingest of {world} failed: {result.problems[:3]}")
    return store


def _train(objective: str, config: str, store: Path, run: Path, steps: int) -> dict[str, Any]:
    from babyfast.train import load_config, train
    from babyfast.train.config import CONFIG_DIR

    cfg = load_config(CONFIG_DIR / config, [f"data.store={store}", f"train.out={run}", f"train.steps={steps}",
                                            f"train.save_every={max(1, steps // 4)}"])
    t = time.perf_counter()
    result = train(cfg)
    summary = result.summary if result.summary.get("clips_per_s") is not None else \
        json.loads((run / "summary.json").read_text())
    return {"objective": objective, "config": config, "steps": summary["step"], "seconds": time.perf_counter() - t,
            "first_loss": summary["first_loss"], "final_loss": summary["final_loss"],
            "clips_per_s": summary["clips_per_s"]}


def _target(evaluation: Any, suite: str) -> dict[str, Any]:
    row = next(r for r in evaluation.rows if r.suite == suite and r.headline)
    rnd = row.controls["random-init"]
    return {"suite": suite, "milestone": row.milestone, "protocol": row.protocol, "n": row.n,
            "accuracy": row.accuracy, "ci": list(row.ci), "chance": row.chance,
            "random_init": rnd["accuracy"], "random_init_ci": rnd["ci"], "diff": rnd["diff"],
            "diff_ci": rnd["diff_ci"], "reached": row.reached,
            "met": bool(row.ci[0] > rnd["ci"][1])}  # the target: the two intervals do not overlap


def _plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from babyfast.train.metrics import read_metrics

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for r in runs:
        records = read_metrics(r["run"])
        axes[0].plot([x["step"] for x in records], [x["loss"] for x in records], label=r["objective"])
    axes[0].set(xlabel="step", ylabel="training loss", yscale="log", title="training")
    axes[0].legend()
    ax = axes[1]
    for i, r in enumerate(runs):
        t = r["target"]
        for j, (name, acc, ci) in enumerate((("trained", t["accuracy"], t["ci"]),
                                             ("random-init", t["random_init"], t["random_init_ci"]))):
            x = 3 * i + j
            ax.bar(x, 100 * acc, color="C0" if j == 0 else "C7", label=name if i == 0 else None)
            ax.errorbar(x, 100 * acc, yerr=[[100 * (acc - ci[0])], [100 * (ci[1] - acc)]], color="k", capsize=4)
        ax.hlines(100 * t["chance"], 3 * i - 0.4, 3 * i + 1.4, colors="r", linestyles="--",
                  label="chance" if i == 0 else None)
    ax.set_xticks([3 * i + 0.5 for i in range(len(runs))],
                  [f"{r['target']['milestone']}\n({r['objective']}, {r['target']['protocol']})" for r in runs])
    ax.set(ylabel="accuracy % (95% CI)", ylim=(0, 100), title="held-out probes")
    ax.legend(loc="upper right")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("--hours", type=float, default=0.2, help="hours of BabyWorld video in all")
    ap.add_argument("--mae-steps", type=int, default=2400)
    ap.add_argument("--con-steps", type=int, default=1200)
    ap.add_argument("--size", type=int, default=256, help="frame side of the corpus and the store (training crops 112)")
    ap.add_argument("--only", choices=[r[0] for r in RUNS], default=None, help="train and evaluate one objective")
    ap.add_argument("--trials", type=int, default=480, help="trials per probe suite")
    ap.add_argument("--keep", default=None, help="work folder (corpus, store, runs, probes), reused when present")
    ap.add_argument("--name", default="learn", help="result name (<out>/NAME.json and NAME.png)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default bench/results)")
    args = ap.parse_args()

    from babyfast.eval.run import evaluate
    from babyfast.synth import write_probes

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="babyfast-learn-"))
    start = time.perf_counter()
    try:
        store = _corpus(work, args.children, args.hours, args.size)
        probes = work / "probes"
        if not (probes / "probes.json").exists():
            write_probes(probes, size=112, trials=args.trials, quads=16, movie_frames=16, workers=2)
        runs = []
        for objective, config, suite in RUNS:
            if args.only and objective != args.only:
                continue
            steps = args.mae_steps if objective == "videomae" else args.con_steps
            run = work / objective
            info = _train(objective, config, store, run, steps)
            t = time.perf_counter()
            evaluation = evaluate(run, probes, headline_only=True, progress=False)
            info.update(run=str(run), eval_seconds=time.perf_counter() - t, target=_target(evaluation, suite),
                        rows=[r.as_dict() for r in evaluation.rows if r.headline])
            runs.append(info)
            print(json.dumps({k: info[k] for k in ("objective", "steps", "seconds", "first_loss", "final_loss")}),
                  json.dumps(info["target"]))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        _plot(runs, out / f"{args.name}.png")
        minutes = (time.perf_counter() - start) / 60
        rows = [[r["objective"], r["steps"], f"{r['first_loss']:.3f} -> {r['final_loss']:.3f}",
                 f"{r['target']['milestone']} ({r['target']['protocol']}, n={r['target']['n']})",
                 f"{100 * r['target']['accuracy']:.1f} [{100 * r['target']['ci'][0]:.1f}, "
                 f"{100 * r['target']['ci'][1]:.1f}]",
                 f"{100 * r['target']['random_init']:.1f} [{100 * r['target']['random_init_ci'][0]:.1f}, "
                 f"{100 * r['target']['random_init_ci'][1]:.1f}]",
                 f"{100 * r['target']['chance']:.0f}", "met" if r["target"]["met"] else "missed"] for r in runs]
        path = write_result(args.name, {
            "children": args.children, "hours": args.hours, "size": args.size, "trials": args.trials,
            "minutes": minutes, "runs": runs,
            "table": {"title": f"Does it learn? vit_tiny on BabyWorld, CPU, {minutes:.0f} minutes in all "
                               f"(bench/learn.py; plot bench/results/{args.name}.png)",
                      "columns": ["objective", "steps", "loss", "target milestone", "trained % [95% CI]",
                                  "random-init % [95% CI]", "chance %", "non-overlapping intervals"],
                      "rows": rows}}, out)
        print(f"wrote {path} and {out / (args.name + '.png')} in {minutes:.1f} minutes")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
