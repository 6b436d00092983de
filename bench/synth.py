"""BabyWorld generation speed (target: 10 minutes of 256x256 video at 10 fps, i.e. 6,000 frames rendered and
h264-encoded, in at most 60 s on a 2-core machine).

It measures, each as wall time of the public entry points (so process start-up, room drawing, truth and
CSV writing are all in):

    corpus 256       `write_corpus(children=1, hours=1/6, size=256, fps=10)`: 2 recordings of 5 min,
                     `--workers` processes (default: CPU cores)
    render only      one 60 s recording at 256x256, frames rendered but not encoded, one process
    camera 640x480   `write_corpus(size=640x480, fps=30)` for --camera-seconds, encoder's default GOP
    probes           `write_probes(size=256)` with the default trial counts

Writes bench/results/synth.json (through `_common.write_result`: machine, command and date added), with
the "table" block bench/report.py copies into the README.

    .venv/bin/python -m bench.synth
    .venv/bin/python -m bench.synth --minutes 2 --out /tmp/synth.json
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from babyfast.synth import write_corpus, write_probes
from babyfast.synth.world import Recording, RecordingSpec
from bench._common import RESULTS, write_result

TARGET_S = 60.0


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    # the module has a docstring, so __doc__ is not None
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])  # pyright: ignore[reportOptionalMemberAccess]
    ap.add_argument("--minutes", type=float, default=10.0, help="corpus length for the 256x256 run (default 10)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    ap.add_argument("--camera-seconds", type=float, default=60.0, help="length of the 640x480@30 run")
    ap.add_argument("--skip-probes", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "synth.json",
                    help="result file (default bench/results/synth.json)")
    args = ap.parse_args(argv)
    if args.out.suffix != ".json":
        ap.error(f"--out {args.out}: must name a .json file")

    tmp = Path(tempfile.mkdtemp(prefix="babyworld-bench-"))
    results = {}
    try:
        corpus, secs = _timed(lambda: write_corpus(tmp / "c256", children=1, hours=args.minutes / 60, size=256,
                                                   fps=10, workers=args.workers, progress=False))
        results["corpus_256"] = {
            "frames": corpus.frames, "recordings": len(corpus.recordings), "seconds": round(secs, 2),
            "frames_per_s": round(corpus.frames / secs, 1), "target_seconds_for_6000_frames": TARGET_S,
            "seconds_per_6000_frames": round(secs * 6000 / corpus.frames, 2),
            "meets_target": secs * 6000 / corpus.frames <= TARGET_S, "mb": round(_size_mb(tmp / "c256"), 1),
        }
        print(f"corpus 256x256@10: {corpus.frames} frames in {secs:.1f} s ({corpus.frames / secs:.0f} frames/s)")

        spec = RecordingSpec("r", 0, 0, 0, 60.0, 10, 256, 256, age_days=300.0)
        n, secs = _timed(lambda: sum(1 for _ in Recording(spec).frames()))
        results["render_only_256"] = {"frames": n, "seconds": round(secs, 2), "frames_per_s": round(n / secs, 1),
                                      "processes": 1}
        print(f"render only 256x256: {n / secs:.0f} frames/s (one process)")

        cam, secs = _timed(lambda: write_corpus(tmp / "cam", children=1, hours=args.camera_seconds / 3600,
                                                size="640x480", fps=30, workers=args.workers, progress=False))
        with av.open(cam.recordings[0].path) as c:
            st = c.streams.video[0]
            keys = [p.is_keyframe for p in c.demux(st) if p.size]
        results["camera_640x480_30fps"] = {
            "frames": cam.frames, "seconds": round(secs, 2), "frames_per_s": round(cam.frames / secs, 1),
            "keyframe_interval": int(np.diff(np.flatnonzero(keys)).mean()) if sum(keys) > 1 else len(keys),
            "mb": round(_size_mb(tmp / "cam"), 1),
        }
        print(f"camera 640x480@30: {cam.frames} frames in {secs:.1f} s ({cam.frames / secs:.0f} frames/s)")

        if not args.skip_probes:
            manifest, secs = _timed(lambda: write_probes(tmp / "probes", size=256, workers=args.workers,
                                                         progress=False))
            results["probes_256"] = {"suites": manifest["suites"], "seconds": round(secs, 2),
                                     "mb": round(_size_mb(tmp / "probes"), 1)}
            print(f"probes 256x256 (defaults): {secs:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [["corpus 256x256 @10 fps", r["frames"], r["seconds"], r["frames_per_s"],
             f"{r['seconds_per_6000_frames']} s per 6,000 frames (target <= 60 s)"]
            for r in [results["corpus_256"]]]
    if "camera_640x480_30fps" in results:
        r = results["camera_640x480_30fps"]
        rows.append(["camera-like 640x480 @30 fps", r["frames"], r["seconds"], r["frames_per_s"],
                     f"keyframe every {r['keyframe_interval']} frames"])
    table = {"title": "BabyWorld rendering + h264 encoding (synth)",
             "columns": ["what", "frames", "seconds", "frames/s", "note"], "rows": rows}
    # write_result names the file <name>.json in a folder; "benchmark" stays "synth" whatever --out is
    path = write_result(args.out.stem, {"benchmark": "synth", "results": results, "table": table},
                        out_dir=args.out.parent)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
