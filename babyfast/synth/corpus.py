"""Write a BabyWorld corpus in the folder layout `babyfast ingest` reads for real recordings.

Layout of OUT:

- `<child>_rec<NNN>.<ext>`: one video per recording, flat, so the video id is the file stem
  (`child0_rec003`). h264 in mp4 by default (`codec`: h264, hevc, vp9 (webm), mjpeg (avi)).
- `utterances.csv`: `video,start,end,text` (seconds from the start of that video).
- `ages.csv`: `video,subject,age_days`.
- `vocab.csv`: the toy words (see `vocab.write_vocabulary`).
- `world.json`: the arguments that made the corpus and the list of recordings.
- `truth/<video id>.npz`: per-frame ground truth (see `truth`); training never reads it, and nothing
  outside the videos carries a video extension.

Recordings are independent (each is a pure function of seed, child and index), so they render in
parallel worker processes, and the result does not depend on the number of workers.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import queue
import shutil
from concurrent.futures import ProcessPoolExecutor, wait, FIRST_COMPLETED
from dataclasses import asdict, dataclass
from pathlib import Path

from .children import AgeModel, child_world
from .encode import CODECS, codec_extension
from .truth import TRUTH_DIR
from .vocab import write_vocabulary

__all__ = ["write_corpus", "plan_corpus", "Corpus", "RecordingInfo", "render_recording", "parse_size", "VIDEO_EXTENSIONS"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")
_PROGRESS_EVERY = 50  # frames between progress reports from a worker


@dataclass(frozen=True)
class RecordingInfo:
    video: str
    subject: str
    age_days: float
    frames: int
    seconds: float
    path: str


@dataclass(frozen=True)
class Corpus:
    """What `write_corpus` wrote."""

    root: Path
    recordings: tuple[RecordingInfo, ...]

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.recordings)


def parse_size(size: int | str | tuple[int, int]) -> tuple[int, int]:
    """(width, height) from 256, "256", "640x480" or (640, 480); ValueError naming the value otherwise."""
    if isinstance(size, tuple):
        w, h = size
    elif isinstance(size, int):
        w = h = size
    else:
        text = str(size).lower().strip()
        try:
            w, h = (int(p) for p in text.split("x")) if "x" in text else (int(text),) * 2
        except ValueError:
            raise ValueError(f"size {size!r}: expected N or WxH with integers, e.g. 256 or 640x480") from None
    if w < 16 or h < 16 or w % 2 or h % 2 or w > 4096 or h > 4096:
        raise ValueError(f"size {w}x{h}: width and height must be even, between 16 and 4096")
    return int(w), int(h)


def plan_corpus(
    children: int, hours: float, fps: float, width: int, height: int, seed: int, recording_minutes: float = 5.0
):
    """The recordings of a corpus: `hours` of video in total, split evenly over `children`, cut into
    recordings of at most `recording_minutes`. Returns a list of `world.RecordingSpec`."""
    from .world import RecordingSpec

    if children < 1:
        raise ValueError(f"children {children}: need at least 1")
    if not hours > 0:
        raise ValueError(f"hours {hours}: must be > 0")
    if not fps > 0:
        raise ValueError(f"fps {fps}: must be > 0")
    if not recording_minutes > 0:
        raise ValueError(f"recording_minutes {recording_minutes}: must be > 0")
    per_child = hours * 3600.0 / children
    n_rec = max(1, math.ceil(per_child / (recording_minutes * 60.0) - 1e-9))
    seconds = per_child / n_rec
    specs = []
    for c in range(children):
        home = child_world(seed, c)
        for r in range(n_rec):
            specs.append(RecordingSpec(
                video_id=f"child{c}_rec{r:03d}", seed=seed, child=c, index=r, seconds=seconds, fps=fps,
                width=width, height=height, age_days=float(round(home.age_at(r))),
            ))
    return specs


def render_recording(spec, out: Path, codec: str = "h264", gop: int | None = None, report=None) -> dict:
    """Render, encode and write one recording and its truth; returns its row for the CSVs.

    `report(n)` is called with the number of frames done since the last call.
    """
    from .encode import VideoWriter
    from .world import Recording

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rec = Recording(spec)
    path = out / f"{spec.video_id}.{codec_extension(codec)}"
    sigma = AgeModel(rec.age).blur_sigma * spec.width / 256.0
    pending = 0
    with VideoWriter(path, spec.width, spec.height, spec.fps, codec=codec, gop=gop, blur_sigma=sigma) as w:
        for frame in rec.frames():
            w.write(frame)
            pending += 1
            if report is not None and pending >= _PROGRESS_EVERY:
                report(pending)
                pending = 0
    if report is not None and pending:
        report(pending)
    rec.truth.build().save(out / TRUTH_DIR / f"{spec.video_id}.npz")
    return {
        "info": RecordingInfo(spec.video_id, f"child{spec.child}", rec.age, spec.n_frames, spec.n_frames / spec.fps,
                              str(path)),
        "utterances": rec.utterances,
    }


_QUEUE = None


def _init_worker(q) -> None:
    global _QUEUE
    _QUEUE = q


def _worker(spec, out, codec, gop):
    try:
        return render_recording(spec, out, codec, gop, report=_QUEUE.put if _QUEUE is not None else None)
    except Exception as e:
        raise RuntimeError(f"recording {spec.video_id} failed: {type(e).__name__}: {e}") from e


def _prepare(out: Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ours = [p for p in out.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS or p.name in
            ("utterances.csv", "ages.csv", "vocab.csv", "world.json", TRUTH_DIR)]
    if ours and not overwrite:
        raise FileExistsError(
            f"{out}: already holds a corpus ({', '.join(sorted(p.name for p in ours)[:4])} ...); "
            "pass overwrite=True (--overwrite) to replace it"
        )
    for p in ours:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def write_corpus(
    out: str | os.PathLike,
    children: int = 3,
    hours: float = 0.5,
    size: int | str | tuple[int, int] = 256,
    fps: float = 10.0,
    gop: int | None = None,
    seed: int = 0,
    codec: str = "h264",
    workers: int | None = None,
    recording_minutes: float = 5.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Corpus:
    """Render a BabyWorld corpus into `out` (see the module docstring for the layout).

    `hours` is the total across children. `workers`: processes rendering recordings in parallel
    (default: one per CPU core, at most one per recording); 1 renders in this process. Workers are
    started with "spawn" (safe beside torch and CUDA), so a script calling this with workers > 1 needs
    the usual `if __name__ == "__main__":` guard.

    Example::

        from babyfast.synth import write_corpus
        corpus = write_corpus("demo/world", children=2, hours=0.01, size=128)
        print(corpus.frames, [r.video for r in corpus.recordings])
    """
    from tqdm import tqdm

    out = Path(out)
    width, height = parse_size(size)
    codec_extension(codec)
    specs = plan_corpus(children, hours, fps, width, height, seed, recording_minutes)
    _prepare(out, overwrite)
    (out / TRUTH_DIR).mkdir(exist_ok=True)
    n_workers = min(len(specs), workers if workers else (os.cpu_count() or 1))
    if n_workers < 1:
        raise ValueError(f"workers {workers}: must be >= 1")
    total = sum(s.n_frames for s in specs)
    log.info("rendering %d recordings (%d frames, %dx%d @ %g fps) with %d worker(s) into %s",
             len(specs), total, width, height, fps, n_workers, out)
    results = {}
    with tqdm(total=total, unit="frame", desc="BabyWorld", disable=not progress) as bar:
        if n_workers == 1:
            for spec in specs:
                results[spec.video_id] = render_recording(spec, out, codec, gop, report=bar.update)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(q,)) as pool:
                futures = {pool.submit(_worker, s, out, codec, gop): s.video_id for s in specs}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(q, bar)
                    for f in done:
                        results[futures[f]] = f.result()
                _drain(q, bar)
    infos = [results[s.video_id]["info"] for s in specs]
    with open(out / "ages.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "subject", "age_days"])
        for info in infos:
            w.writerow([info.video, info.subject, int(round(info.age_days))])
    with open(out / "utterances.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "start", "end", "text"])
        for spec in specs:
            for u in results[spec.video_id]["utterances"]:
                w.writerow([spec.video_id, f"{u['start']:.3f}", f"{u['end']:.3f}", u["text"]])
    write_vocabulary(out / "vocab.csv")
    manifest = {
        "generator": "babyfast.synth", "seed": seed, "children": children, "hours": hours, "width": width,
        "height": height, "fps": fps, "gop": gop, "codec": codec, "encoder": CODECS[codec][0],
        "recording_minutes": recording_minutes, "recordings": [asdict(i) for i in infos],
    }
    for r in manifest["recordings"]:
        r["path"] = os.path.basename(r["path"])
    (out / "world.json").write_text(json.dumps(manifest, indent=1))
    return Corpus(out, tuple(infos))


def _drain(q, bar) -> None:
    while True:
        try:
            bar.update(q.get_nowait())
        except queue.Empty:
            return
