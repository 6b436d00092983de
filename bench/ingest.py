"""Ingest benchmark: frames/s and store size against the source, per codec.

Sources are BabyWorld recordings made as a camera would (640x480, 30 fps, the encoder's default GOP), the
kind of file users hold; the store is the default 256 px, 10 fps, GOP 16. Writes bench/results/ingest.json.

    python -m bench.ingest [--minutes 2] [--codecs h264,vp9,raw] [--workers 2] [--out DIR]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench._common import RESULTS, write_result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes of source video (default 2)")
    ap.add_argument("--codecs", default="h264,vp9,raw")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", default=None, help="folder to keep the sources and stores in")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default bench/results)")
    args = ap.parse_args()

    from babyfast.store.ingest import ingest
    from babyfast.store.summary import summarize
    from babyfast.synth import write_corpus

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="babyfast-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "src"
    if not src.exists():
        write_corpus(src, children=2, hours=args.minutes / 60, size="640x480", fps=30,
                     recording_minutes=args.minutes / 2, seed=7, workers=args.workers, progress=False)
    source_bytes = sum(p.stat().st_size for p in src.glob("*.mp4"))
    rows, results = [], {}
    for codec in args.codecs.split(","):
        store = work / f"store-{codec}"
        shutil.rmtree(store, ignore_errors=True)
        t = time.perf_counter()
        r = ingest(src, store, fps=10, size=256, gop=16, codec=codec, workers=args.workers, progress=False)
        seconds = time.perf_counter() - t
        if not r.ok:
            raise SystemExit(f"ingest reported problems: {r.problems}")
        store_bytes = summarize(store)["video_bytes"]
        src_frames = args.minutes * 60 * 30
        results[codec] = {"videos": len(r.ingested), "stored_frames": r.frames, "source_frames": src_frames,
                          "seconds": round(seconds, 3), "stored_frames_per_s": round(r.frames / seconds, 1),
                          "source_frames_per_s": round(src_frames / seconds, 1), "store_bytes": store_bytes,
                          "source_bytes": source_bytes, "store_vs_source": round(store_bytes / source_bytes, 3)}
        rows.append([codec, r.frames, round(seconds, 1), round(src_frames / seconds), round(r.frames / seconds),
                     round(store_bytes / 2**20, 2), round(source_bytes / 2**20, 2),
                     round(store_bytes / source_bytes, 2)])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    path = write_result("ingest", {
        "setup": {"source": "BabyWorld 640x480 @30 fps, h264, encoder default GOP", "minutes": args.minutes,
                  "store": "256x256 @10 fps, GOP 16, 32 GOPs a shard", "workers": args.workers},
        "results": results,
        "table": {"title": f"Ingest ({args.minutes:g} min of 640x480@30 camera-like video -> 256 px @10 fps store, "
                           f"{args.workers} workers)",
                  "columns": ["codec", "stored frames", "seconds", "source frames/s", "stored frames/s",
                              "store MB", "source MB", "store/source size"],
                  "rows": rows},
    }, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
