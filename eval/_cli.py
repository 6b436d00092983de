"""`babyfast eval` and `babyfast report`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _out_dir(target: Path, out: str | None) -> Path:
    if out:
        return Path(out)
    run = target if target.is_dir() else target.parent.parent  # RUN/checkpoints/ckpt-*.pt
    return run / "eval"


def _extra_suites(args: argparse.Namespace) -> dict:
    given = {name: folder for name, folder in (("labeled_s", args.labeled_s), ("two_word", args.two_word),
                                               ("intphys", args.intphys), ("model_vs_baby", args.model_vs_baby))
             if folder}
    if not given:
        return {}
    from .adapters import ADAPTERS

    return {name: ADAPTERS[name](folder) for name, folder in given.items()}


def _eval(args: argparse.Namespace) -> int:
    from babyfast.train.checkpoint import CheckpointError

    from .features import load_model
    from .leakage import LeakageError
    from .report import format_card, write_report, write_trajectory
    from .run import evaluate, trajectory

    target = Path(args.run)
    out = _out_dir(target, args.out)
    try:
        controls: dict[str, str | os.PathLike[str]] = dict(
            c.split("=", 1) if "=" in c else ("shuffled-pairs", c) for c in args.control)
        extra = _extra_suites(args)
        probes = None
        if "babyworld" in args.suites:
            probes = Path(args.probes) if args.probes else out / "probes"
            if not (probes / "probes.json").is_file():
                from babyfast.synth import write_probes

                size = load_model(target).size
                print(f"writing BabyWorld probe suites ({args.trials} trials each, {size} px) to {probes}")
                write_probes(probes, size=size, trials=args.trials, quads=args.quads, workers=args.workers)
        if args.every_checkpoint:
            points = trajectory(target, probes, extra, device=args.device, seed=args.seed)
            paths = write_trajectory(points, out)
            print(f"trajectory of {len(points)} points: {paths['png']}, {paths['json']}")
        evaluation = evaluate(target, probes, extra, controls, device=args.device, seed=args.seed,
                              headline_only=args.headline)
    except (LeakageError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"babyfast eval: {e}", file=sys.stderr)
        return 1
    paths = write_report(evaluation, out)
    print(format_card(evaluation.as_dict()))
    print(f"report: {paths['md']}, {paths['png']}, {paths['json']}")
    if args.json:
        print(json.dumps(evaluation.as_dict(), default=float))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import compare_runs

    try:
        paths = compare_runs(args.runs, args.out)
    except FileNotFoundError as e:
        print(f"babyfast report: {e}", file=sys.stderr)
        return 1
    print(Path(paths["md"]).read_text())
    print(f"comparison: {paths['md']}, {paths['png']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a run on the developmental milestones, against its random-init control",
                       description="Frozen-encoder protocols (linear probe, k-shot prototypes, contrastive choice, "
                                   "violation of expectation) on BabyWorld's suites and the real benchmarks on disk; "
                                   "writes report.json, report.md and report.png.")
    p.add_argument("run", help="run folder (its newest checkpoint) or a checkpoint file")
    p.add_argument("--suites", nargs="*", default=["babyworld"], choices=["babyworld"],
                   help="BabyWorld's suites (pass --suites with nothing to score only the real benchmarks)")
    p.add_argument("--probes", help="BabyWorld probe folder (default: written into OUT/probes)")
    p.add_argument("--trials", type=int, default=480, help="trials per BabyWorld suite when they are written")
    p.add_argument("--quads", type=int, default=100, help="permanence quadruplets when they are written")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--labeled-s", help="Labeled-S folder (see the README for its layout)")
    p.add_argument("--two-word", help="Visual Two-Word Test folder")
    p.add_argument("--intphys", help="IntPhys folder (O1/O2/O3 blocks)")
    p.add_argument("--model-vs-baby", help="ModelVsBaby folder")
    p.add_argument("--control", action="append", default=[], metavar="[NAME=]RUN",
                   help="another model scored beside the run, e.g. the shuffled-pairs control (repeatable)")
    p.add_argument("--every-checkpoint", action="store_true",
                   help="also score every checkpoint: the developmental trajectory (trajectory.png)")
    p.add_argument("--headline", action="store_true",
                   help="only each milestone's headline protocol (faster; no k-shot curves)")
    p.add_argument("--out", help="output folder (default RUN/eval)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe splits, prototypes and random-init control")
    p.add_argument("--json", action="store_true", help="also print the report as JSON")
    p.set_defaults(func=_eval)
    p = sub.add_parser("report", help="several runs' report cards side by side (table and plot)")
    p.add_argument("runs", nargs="+", help="run folders (RUN/eval/report.json) or report.json files")
    p.add_argument("--out", default="report", help="folder for comparison.md and comparison.png")
    p.set_defaults(func=_report)
