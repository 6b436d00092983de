"""Clip planner throughput: planned clips per second over ~1e9 candidates (target: >= 10 M/s, one thread).

A synthetic index of 10k videos (50k-150k frames each, ages 0-1000 days, 5 % unknown), clip_len 16 and
stride 1 give about 1e9 candidates. For every order it measures

    single call   one `plan()` of --clips clips (consumer 3 of world 8), one thread
    per batch     the same clips in calls of --batch clips, as a loader asks for them (Python overhead in)
    threads       --threads Python threads planning disjoint consumers at once (the GIL is released)

Each number is the best of --repeat runs. Writes bench/results/plan.json (the README table comes from it).

    .venv/bin/python -m bench.plan
    .venv/bin/python -m bench.plan --clips 20000000 --threads 16 --out /tmp/plan.json
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from babyfast.loader.plan import ORDERS, ClipPlan
from bench._common import RESULTS, write_result

TARGET = 10_000_000


def make_index(videos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(50_000, 150_000, size=videos)
    ages = rng.uniform(0.0, 1000.0, size=videos)
    ages[rng.random(videos) < 0.05] = np.nan
    return frames, ages


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(plan: ClipPlan, clips: int, batch: int, threads: int, repeat: int) -> dict[str, float]:
    world = 8
    if plan.per_consumer(world) < clips:
        raise SystemExit(f"--clips {clips} exceeds one consumer's share {plan.per_consumer(world)}")

    def single() -> None:
        plan.plan(0, 3, world, 0, clips)

    def batched() -> None:
        for start in range(0, clips, batch):
            plan.plan(0, 3, world, start, min(batch, clips - start))

    def threaded() -> None:
        # consumers of a wider world so that every thread plans its own clips
        share = clips // threads
        workers = [threading.Thread(target=plan.plan, args=(0, t, threads, 0, share)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    single()  # warm caches and pages once
    return {
        "single_call": clips / best_of(repeat, single),
        "per_batch": clips / best_of(repeat, batched),
        "threads": (clips // threads) * threads / best_of(repeat, threaded),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=10_000)
    ap.add_argument("--clip-len", type=int, default=16)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--window", type=int, default=8192)
    ap.add_argument("--clips", type=int, default=10_000_000, help="clips planned per measurement")
    ap.add_argument("--batch", type=int, default=256, help="clips per call in the per-batch measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "plan.json"), help="result file (default bench/results/plan.json)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".json":
        ap.error(f"--out {out}: must name a .json file")

    frames, ages = make_index(args.videos, args.seed)
    rows, raw = [], []
    for order in ORDERS:
        plan = ClipPlan(frames, ages, args.clip_len, args.stride, order=order, seed=args.seed, window=args.window)
        rates = measure(plan, args.clips, args.batch, args.threads, args.repeat)
        raw.append({"order": order, "candidates": plan.num_candidates,
                    **{f"{k}_clips_per_s": v for k, v in rates.items()}})
        rows.append([order, f"{plan.num_candidates:.3g}", rates["single_call"] / 1e6, rates["per_batch"] / 1e6,
                     rates["threads"] / 1e6, "yes" if rates["single_call"] >= TARGET else "NO"])
        print(f"{order:8s} N={plan.num_candidates:.3g}  single {rates['single_call'] / 1e6:6.1f} M/s  "
              f"batch {args.batch} {rates['per_batch'] / 1e6:6.1f} M/s  "
              f"{args.threads} threads {rates['threads'] / 1e6:6.1f} M/s")

    # write_result names the file <name>.json in a folder; "benchmark" keeps the name the table has today
    out = write_result(out.stem, {
        "benchmark": "clip planner throughput",
        "config": {k: getattr(args, k) for k in ("videos", "clip_len", "stride", "window", "clips", "batch", "threads",
                                                 "repeat", "seed")},
        "target_clips_per_s": TARGET,
        "results": raw,
        "table": {
            "title": "Clip planner: planned clips per second (M/s), ~1e9 candidates over 10k videos",
            "columns": ["order", "candidates", "one call, 1 thread", f"calls of {args.batch}",
                        f"{args.threads} threads", ">= 10 M/s"],
            "rows": rows,
            "notes": [f"Best of {args.repeat}; {args.clips:,} clips per measurement; consumer 3 of world 8 "
                      f"(threads: consumers 0..{args.threads - 1} of world {args.threads})."],
        },
    }, out.parent, argv=argv)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
