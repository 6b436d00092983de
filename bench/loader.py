"""Loader benchmark (CPU): ClipLoader against what users run today, on the same clips, same machine, one run.

Sources are BabyWorld recordings made as a camera would (640x480, 30 fps, the encoder's default GOP of 250
frames), since that is what users hold. The store is ingested from them (256 px, 10 fps, GOP 16); the same
sources are also pre-resized with the ffmpeg CLI to the store's 256x256 at 10 fps and its picture quality
(x264 crf 18), keeping x264's default GOP as a user would, so that the table separates what ingest buys
(small, resampled files) from what the store and the C++ core buy (one GOP chunk per clip, batched reads,
decode in threads).

Every method makes the same clips: 16 frames at 10 fps of 256x256 frames (short side to 256 and a centre crop,
as ingest does), then a random resized crop to 224x224 (area 0.25-1, aspect 3/4-4/3, antialiased bilinear on
uint8) and a horizontal flip with p = 0.5, in batches of 8:

- ClipLoader, CPU path, 2 threads, on the store: the default ``Augment()`` (that crop and flip), the default
  plus colour jitter (brightness, contrast, saturation 0.2, hue 5 degrees), and crop-only (a plain 224 crop,
  no resize, no flip: the cost floor of the store path);
- torch DataLoader (2 workers) + PyAV (seek to the keyframe before the clip, decode forward, swscale resize),
  and + torchcodec VideoDecoder (get_frames_at, its Resize transform), each on the source files and on the
  pre-resized files.

The baselines' crop and flip are torchvision v2's RandomResizedCrop + RandomHorizontalFlip algorithm on uint8
video, run with the torch op torchvision calls (F.interpolate, bilinear, antialias, uint8 channels-last) and
drawn by ``Augment.draw`` (torchvision's draw: ten tries of area and log-aspect, then the clamped centre box).
torchvision itself does not import beside this project's CPU torch 2.13: PyPI's torchvision 0.28.0 (the
release for torch 2.13) ships a _C.so linked to libtorch_cuda / libc10_cuda, which the CPU wheel lacks
("operator torchvision::nms does not exist").

The machine is shared, so methods run in ``--rounds`` interleaved rounds and the table shows medians. CPU
core-seconds per clip: user + system time of this process and all its children (DataLoader workers) over the
timed window, divided by the clips delivered. Writes bench/results/loader.json. Targets: ClipLoader with the
default Augment() >= 4x the clips/s of every baseline; default + colour jitter >= 0.8x crop-only.

    python -m bench.loader [--minutes 2] [--seconds 5] [--rounds 3] [--keep DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import psutil
import torch
import torch.nn.functional as F

from babyfast._atomic import temp_path
from bench._common import RESULTS, write_result

CLIP, FPS_OUT, SHORT, CROP, BATCH, WORKERS = 16, 10, 256, 224, 8, 2


class _Colour(TypedDict):  # so that Augment(**COLOUR) is checked against Augment's fields
    brightness: float
    contrast: float
    saturation: float
    hue: float


COLOUR: _Colour = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 5.0}


def _random_resized_crop_flip(frames: torch.Tensor, box: np.ndarray, flip: bool) -> torch.Tensor:
    """torchvision v2's RandomResizedCrop(224, antialias=True) + RandomHorizontalFlip on uint8 [T, H, W, 3],
    for drawn parameters: crop, one antialiased bilinear resize of the TCHW view, mirror."""
    y0, x0, h, w = (int(v) for v in box)
    x = frames[:, y0:y0 + h, x0:x0 + w].permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(CROP, CROP), mode="bilinear", antialias=True, align_corners=False)
    if flip:
        x = x.flip(-1)
    return x.permute(0, 2, 3, 1).contiguous()


class _ClipsFromFiles(torch.utils.data.Dataset):
    """Random clips straight from video files, as a VideoMAE-style dataset reads them."""

    def __init__(self, paths: list[Path], durations: list[float], sizes: list[tuple[int, int]], decoder: str,
                 n: int, seed: int = 0) -> None:
        from babyfast.loader.augment import Augment

        self.paths, self.durations, self.sizes = paths, durations, sizes
        self.decoder, self.n, self.seed = decoder, n, seed
        self.augment = Augment(size=CROP)  # the default crop and flip: the same draws as ClipLoader's

    def __len__(self) -> int:
        return self.n

    def _times(self, i: int) -> tuple[int, np.ndarray]:
        rng = random.Random(self.seed * 1000003 + i)
        v = rng.randrange(len(self.paths))
        span = (CLIP - 1) / FPS_OUT
        t0 = rng.uniform(0, self.durations[v] - span - 0.1)
        return v, t0 + np.arange(CLIP) / FPS_OUT

    def _geometry(self, v: int) -> tuple[int, int]:
        """(width, height) with the short side at SHORT, as ingest scales before its centre crop."""
        h, w = self.sizes[v]
        scale = SHORT / min(h, w)
        return round(w * scale), round(h * scale)

    def __getitem__(self, i: int) -> torch.Tensor:
        v, times = self._times(i)
        frames = self._decode(v, times)
        h, w = frames.shape[1:3]
        y, x = (h - SHORT) // 2, (w - SHORT) // 2  # ingest's centre crop (a no-op on pre-resized files)
        frames = frames[:, y:y + SHORT, x:x + SHORT]
        p = self.augment.draw(self.seed, 0, np.array([i]), SHORT, SHORT)
        return _random_resized_crop_flip(frames, p.box[0], bool(p.flip[0]))

    def _decode(self, v: int, times: np.ndarray) -> torch.Tensor:
        path = self.paths[v]
        size = self._geometry(v)
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
                resize = {} if size == (out[0].width, out[0].height) else \
                    dict(width=size[0], height=size[1], interpolation="AREA")
                return torch.from_numpy(np.stack([f.reformat(format="rgb24", **resize).to_ndarray() for f in out]))
        # the documented public import paths (pyright sees the re-exports as private); torchcodec is a benchmark
        # peer (requirements-bench.txt), absent where `make test` type-checks
        from torchcodec.decoders import VideoDecoder  # pyright: ignore[reportPrivateImportUsage, reportMissingImports]
        from torchcodec.transforms import Resize  # pyright: ignore[reportPrivateImportUsage, reportMissingImports]

        h, w = self.sizes[v]  # known up front, as a dataset's index would know it
        transforms = [] if size == (w, h) else [Resize((size[1], size[0]))]
        dec = VideoDecoder(str(path), seek_mode="approximate", dimension_order="NHWC", transforms=transforms)
        fps, frames = dec.metadata.average_fps, dec.metadata.num_frames
        if frames is None:
            raise ValueError(f"{path}: torchcodec found no frame count")
        idx = [min(int(round(t * fps)), frames - 1) for t in times]
        return dec.get_frames_at(idx).data


def _cpu_seconds() -> dict[int, float]:
    """user + system seconds of this process (all threads) and of each live descendant, by pid."""
    me = psutil.Process()
    out = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def _forever(iterable: Iterable) -> Generator:
    while True:  # successive epochs
        yield from iterable


def _measure(make: Callable[[], Iterable], seconds: float, warmup: int = 2, min_batches: int = 4) -> dict[str, float]:
    """clips/s and CPU core-seconds per clip over at least `seconds` after `warmup` batches (worker start-up
    and first decodes are not timed)."""
    it = _forever(make())
    try:
        for _ in range(warmup):
            next(it)
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        clips = batches = 0
        while batches < min_batches or time.perf_counter() - t0 < seconds:
            b = next(it)
            clips += (b if isinstance(b, torch.Tensor) else b.video).shape[0]
            batches += 1
        wall, cpu1 = time.perf_counter() - t0, _cpu_seconds()
    finally:
        it.close()  # stops the loader's threads / the DataLoader's workers before the next method
    core = sum(t - cpu0.get(pid, 0.0) for pid, t in cpu1.items())
    return {"clips_per_s": clips / wall, "core_s_per_clip": core / clips, "clips": clips, "wall_s": wall}


def _prepare(work: Path, minutes: float) -> tuple[Path, Path, Path]:
    from babyfast.store.ingest import ingest
    from babyfast.synth import write_corpus

    src, store, small = work / "src", work / "store", work / "resized"
    if not (src / "ages.csv").exists():
        write_corpus(src, children=2, hours=minutes / 60, size="640x480", fps=30, recording_minutes=minutes / 2,
                     seed=3, workers=2, progress=False)
    if not (store / "index").exists():
        ingest(src, store, fps=FPS_OUT, size=SHORT, gop=16, workers=2, progress=False)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("bench/loader.py needs the ffmpeg CLI for the pre-resized baselines (apt-get install ffmpeg)")
    small.mkdir(exist_ok=True)
    for p in sorted(src.glob("*.mp4")):
        out = small / p.name
        if not out.exists():
            # ingest's geometry (short side to 256 with the area filter, centre crop, 10 fps) and the store's
            # picture quality (x264 crf 18, preset veryfast); the GOP stays x264's default, as users have it
            vf = (f"fps={FPS_OUT},scale={SHORT}:{SHORT}:force_original_aspect_ratio=increase:flags=area,"
                  f"crop={SHORT}:{SHORT}")
            # ffmpeg writes the file itself: to the project's temporary name (a reused --keep folder never
            # takes a half-written file for a finished one), moved over the final name once complete
            part = temp_path(out)
            try:
                subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(p), "-vf", vf, "-an", "-c:v", "libx264",
                                "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-f", "mp4", str(part)],
                               check=True)
                os.replace(part, out)
            finally:
                part.unlink(missing_ok=True)
    return src, store, small


def _probe(paths: list[Path]) -> tuple[list[float], list[tuple[int, int]]]:
    import av

    durations, sizes = [], []
    for p in paths:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            durations.append(float(s.duration * s.time_base))
            sizes.append((s.codec_context.height, s.codec_context.width))
    return durations, sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes of source video")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per method and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    ap.add_argument("--keep", default=None, help="folder for sources, store and resized files (reused when present)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default bench/results)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # 2 cores: the loaders bring their own parallelism

    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="babyfast-bench-loader-"))
    src, store, small = _prepare(work, args.minutes)
    files = {"source": sorted(src.glob("*.mp4")), "resized": sorted(small.glob("*.mp4"))}
    probes = {k: _probe(v) for k, v in files.items()}

    area = (CROP / SHORT) ** 2
    crop_only = Augment(size=CROP, scale=(area, area), ratio=(1.0, 1.0), flip=0.0)
    augments = {"clip_loader": Augment(), "clip_loader_colour": Augment(**COLOUR), "clip_loader_crop": crop_only}
    stats: dict[str, Any] = {}

    def clip_loader(name: str) -> Callable[[], Iterable]:
        def make():
            loader = ClipLoader(store, clip_len=CLIP, batch_size=BATCH, device="cpu", threads=2, prefetch=4,
                                augment=augments[name], seed=0)
            stats[name] = loader.stats  # read after the run: where the time went
            return loader
        return make

    def baseline(decoder: str, kind: str) -> Callable[[], Iterable]:
        def make():
            ds = _ClipsFromFiles(files[kind], *probes[kind], decoder, n=10_000)
            return torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=WORKERS, persistent_workers=False)
        return make

    methods = {name: clip_loader(name) for name in augments}
    for decoder in ("pyav", "torchcodec"):
        for kind in ("source", "resized"):
            methods[f"{decoder}_{kind}"] = baseline(decoder, kind)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in methods}
    _measure(methods["clip_loader"], 1.0)  # untimed: first decodes, imports and allocations of the process
    for r in range(args.rounds):
        for name, make in methods.items():
            runs[name].append(_measure(make, args.seconds))
            print(f"round {r}: {name}: {runs[name][-1]['clips_per_s']:.1f} clips/s, "
                  f"{runs[name][-1]['core_s_per_clip'] * 1e3:.1f} core-ms/clip", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    rate = {k: statistics.median(x["clips_per_s"] for x in v) for k, v in runs.items()}
    core = {k: statistics.median(x["core_s_per_clip"] for x in v) for k, v in runs.items()}
    baselines = [k for k in methods if k not in augments]
    ratios = {k: rate["clip_loader"] / rate[k] for k in baselines}
    colour_vs_crop = rate["clip_loader_colour"] / rate["clip_loader_crop"]
    meets = {"clip_loader_vs_every_baseline": all(x >= 4.0 for x in ratios.values()),
             "colour_vs_crop_only": colour_vs_crop >= 0.8}
    labels = {
        "clip_loader": ("ClipLoader (CPU, 2 threads), default Augment(): random resized crop + flip", "store"),
        "clip_loader_colour": ("ClipLoader, default Augment() + colour jitter", "store"),
        "clip_loader_crop": ("ClipLoader, crop-only (224 crop, no resize, no flip)", "store"),
        "pyav_source": ("DataLoader(2 workers) + PyAV seek/decode + crop/flip", "source files"),
        "pyav_resized": ("DataLoader(2 workers) + PyAV seek/decode + crop/flip", "pre-resized files"),
        "torchcodec_source": ("DataLoader(2 workers) + torchcodec + crop/flip", "source files"),
        "torchcodec_resized": ("DataLoader(2 workers) + torchcodec + crop/flip", "pre-resized files"),
    }
    rows = [[labels[k][0], labels[k][1], round(rate[k], 1), round(core[k] * 1e3, 1),
             round(rate["clip_loader"] / rate[k], 2)] for k in methods]
    path = write_result("loader", {
        "setup": {"sources": "BabyWorld 640x480 @30 fps h264, default GOP (250)", "minutes": args.minutes,
                  "store": f"{SHORT}x{SHORT} @{FPS_OUT} fps, h264 GOP 16 (babyfast ingest)",
                  "resized": f"{SHORT}x{SHORT} @{FPS_OUT} fps, libx264 crf 18 veryfast, default GOP (ffmpeg CLI)",
                  "clip": f"{CLIP} frames @{FPS_OUT} fps of {SHORT}x{SHORT}, random resized crop to {CROP} "
                          f"(scale 0.25-1, ratio 3/4-4/3) + flip p=0.5",
                  "colour": COLOUR, "batch": BATCH, "workers": WORKERS, "seconds": args.seconds,
                  "rounds": args.rounds, "torch_threads": 1,
                  "baseline_transforms": "torchvision v2 RandomResizedCrop + RandomHorizontalFlip algorithm on "
                                         "uint8 (F.interpolate antialias); torchvision's CUDA-linked wheel does not "
                                         "import beside CPU torch 2.13"},
        "clips_per_s": rate, "core_s_per_clip": core, "runs": runs,
        "loader_stats": {k: stats[k]() for k in augments}, "ratios": ratios, "colour_vs_crop_only": colour_vs_crop,
        "target_ratio": 4.0, "target_colour_vs_crop_only": 0.8, "meets_target": meets,
        "table": {"title": "Clips/s on this CPU: 16 x 224^2 clips, batches of 8, the same random resized crop + "
                           "flip for every method (ClipLoader vs DataLoader baselines)",
                  "columns": ["method", "reads", "clips/s", "CPU core-ms/clip", "ClipLoader (default) speed-up"],
                  "rows": rows,
                  "notes": [f"Medians of {args.rounds} interleaved rounds of {args.seconds:g} s. Core-ms/clip: CPU "
                            f"time of the process and its DataLoader workers per clip. Baseline crop/flip: "
                            f"torchvision v2's algorithm with the torch op it calls (torchvision does not import "
                            f"beside CPU torch 2.13).",
                            f"Target ClipLoader (default) >= 4x each baseline: met: "
                            f"{meets['clip_loader_vs_every_baseline']} (lowest "
                            f"{min(ratios.values()):.2f}x). Target default + colour >= 0.8x crop-only: "
                            f"{colour_vs_crop:.2f}x, met: {meets['colour_vs_crop_only']}."]},
    }, args.out)
    print(f"wrote {path}: {rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
