"""GPU loader throughput: frames/s of 16x224^2 clips with GPU decode (DALI/NVDEC) and GPU augmentation.

Run on a lent GPU (see ../shared/GPU.md): `python -m bench.loader_gpu --out $OUT`. Builds a BabyWorld store
(256 px, 10 fps, GOP 16) unless --store is given, streams batches with ClipLoader(device="cuda") and
reports frames/s after warm-up; target >= 20,000 frames/s on one H100. Writes loader_gpu.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench._common import RESULTS, write_result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench/loader_gpu.py needs CUDA; run it on a lent GPU", file=sys.stderr)
        return 2
    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader

    store = Path(args.store) if args.store else None
    if store is None:
        from babyfast.store.ingest import ingest
        from babyfast.synth import write_corpus

        work = Path(tempfile.mkdtemp(prefix="babyfast-gpu-bench-"))
        write_corpus(work / "src", children=4, hours=0.4, size=256, fps=10, recording_minutes=3, workers=8,
                     progress=False)
        store = work / "store"
        ingest(work / "src", store, fps=10, size=256, gop=16, workers=8, progress=False)
    loader = ClipLoader(store, clip_len=16, batch_size=args.batch, device="cuda", threads=args.threads, prefetch=6,
                        augment=Augment(size=224, brightness=0.2, contrast=0.2, saturation=0.2))

    def forever():
        while True:
            yield from loader

    it = forever()
    for _ in range(5):
        next(it)
    torch.cuda.synchronize()
    t = time.perf_counter()
    frames = 0
    for _ in range(args.batches):
        b = next(it)
        frames += b["video"].shape[0] * b["video"].shape[1]
    torch.cuda.synchronize()
    secs = time.perf_counter() - t
    fps = frames / secs
    dev = torch.cuda.get_device_name()
    path = write_result("loader_gpu", {
        "device": dev, "torch": torch.__version__, "batch": args.batch, "batches": args.batches,
        "frames_per_s": fps, "target": 20000, "meets_target": fps >= 20000, "stats": loader.stats(),
        "table": {"title": f"GPU loader: 16x224^2 clips with GPU decode + augmentation on {dev}",
                  "columns": ["batch", "frames/s", "clips/s", ">= 20,000 frames/s"],
                  "rows": [[args.batch, round(fps), round(fps / 16, 1), "yes" if fps >= 20000 else "no"]]},
    }, out_dir=Path(args.out))
    print(f"wrote {path}: {fps:,.0f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
