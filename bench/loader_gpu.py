"""GPU loader throughput: frames/s of 16x224^2 clips delivered on the GPU, augmented there.

Run on a lent GPU (see ../shared/GPU.md): `python -m bench.loader_gpu --out $OUT`. Builds a BabyWorld store
(256 px, 10 fps, GOP 16) unless --store is given and streams batches with ClipLoader(device="cuda") twice:
decoded on the GPU by DALI/NVDEC (where DALI is installed), and decoded on the CPU with the crop boxes sent
in one uint8 copy and resized, flipped and colour-jittered on the GPU (what a GPU consumer gets without
DALI). Reports frames/s after warm-up; target >= 20,000 frames/s on one H100. Writes loader_gpu.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from bench._common import RESULTS, write_result

CLIP = 16  # frames per clip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench/loader_gpu.py needs CUDA; run it on a lent GPU", file=sys.stderr)
        return 2
    store = Path(args.store) if args.store else None
    if store is None:
        from babyfast.store.ingest import ingest
        from babyfast.synth import write_corpus

        work = Path(tempfile.mkdtemp(prefix="babyfast-gpu-bench-"))
        write_corpus(work / "src", children=4, hours=0.2, size=256, fps=10, recording_minutes=3, workers=14,
                     progress=False)
        store = work / "store"
        ingest(work / "src", store, fps=10, size=256, gop=16, workers=14, progress=False)
    # first the default (decode_device="auto": DALI/NVDEC where DALI is installed, as the loader decides);
    # then, when that decoded on the GPU, the CPU-decode path a GPU consumer gets without DALI (or for a codec
    # DALI cannot decode): uint8 crop boxes copied once, resize/flip/colour on the GPU
    paths: list[Literal["auto", "cpu"]] = ["auto", "cpu"]
    dev = torch.cuda.get_device_name()
    runs = []
    for decode in paths:
        fps, stats, where = measure(store, decode, args)
        runs.append({"decode_device": where, "frames_per_s": fps, "meets_target": fps >= 20000, "stats": stats})
        print(f"decode on {where}: {fps:,.0f} frames/s")
        if where == "cpu":  # the default already decoded on the CPU
            break
    path = write_result("loader_gpu", {
        "device": dev, "torch": torch.__version__, "batch": args.batch, "batches": args.batches,
        "threads": args.threads, "target": 20000, "runs": runs,
        "table": {"title": f"GPU loader: {CLIP}x224^2 clips, augmentation (crop, flip, colour) on {dev}",
                  "columns": ["decode on", "batch", "frames/s", "clips/s", ">= 20,000 frames/s"],
                  "rows": [[r["decode_device"], args.batch, round(r["frames_per_s"]),
                            round(r["frames_per_s"] / CLIP, 1), "yes" if r["meets_target"] else "no"]
                           for r in runs]},
    }, out_dir=Path(args.out))
    print(f"wrote {path}")
    return 0


def measure(store: Path, decode: Literal["auto", "cpu"], args: argparse.Namespace) -> tuple[float, dict, str]:
    """Frames/s of CLIPx224^2 batches delivered on the GPU after five warm-up batches, the loader's stats and
    where it decoded."""
    import torch

    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader

    loader = ClipLoader(store, clip_len=CLIP, batch_size=args.batch, device="cuda", decode_device=decode,
                        threads=args.threads, prefetch=6,
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
        frames += b.video.shape[0] * b.video.shape[1]
    torch.cuda.synchronize()
    return frames / (time.perf_counter() - t), loader.stats(), loader.decode_device


if __name__ == "__main__":
    sys.exit(main())
