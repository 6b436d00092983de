"""Loader benchmark (CPU): ClipLoader against what users run today, same clips, same machine, one run.

Sources are BabyWorld recordings made as a camera would (640x480, 30 fps, the encoder's default GOP of 250
frames), since that is what users hold; the store is ingested from them (256 px, 10 fps, GOP 16). Every
method produces the same clip spec: 16 frames at 10 fps, short side resized to 256 as the store did, and a
random 224x224 crop, in batches of 8:

- ClipLoader, CPU path, 2 threads (C++ chunk reads, PyAV decode of the GOP chunks, torch crop/resize);
- torch DataLoader (2 workers) + PyAV: seek to the keyframe before the clip, decode forward, resize;
- torch DataLoader (2 workers) + torchcodec VideoDecoder (get_frames_at; its Resize decoder transform).

Writes bench/results/loader.json; the target is ClipLoader >= 4x the clips/s of each baseline.

    python bench/loader.py [--minutes 2] [--batches 12]
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

CLIP, FPS_OUT, SHORT, CROP, BATCH = 16, 10, 256, 224, 8


class _ClipsFromFiles(torch.utils.data.Dataset):
    """Random clips straight from the source files, as a VideoMAE-style dataset does."""

    def __init__(self, paths: list[Path], durations: list[float], sizes: list[tuple[int, int]], decoder: str,
                 n: int, seed: int = 0) -> None:
        self.paths, self.durations, self.sizes, self.decoder, self.n, self.seed = paths, durations, sizes, decoder, n, seed

    def __len__(self) -> int:
        return self.n

    def _times(self, i: int) -> tuple[int, np.ndarray]:
        rng = random.Random(self.seed * 1000003 + i)
        v = rng.randrange(len(self.paths))
        span = (CLIP - 1) / FPS_OUT
        t0 = rng.uniform(0, self.durations[v] - span - 0.1)
        return v, t0 + np.arange(CLIP) / FPS_OUT

    def _crop(self, frames: torch.Tensor, i: int) -> torch.Tensor:  # frames [T, H, W, 3] uint8
        rng = random.Random(i)
        h, w = frames.shape[1:3]
        y, x = rng.randrange(h - CROP + 1), rng.randrange(w - CROP + 1)
        return frames[:, y:y + CROP, x:x + CROP].contiguous()

    def __getitem__(self, i: int) -> torch.Tensor:
        v, times = self._times(i)
        path = self.paths[v]
        if self.decoder == "pyav":
            import av

            out = []
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                c.seek(int(times[0] / s.time_base), stream=s, backward=True)
                want = iter(times)
                t_next = next(want)
                prev = None
                for f in c.decode(s):
                    while t_next is not None and f.time > t_next + 1e-6:
                        out.append(prev if prev is not None else f)
                        t_next = next(want, None)
                    if t_next is None:
                        break
                    prev = f
                while len(out) < CLIP:
                    out.append(prev)
                h, w = out[0].height, out[0].width
                scale = SHORT / min(h, w)
                size = (round(w * scale), round(h * scale))
                frames = np.stack([f.reformat(width=size[0], height=size[1], format="rgb24",
                                              interpolation="AREA").to_ndarray() for f in out])
            return self._crop(torch.from_numpy(frames), i)
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import Resize

        h, w = self.sizes[v]  # known up front, as a dataset's index would know it
        scale = SHORT / min(h, w)
        dec = VideoDecoder(str(path), seek_mode="approximate", dimension_order="NHWC",
                           transforms=[Resize((round(h * scale), round(w * scale)))])
        fps = dec.metadata.average_fps
        idx = [min(int(round(t * fps)), dec.metadata.num_frames - 1) for t in times]
        return self._crop(dec.get_frames_at(idx).data, i)


def _forever(iterable):
    while True:  # successive epochs
        yield from iterable


def _rate(batches, n_batches: int, warmup: int = 2) -> float:
    it = _forever(batches)
    for _ in range(warmup):
        next(it)
    t = time.perf_counter()
    clips = 0
    for _ in range(n_batches):
        b = next(it)
        clips += (b if isinstance(b, torch.Tensor) else b.video).shape[0]
    return clips / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--batches", type=int, default=12, help="timed batches per method (after 2 warm-up)")
    ap.add_argument("--keep", default=None, help="folder for sources and store (reused when present)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # 2 cores: the loaders bring their own parallelism

    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader
    from babyfast.store.ingest import ingest
    from babyfast.synth import write_corpus

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="babyfast-bench-loader-"))
    src, store = work / "src", work / "store"
    if not (src / "ages.csv").exists():
        write_corpus(src, children=2, hours=args.minutes / 60, size="640x480", fps=30,
                     recording_minutes=args.minutes / 2, seed=3, workers=2, progress=False)
    if not (store / "index").exists():
        ingest(src, store, fps=FPS_OUT, size=SHORT, gop=16, workers=2, progress=False)
    paths = sorted(src.glob("*.mp4"))
    import av

    durations, sizes = [], []
    for p in paths:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            durations.append(float(s.duration * s.time_base))
            sizes.append((s.codec_context.height, s.codec_context.width))

    results = {}
    n_clips = (args.batches + 4) * BATCH
    # the same spec as the baselines: a random 224 crop of the 256 frames (no rescale), done by the loader
    crop = Augment(size=CROP, scale=((CROP / SHORT) ** 2, (CROP / SHORT) ** 2), ratio=(1.0, 1.0), flip=0.0)
    loader = ClipLoader(store, clip_len=CLIP, batch_size=BATCH, device="cpu", threads=2, prefetch=4, augment=crop,
                        seed=0)
    results["clip_loader"] = _rate(loader, args.batches)
    results["loader_stats"] = loader.stats()
    for name in ("pyav", "torchcodec"):
        ds = _ClipsFromFiles(paths, durations, sizes, name, n_clips)
        dl = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=2, persistent_workers=False)
        results[name] = _rate(dl, args.batches)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    rows = [["ClipLoader (CPU, 2 threads, store)", round(results["clip_loader"], 2), 1.0]]
    for name, label in (("pyav", "DataLoader(2 workers) + PyAV seek/decode"),
                        ("torchcodec", "DataLoader(2 workers) + torchcodec VideoDecoder")):
        rows.append([label, round(results[name], 2), round(results["clip_loader"] / results[name], 2)])
    ratios = {k: results["clip_loader"] / results[k] for k in ("pyav", "torchcodec")}
    path = write_result("loader", {
        "setup": {"sources": "BabyWorld 640x480 @30 fps h264, default GOP (250)", "minutes": args.minutes,
                  "clip": f"{CLIP} frames @{FPS_OUT} fps, short side {SHORT}, random {CROP} crop",
                  "batch": BATCH, "timed_batches": args.batches, "torch_threads": 1},
        "clips_per_s": {k: results[k] for k in ("clip_loader", "pyav", "torchcodec")},
        "loader_stats": results["loader_stats"], "ratios": ratios, "target_ratio": 4.0,
        "meets_target": all(r >= 4.0 for r in ratios.values()),
        "table": {"title": "Clips/s on this CPU: 16 x 224^2 clips, batches of 8 (ClipLoader vs DataLoader baselines)",
                  "columns": ["method", "clips/s", "ClipLoader speed-up"], "rows": rows,
                  "notes": [f"Target: ClipLoader >= 4x each baseline; met: {all(r >= 4.0 for r in ratios.values())}."]},
    })
    print(f"wrote {path}: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
