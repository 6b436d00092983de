"""Write a BabyWorld corpus in the folder layout `babyfast ingest` reads for real recordings.

Layout of OUT:

- `<child>_rec<NNN>.<ext>`: one video per recording, flat, so the video id is the file stem
  (`child0_rec003`). h264 in mp4 by default (`codec`: h264, hevc, vp9 (webm), mjpeg (avi)).
- `utterances.csv`: `video,start,end,text` (seconds from the start of that video).
- `ages.csv`: `video,subject,age_days`.
- `vocab.csv`: the toy words (see `vocab.write_vocabulary`).
- `world.json`: the arguments that made the corpus and the list of recordings. It is written first
  (`"complete": false`) and again when everything else is in place (`"complete": true`), so it always
  lists every file the corpus may have put in OUT.
- `truth/<video id>.npz`: per-frame ground truth (see `truth`); training never reads it, and nothing
  outside the videos carries a video extension.

Every file is written atomically (`atomic`). OUT must be empty or hold only a BabyWorld corpus: with
`overwrite`, exactly the files its `world.json` lists (and leftovers of their temporary files) are
deleted; anything else in OUT is left alone and makes `write_corpus` refuse, naming it.

Recordings are independent (each is a pure function of seed, child and index), so they render in
parallel worker processes, and the result does not depend on the number of workers.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from babyfast._atomic import atomic_open, write_text
from babyfast._pool import run_jobs

from ._children import AgeModel, child_world
from ._encode import CODECS, codec_extension
from ._folder import entry_is_file, listed, read_manifest, refuse_foreign, usable_folder
from .truth import TRUTH_DIR
from .vocab import write_vocabulary

__all__ = [
    "VIDEO_EXTENSIONS", "Corpus", "RecordingInfo", "parse_size", "plan_corpus", "render_recording", "write_corpus",
]

log = logging.getLogger(__name__)

# the extensions `babyfast ingest` picks up (a copy of babyfast.store.recording.VIDEO_EXTENSIONS: synth does
# not import the store; tests/test_synth_world.py checks that the two agree)
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")
assert all(f".{c[1]}" in VIDEO_EXTENSIONS for c in CODECS.values()), "a codec ingest would not pick up"
MANIFEST = "world.json"
GENERATOR = "babyfast.synth"
_TABLES = ("utterances.csv", "ages.csv", "vocab.csv")  # besides the manifest, the videos and truth/
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
    from ._encode import VideoWriter
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


def _render_job(job: tuple, report) -> dict:
    spec, out, codec, gop = job
    return render_recording(spec, out, codec, gop, report=report)


def _failed(video_id: str, e: BaseException) -> RuntimeError:
    return RuntimeError(f"recording {video_id} failed: {type(e).__name__}: {e}")


def _render_all(specs, out: Path, codec: str, gop: int | None, n_workers: int, bar) -> dict:
    """Render every spec (in `n_workers` processes); {video id: render_recording's result}.

    The first recording that fails stops the run: recordings not yet started are cancelled, and the
    error (a RuntimeError naming the recording) is raised as soon as those already rendering are done.
    """
    results = {}

    def done(job: tuple, f) -> None:
        video_id = job[0].video_id
        try:
            results[video_id] = f.result()
        except Exception as e:
            raise _failed(video_id, e) from e

    run_jobs(_render_job, [(s, out, codec, gop) for s in specs], n_workers, done, bar)
    return results


def _recording_names(manifest: dict) -> tuple[set[str], set[str]]:
    """(video file names, truth file names) a corpus manifest lists; only plain names are trusted."""
    videos, truths = set(), set()
    for r in manifest.get("recordings", []):
        if not isinstance(r, dict):
            continue
        for key, names, fmt in (("path", videos, "{}"), ("video", truths, "{}.npz")):
            v = r.get(key)
            if isinstance(v, str) and v and v not in (".", "..") and os.path.basename(v) == v:
                names.add(fmt.format(v))
    return videos, truths


def _is_listed(name: str, names: set[str]) -> bool:
    """`name` is one of `names`, or a temporary file left by writing one of them."""
    if listed(name, names):
        return True
    return name.startswith(".") and name.endswith(".partial") and name[1:-len(".partial")] in names  # older writer


def _claim(out: Path, overwrite: bool) -> None:
    """Make OUT ready for a new corpus: refuse if it holds anything that is not ours (or a corpus
    without `overwrite`), else delete exactly the files of the previous corpus (its manifest last)."""
    usable_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out / MANIFEST, GENERATOR)
    if manifest is None:
        top, truths = set(), set()
    else:
        videos, truths = _recording_names(manifest)
        top = videos | set(_TABLES) | {MANIFEST}
    ours, foreign = [], []
    for p in sorted(out.iterdir()):
        if p.name == TRUTH_DIR and not entry_is_file(p):
            for q in sorted(p.iterdir()):
                (ours if _is_listed(q.name, truths) and entry_is_file(q) else foreign).append(q)
        elif _is_listed(p.name, top) and entry_is_file(p):
            ours.append(p)
        else:
            foreign.append(p)
    refuse_foreign(out, foreign, "part of a BabyWorld corpus", "corpus")
    if ours and not overwrite:
        raise FileExistsError(
            f"{out}: already holds a BabyWorld corpus ({', '.join(sorted(p.name for p in ours)[:4])} ...); "
            "pass overwrite=True (--overwrite) to replace it"
        )
    # the manifest goes last, so that an interrupted delete leaves every remaining file listed
    for p in sorted(ours, key=lambda p: p.name == MANIFEST):
        p.unlink(missing_ok=True)


def _check_workers(workers) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers {workers!r}: must be an integer >= 1 (or None: one per CPU core)")


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
    the usual `if __name__ == "__main__":` guard. `overwrite`: replace a corpus already in `out`; files
    in `out` that are not part of a BabyWorld corpus are never deleted (they make this raise
    FileExistsError naming them).

    Example::

        from babyfast.synth import write_corpus
        corpus = write_corpus("demo/world", children=2, hours=0.01, size=128)
        print(corpus.frames, [r.video for r in corpus.recordings])
    """
    from tqdm import tqdm

    # every argument is checked before anything in `out` is touched
    out = Path(out)
    width, height = parse_size(size)
    ext = codec_extension(codec)
    if gop is not None and (isinstance(gop, bool) or not isinstance(gop, int) or gop < 1):
        raise ValueError(f"gop {gop!r}: must be an integer >= 1 (or None: the encoder's default)")
    _check_workers(workers)
    specs = plan_corpus(children, hours, fps, width, height, seed, recording_minutes)
    n_workers = min(len(specs), workers or os.cpu_count() or 1)

    _claim(out, overwrite)
    planned = [RecordingInfo(s.video_id, f"child{s.child}", s.age_days, s.n_frames, s.n_frames / s.fps,
                             str(out / f"{s.video_id}.{ext}")) for s in specs]
    header = {
        "generator": GENERATOR, "seed": seed, "children": children, "hours": hours, "width": width,
        "height": height, "fps": fps, "gop": gop, "codec": codec, "encoder": CODECS[codec][0],
        "recording_minutes": recording_minutes,
    }
    _write_manifest(out, header, planned, complete=False)  # lists every file before it exists
    (out / TRUTH_DIR).mkdir(exist_ok=True)
    total = sum(s.n_frames for s in specs)
    log.info("rendering %d recordings (%d frames, %dx%d @ %g fps) with %d worker(s) into %s",
             len(specs), total, width, height, fps, n_workers, out)
    with tqdm(total=total, unit="frame", desc="BabyWorld", disable=not progress) as bar:
        results = _render_all(specs, out, codec, gop, n_workers, bar)
    infos = [results[s.video_id]["info"] for s in specs]
    with atomic_open(out / "ages.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "subject", "age_days"])
        for info in infos:
            w.writerow([info.video, info.subject, int(round(info.age_days))])
    with atomic_open(out / "utterances.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "start", "end", "text"])
        for spec in specs:
            for u in results[spec.video_id]["utterances"]:
                w.writerow([spec.video_id, f"{u['start']:.3f}", f"{u['end']:.3f}", u["text"]])
    write_vocabulary(out / "vocab.csv")
    _write_manifest(out, header, infos, complete=True)
    return Corpus(out, tuple(infos))


def _write_manifest(out: Path, header: dict, infos, complete: bool) -> None:
    recordings = [asdict(i) for i in infos]
    for r in recordings:
        r["path"] = os.path.basename(r["path"])
    write_text(out / MANIFEST, json.dumps({**header, "recordings": recordings, "complete": complete}, indent=1))
