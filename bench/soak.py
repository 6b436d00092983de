"""Soak: 10,000 ClipLoader batches in one process; resident memory must stay flat.

Reads a store made from BabyWorld (built on first use), small clips so that the run takes minutes, and
samples the process's resident set size every 250 batches. Writes bench/results/soak.json and a plot,
bench/results/soak_rss.svg. Flat means: the median RSS of the last ten samples exceeds the median of the
first ten after warm-up (batch 1,000 on) by less than 5%; single samples swing by tens of MB with the
batches in flight, so endpoints alone would measure noise.

    python -m bench.soak [--batches 10000] [--store DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from babyfast._atomic import write_text
from bench._common import RESULTS, write_result


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _svg(xs: list[int], ys: list[float], path: Path) -> None:
    w, h, m = 640, 320, 50
    lo, hi = 0.0, max(ys) * 1.15
    px = lambda x: m + (w - 2 * m) * x / max(xs)  # noqa: E731
    py = lambda y: h - m - (h - 2 * m) * (y - lo) / (hi - lo)  # noqa: E731
    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    ticks = "".join(f'<text x="{m - 8}" y="{py(v):.1f}" text-anchor="end" font-size="11">{v:.0f}</text>'
                    for v in (lo, hi / 2, hi))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">'
           f'<rect width="{w}" height="{h}" fill="white"/>'
           f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>'
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>{ticks}'
           f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle" font-size="12">batches ({max(xs):,})</text>'
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle" font-size="12">'
           f'RSS (MB)</text>'
           f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="14">ClipLoader soak: resident memory</text>'
           f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="2"/></svg>')
    write_text(path, svg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=10_000, help="at least 2,000 (1,000 of warm-up)")
    ap.add_argument("--store", default=None)
    ap.add_argument("--out", default=str(RESULTS),
                    help="results folder for soak.json and soak_rss.svg (default bench/results)")
    args = ap.parse_args()
    if args.batches < 2000:
        ap.error(f"--batches {args.batches}: a soak needs at least 2,000 batches (the first 1,000 are warm-up)")
    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader

    store = Path(args.store) if args.store else None
    work = None
    if store is None or not (store / "index").exists():
        from babyfast.store.ingest import ingest
        from babyfast.synth import write_corpus

        work = Path(tempfile.mkdtemp(prefix="babyfast-soak-"))
        store = store or work / "store"
        write_corpus(work / "src", children=2, hours=0.05, size=128, fps=10, recording_minutes=1.5, seed=1,
                     workers=2, progress=False)
        ingest(work / "src", store, fps=10, size=128, gop=8, workers=2, progress=False)
    loader = ClipLoader(store, clip_len=8, batch_size=4, device="cpu", threads=2, prefetch=4, seed=0,
                        augment=Augment(size=96, brightness=0.2, contrast=0.2))
    xs, ys = [0], [_rss_mb()]
    done, epochs = 0, 0
    t = time.perf_counter()
    while done < args.batches:
        for _ in loader:
            done += 1
            if done % 250 == 0:
                xs.append(done)
                ys.append(_rss_mb())
            if done >= args.batches:
                break
        epochs += 1
    secs = time.perf_counter() - t
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    after_warm = [y for x, y in zip(xs, ys, strict=True) if x >= 1000]
    k = max(1, min(10, len(after_warm) // 2))
    first, last = statistics.median(after_warm[:k]), statistics.median(after_warm[-k:])
    growth = (last - first) / first
    Path(args.out).mkdir(parents=True, exist_ok=True)
    _svg(xs, ys, Path(args.out) / "soak_rss.svg")
    path = write_result("soak", {
        "setup": {"clip_len": 8, "batch_size": 4, "size": 96, "threads": 2, "prefetch": 4},
        "batches": done, "epochs_started": epochs, "seconds": round(secs, 1),
        "rss_mb": {"batches": xs, "rss": [round(y, 1) for y in ys]},
        "growth_median_last10_vs_first10_after_1000": round(growth, 4), "flat": growth < 0.05, "stats": loader.stats(),
        "table": {"title": f"Soak: {done:,} ClipLoader batches in one process (plot: bench/results/soak_rss.svg)",
                  "columns": ["batches", "seconds", "RSS after warm-up (MB, median)", "RSS at the end (MB, median)",
                              "growth", "flat (<5%)"],
                  "rows": [[done, round(secs, 1), round(first, 1), round(last, 1),
                            f"{growth:+.1%}", "yes" if growth < 0.05 else "no"]]},
    }, args.out)
    print(f"wrote {path}: {done} batches in {secs:.0f} s, RSS median {first:.0f} -> {last:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
