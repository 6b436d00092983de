"""`babyfast ingest SRC STORE`: recordings -> a GOP-chunked zarr v3 store, resumable and idempotent.

One ingest writes a store at a time: it holds the store's lock (`babyfast.store._lock`) for its whole run,
and a second one waits for it (`wait=`) or is refused, told who holds it. Each video is written under
`.partial/` by a worker process, checked to hold every chunk, and renamed into `videos/<id>` only then,
so a crash or a kill never leaves a half-written video visible, and the next run redoes it. Workers die
with the run that started them. A video already complete with the same sha256 is skipped; which id a
recording gets, and when a stored video may be replaced, is `babyfast.store._ids`'s rule. Bad input
(empty, truncated, not a video, audio only, undecodable frames, hostile headers and timestamps, bad CSV
rows) never stops the run: each problem is listed at the end and kept in the store's ingest log, and the
exit code says whether any file had one.
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import platform
import shutil
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from babyfast._pool import Bar, is_broken, run_jobs
from babyfast.store import _limits as limits
from babyfast.store import _sidecars as sidecars
from babyfast.store import layout as fmt
from babyfast.store._ids import assign_ids, in_part, parse_part, video_id
from babyfast.store._lock import StoreLock
from babyfast.store.codec import CODECS, DEFAULT_QUALITY
from babyfast.store.recording import (
    VIDEO_EXTENSIONS,
    SourceError,
    SourceReport,
    iter_frames,
    open_source,
    sha256_file,
    stream_duration,
)

log = logging.getLogger(__name__)

__all__ = ["IngestOptions", "IngestResult", "Problem", "find_sources", "ingest", "video_id"]


def _option(default: Any, help: str, **cli: Any) -> Any:
    """A field of `IngestOptions`; its metadata gives `babyfast ingest` its flag (see store/_cli.py)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class IngestOptions:
    """How recordings become a store: the one list of ingest's options, read by `ingest()`, handed to each
    worker's job as it is, and turned into `babyfast ingest`'s flags (`--<name>`; help and choices from
    each field's metadata)."""

    fps: float = _option(10.0, "frames per second stored")
    size: int = _option(256, "short side in pixels after resizing")
    gop: int = _option(16, "frames per chunk, one closed GOP (jpeg: 1)")
    codec: str = _option("h264", "chunk codec", choices=CODECS)
    quality: int | None = _option(None, "codec quality (crf; jpeg q; zstd level); default: the codec's own")
    crop: bool = _option(True, "keep the aspect ratio instead of a centre crop", flag="--no-crop")
    shard_chunks: int = _option(32, "GOP chunks per shard file")
    workers: int = _option(1, "worker processes")
    max_gap: float = _option(limits.DEFAULT_MAX_GAP, "seconds between two source frames beyond which the jump "
                                                     "is skipped, not filled")

    def validate(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of {', '.join(CODECS)}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if not 16 <= self.size <= limits.MAX_SIDE:
            raise ValueError(f"size must be in [16, {limits.MAX_SIDE}] pixels, got {self.size}")
        if self.codec == "jpeg" and self.gop != 1:
            raise ValueError(f"codec 'jpeg' stores one frame per chunk: gop must be 1, got {self.gop}")
        if not (1 <= self.gop <= limits.MAX_GOP and 1 <= self.shard_chunks <= limits.MAX_SHARD_CHUNKS
                and self.gop * self.shard_chunks <= limits.MAX_SHARD_FRAMES and self.workers >= 1):
            raise ValueError(f"gop (1..{limits.MAX_GOP}), shard_chunks (1..{limits.MAX_SHARD_CHUNKS}, at most "
                             f"{limits.MAX_SHARD_FRAMES} frames a shard) and workers (>= 1) are out of range: "
                             f"{self.gop}, {self.shard_chunks}, {self.workers}")
        if not self.max_gap > 0:
            raise ValueError(f"max_gap must be a positive number of seconds, got {self.max_gap!r}")

    def resolved(self) -> IngestOptions:
        """Checked, with the codec's default quality filled in: what the workers are given."""
        self.validate()
        return replace(self, quality=DEFAULT_QUALITY[self.codec] if self.quality is None else self.quality)


@dataclass
class Problem:
    file: str
    reason: str
    # failed: nothing written for this file; damaged: written, with frames missing or timestamps skipped;
    # truncated: written, the decodable part of a file shorter than its container declares;
    # csv: a row or file of a transcript or ages CSV; store: a write into the store itself failed
    kind: str = "failed"


@dataclass
class IngestResult:
    store: Path
    ingested: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # ingested over an older version from the same path
    skipped: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)  # (file, id given, source holding its id)
    problems: list[Problem] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)  # files under SRC that are not videos, by extension
    frames: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def ignored_files(src: Path, used: set[Path]) -> dict[str, int]:
    """Files under `src` that are neither videos nor the sidecars in `used`, counted by extension (the
    user learns that the .m4a audio or the .MTS camera files were not read)."""
    if src.is_file():
        return {}
    counts: dict[str, int] = {}
    for p in src.rglob("*"):
        if p.is_file() and p.suffix.lower() not in VIDEO_EXTENSIONS and p.resolve() not in used \
                and not any(part.startswith(".") for part in p.relative_to(src).parts):
            ext = p.suffix.lower() or "(no extension)"
            counts[ext] = counts.get(ext, 0) + 1
    return dict(sorted(counts.items()))


def find_sources(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(src).parts))


def _source_notes(report: SourceReport, max_gap: float) -> list[tuple[str, str]]:
    """What reading a source found wrong with it, as (problem kind, reason)."""
    notes = []
    if report.bad_packets:
        where = ", ".join(f"{t:.2f}s" for t in sorted(report.bad_times)[:5])
        notes.append(("damaged", f"{report.bad_packets} undecodable packet(s) (near {where}); held the previous frame"))
    if report.gaps:
        where = ", ".join(f"{g:.1f} s at {t:.2f} s" for t, g in report.gaps[:5])
        more = f" and {len(report.gaps) - 5} more" if len(report.gaps) > 5 else ""
        notes.append(("damaged", f"{len(report.gaps)} timestamp jump(s) longer than {max_gap:g} s ({where}{more}): "
                                 f"skipped, not filled"))
    declared, decoded = report.duration, report.decoded_duration
    if declared is not None and decoded is not None and math.isfinite(declared) and declared > 0:
        step = 1.0 / report.source_fps if report.source_fps else 0.0
        if declared - decoded > max(0.5, 0.02 * declared, 2 * step):
            notes.append(("truncated", f"the container declares {declared:.2f} s of video, {decoded:.2f} s decoded "
                                       f"({report.source_frames} frames): the file is cut short; the decodable "
                                       f"part is stored"))
        elif decoded - declared > max(1.0, 0.1 * declared):
            notes.append(("damaged", f"timestamps run {decoded:.2f} s, the container declares {declared:.2f} s"))
    return notes


# ---------------------------------------------------------------------------------------------- worker

def _ingest_one(job: dict[str, Any], progress: Any = None) -> dict[str, Any]:
    """Write one video to `.partial/`, check it, then rename it into `videos/<id>`. Runs in a worker process;
    `progress(n)` is told of every n frames written. `job["options"]` is the run's resolved IngestOptions."""
    import zarr

    from babyfast.store._validate import verify_complete

    store, vid, src = Path(job["store"]), job["id"], Path(job["source"])
    opts: IngestOptions = job["options"]
    t_start = time.time()
    built = None
    try:
        sha = job.get("sha") or sha256_file(src)
        if job.get("existing_sha") == sha:
            return {"id": vid, "status": "skipped"}
        report = SourceReport()
        frames_iter = iter_frames(src, opts.fps, opts.size, opts.crop, report, max_gap=opts.max_gap)
        built = fmt.partial_dir(store, vid)
        group = zarr.open_group(str(built), mode="w")
        arr, n, times = _write_frames(group, frames_iter, opts, progress)
        utts = _write_utterances(group, job.get("utterances") or [])
        h, w = arr.shape[1:3]
        meta = job.get("meta") or {}
        attrs = {
            "source": str(src.resolve()), "source_name": src.name, "sha256": sha, "source_bytes": src.stat().st_size,
            "source_fps": report.source_fps, "source_codec": report.codec, "source_size": [report.width, report.height],
            "rotation": report.rotation, "subject": meta.get("subject"),
            "age_days": meta.get("age_days"), "start_time": times[0] if times else 0.0,
            "fps": opts.fps, "frames": n, "chunks": -(-n // opts.gop), "gop": opts.gop, "height": h, "width": w,
            "codec": opts.codec, "utterances": len(utts), "bad_packets": report.bad_packets,
            "skipped_gaps": len(report.gaps),
            "ingested_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        group.attrs.update(attrs)
        verify_complete(built / "frames", vid, n)
        fmt.publish(store, built, f"{fmt.VIDEOS}/{vid}")
        return {"id": vid, "status": "ingested", "attrs": attrs, "seconds": time.time() - t_start,
                "replaced": job.get("existing_sha"), "notes": _source_notes(report, opts.max_gap)}
    except (SourceError, fmt.StoreError, OSError) as e:
        return {"id": vid, "status": "failed", "reason": str(e)}
    except Exception as e:  # noqa: BLE001  (bad input of any kind must not stop the run)
        log.debug("ingest of %s failed", src, exc_info=True)
        return {"id": vid, "status": "failed", "reason": f"{type(e).__name__}: {e}"}
    finally:
        if built is not None and built.exists():
            shutil.rmtree(built, ignore_errors=True)


def _write_frames(group: Any, frames_iter: Any, opts: IngestOptions, progress: Any) -> tuple[Any, int, list[float]]:
    """The `frames` array (None when the source gave no frame), its length and each frame's source time.

    One shard of frames at a time, in one buffer: a worker's memory is G * S frames, whatever the source."""
    from zarr.codecs import Crc32cCodec

    from babyfast.store.codec import GopCodec

    g = opts.gop
    block = g * opts.shard_chunks
    arr = None
    n = 0
    buf: np.ndarray | None = None
    filled = 0
    times: list[float] = []

    def flush() -> None:
        nonlocal arr, n, filled
        if not filled:
            return
        assert buf is not None  # filled > 0: a frame was buffered
        data = buf[:filled]
        if arr is None:
            h, w = data.shape[1:3]
            arr = group.create_array(
                "frames", shape=(0, h, w, 3), dtype="uint8", chunks=(g, h, w, 3), shards=(block, h, w, 3),
                serializer=GopCodec(codec=opts.codec, quality=opts.quality, fps=round(opts.fps)),
                compressors=[Crc32cCodec()], fill_value=0, config={"write_empty_chunks": True},
            )
        arr.resize((n + filled, *data.shape[1:]))
        arr[n:n + filled] = data
        n += filled
        if progress is not None:
            progress(filled)
        filled = 0

    for t, frame in frames_iter:
        if buf is None:
            buf = np.empty((block, *frame.shape), dtype=np.uint8)
        buf[filled] = frame
        filled += 1
        times.append(t)
        if filled == block:
            flush()
    flush()
    group.create_array("timestamps", data=np.asarray(times, dtype=np.float64), chunks=(max(1, len(times)),))
    return arr, n, times


def _write_utterances(group: Any, utts: list) -> list:
    """The `utterances` group (start, end, text), when the transcript has any for this video; returns them."""
    if utts:
        ug = group.create_group("utterances")
        utts = sorted(utts)
        ug.create_array("start", data=np.array([u[0] for u in utts], dtype=np.float64))
        ug.create_array("end", data=np.array([u[1] for u in utts], dtype=np.float64))
        text = ug.create_array("text", shape=(len(utts),), dtype=str, chunks=(len(utts),))
        text[:] = np.array([u[2] for u in utts], dtype=str)
    return utts


def _estimate_frames(path: Path, fps: float) -> int:
    try:
        container, stream = open_source(path)
    except SourceError:
        return 0
    with container:
        seconds = stream_duration(container, stream)
    return int(seconds * fps) if seconds and math.isfinite(seconds) else 0


# ---------------------------------------------------------------------------------------------- driver

def _sidecar_path(given: str | os.PathLike[str] | None, src_root: Path, default: str) -> Path | None:
    if given:
        return Path(given)
    return src_root / default if (src_root / default).is_file() else None


def ingest(src: str | os.PathLike[str], store: str | os.PathLike[str], options: IngestOptions | None = None, *,
           transcripts: str | os.PathLike[str] | None = None, ages: str | os.PathLike[str] | None = None,
           progress: bool = True, part: str | tuple[int, int] | None = None, wait: float | None = None,
           **option_values: Any) -> IngestResult:
    """Ingest every recording under `src` into the store at `store` (created if missing).

    options: an `IngestOptions` (fps, size, gop, codec, quality, crop, shard_chunks, workers, max_gap);
        its fields may also be given as keywords (`fps=10, size=256`), which override `options`.
    transcripts, ages: CSV files (default: SRC/utterances.csv and SRC/ages.csv when there).
    part: "K/N" (or (K, N)): only this run's deterministic share of the recordings under `src`, for N
        runs writing N stores (see `babyfast.store._ids`).
    wait: when another ingest holds the store: None refuses at once (StoreLocked, naming it), a number
        of seconds waits up to that long, math.inf as long as it takes.

    Example:
        >>> from babyfast.store.ingest import ingest
        >>> result = ingest("recordings/", "store.zarr", fps=10, size=256, gop=16)  # doctest: +SKIP
        >>> result.ok, len(result.ingested)  # doctest: +SKIP
    """
    unknown = sorted(set(option_values) - {f.name for f in fields(IngestOptions)})
    if unknown:
        raise TypeError(f"ingest() got unexpected keyword argument(s) {unknown}")
    opts = replace(options or IngestOptions(), **option_values).resolved()
    share = None if part is None else parse_part(part if isinstance(part, str) else f"{part[0]}/{part[1]}")
    src_root = Path(src)
    if not src_root.exists():
        raise FileNotFoundError(f"{src_root}: no such file or folder")
    started = time.time()
    base = src_root if src_root.is_dir() else src_root.parent
    everything = find_sources(src_root)
    sources = [p for p in everything if share is None or in_part(p.relative_to(base), share)]
    read_t, read_a, ignored = _read_sidecars(src_root, transcripts, ages)
    fmt.check_new_store(store)
    with StoreLock(store, wait=wait):
        run = _Run(Path(store), opts, _open_store(Path(store), src_root, opts), started, share)
        _ingest_locked(run, base, everything, sources, read_t, read_a, progress)
    run.result.ignored = ignored
    return run.result


def _read_sidecars(src_root: Path, transcripts: str | os.PathLike[str] | None,
                   ages: str | os.PathLike[str] | None) -> tuple[sidecars.Sidecar | None, sidecars.Sidecar | None,
                                                                 dict[str, int]]:
    """(transcripts, ages, files ignored by extension). The CSV files are read first: an error that makes a
    whole file unreadable stops the run before anything is written (a video ingested without its age would be
    skipped by the next run, for its sha256)."""
    side_t = _sidecar_path(transcripts, src_root, "utterances.csv")
    side_a = _sidecar_path(ages, src_root, "ages.csv")
    read_t = sidecars.read_sidecar(side_t, sidecars.TRANSCRIPT_COLUMNS) if side_t else None
    read_a = sidecars.read_sidecar(side_a, sidecars.AGES_COLUMNS) if side_a else None
    ignored = ignored_files(src_root, {p.resolve() for p in (side_t, side_a) if p})
    if ignored:
        log.info("%s: ignored %d file(s) that are not videos (%s): %s", src_root, sum(ignored.values()),
                 "/".join(VIDEO_EXTENSIONS), ", ".join(f"{k} {v}" for k, v in ignored.items()))
    return read_t, read_a, ignored


def _open_store(store: Path, src_root: Path, opts: IngestOptions) -> dict[str, Any]:
    """Create the store (or check that it fits `opts`) and clean up after interrupted runs; returns the
    creation info of this run."""
    if opts.quality is None:
        raise ValueError("_open_store needs resolved options (IngestOptions.resolved() fills in the quality)")
    created = {"by": "babyfast ingest", "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "host": platform.node(), "source": str(src_root.resolve())}
    fmt.create_store(store, height=opts.size if opts.crop else None, width=opts.size if opts.crop else None,
                     fps=opts.fps, gop=opts.gop, codec=opts.codec, quality=opts.quality,
                     shard_chunks=opts.shard_chunks, created=created)
    leftovers = fmt.clear_partials(store)
    repaired = fmt.repair_groups(store)
    if repaired:
        log.info("%s: wrote the group metadata that %s lacked", store, ", ".join(repaired))
    if leftovers:
        log.info("%s: removed %d interrupted partial write(s): %s", store, len(leftovers), ", ".join(leftovers))
    return created


def _existing_videos(store: Path) -> dict[str, dict[str, Any]]:
    """{id: attributes} of the videos already in the store that can be indexed."""
    existing: dict[str, dict[str, Any]] = {}
    for v in fmt.video_ids(store):
        try:
            attrs = fmt.video_attrs(store, v)
            fmt.index_row(v, attrs)
        except (fmt.StoreError, KeyError, TypeError) as e:
            # unusable as it is: not indexed, and a recording given its id replaces it
            log.warning("%s: video %r has unreadable attributes (%s); run babyfast check", store, v, e)
            continue
        existing[v] = attrs
    return existing


def _sidecar_rows(run: _Run, base: Path, everything: list[Path], assigned: dict[Path, str],
                  read_t: sidecars.Sidecar | None, read_a: sidecars.Sidecar | None) -> tuple[dict, dict]:
    """({id: utterances}, {id: subject and age}) from the CSV files; their bad rows become problems."""
    # CSV rows may name any recording under SRC; those of another part are left to it
    lookup: dict[str, set[str]] = {}
    elsewhere: set[str] = set()
    for p in everything:
        rel = p.relative_to(base)
        vid = assigned.get(p)
        if vid is None:
            vid = f"(part of another run) {rel.as_posix()}"
            elsewhere.add(vid)
        for key in {vid, video_id(base, p), rel.as_posix(), rel.with_suffix("").as_posix(), p.name}:
            lookup.setdefault(key, set()).add(vid)
    utterances, meta = {}, {}
    if read_t is not None:
        utterances, probs = sidecars.transcripts(read_t, lookup, elsewhere)
        run.result.problems += [Problem(str(read_t.path), why, "csv") for why in probs]
    if read_a is not None:
        meta, probs = sidecars.ages(read_a, lookup, elsewhere)
        run.result.problems += [Problem(str(read_a.path), why, "csv") for why in probs]
    return utterances, meta


def _ingest_locked(run: _Run, base: Path, everything: list[Path], sources: list[Path],
                   read_t: sidecars.Sidecar | None, read_a: sidecars.Sidecar | None, progress: bool) -> None:
    """The run, holding the store's lock: which recording goes where, then the workers."""
    existing = _existing_videos(run.store)
    run.rows = {v: fmt.index_row(v, a) for v, a in existing.items()}
    assignments = assign_ids(sources, base, existing)
    utterances, meta = _sidecar_rows(run, base, everything, {a.path: a.id for a in assignments}, read_t, read_a)
    jobs = []
    for a in assignments:
        if a.failed:
            run.result.problems.append(Problem(str(a.path), a.failed))
            continue
        if a.skip:
            run.result.skipped.append(a.id)
            log.info("%s: %s; skipped", a.path, a.skip)
            continue
        if a.clash:
            run.result.renamed.append((str(a.path), a.id, a.clash))
            run.events.append({"event": "renamed", "file": str(a.path), "id": a.id, "clash": a.clash})
        run.sources[a.id] = a.path
        jobs.append({"store": str(run.store.resolve()), "id": a.id, "source": str(a.path), "options": run.opts,
                     "existing_sha": a.existing_sha, "sha": a.sha, "utterances": utterances.get(a.id),
                     "meta": meta.get(a.id)})
    run.jobs = len(jobs)
    try:
        if progress:
            run.open_bar(jobs)
        _run_all(jobs, run.opts.workers, run.bar, run.finish)
    finally:
        run.close()


class _Run:
    """What one ingest run has done so far: the result, the index rows, the log events and the bar."""

    def __init__(self, store: Path, opts: IngestOptions, created: dict[str, Any], started: float,
                 share: tuple[int, int] | None) -> None:
        self.store, self.opts, self.created, self.started, self.share = store, opts, created, started, share
        self.result = IngestResult(store=store)
        self.rows: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.sources: dict[str, Path] = {}  # id -> the recording it is made from
        self.bar: Any = None
        self.jobs = 0
        self.done = 0
        self.last_index = time.time()

    def open_bar(self, jobs: list[dict[str, Any]]) -> None:
        from tqdm.auto import tqdm

        total = sum(_estimate_frames(Path(j["source"]), self.opts.fps) for j in jobs if j["existing_sha"] is None)
        self.bar = tqdm(total=total or None, unit="frame", desc=f"ingest 0/{len(jobs)} videos", dynamic_ncols=True)

    def finish(self, out: dict[str, Any]) -> None:
        """Take in what a worker's job returned."""
        self.done += 1
        result, src_path = self.result, self.sources[out["id"]]
        if out["status"] == "skipped":
            result.skipped.append(out["id"])
        elif out["status"] == "ingested":
            result.ingested.append(out["id"])
            result.frames += out["attrs"]["frames"]
            self.rows[out["id"]] = fmt.index_row(out["id"], out["attrs"])
            if time.time() - self.last_index > 30:  # progress survives a kill; the run's end writes it anyway
                try:
                    fmt.write_index(self.store, list(self.rows.values()))
                except fmt.StoreWriteError as e:
                    log.warning("%s", e)
                self.last_index = time.time()
            event = {"event": "ingested", "id": out["id"], "file": str(src_path),
                     "frames": out["attrs"]["frames"], "seconds": round(out["seconds"], 3)}
            if out.get("replaced"):
                result.replaced.append(out["id"])
                event.update(event="replaced", old_sha256=out["replaced"], sha256=out["attrs"]["sha256"])
            self.events.append(event)
            for kind, reason in out.get("notes", []):
                result.problems.append(Problem(str(src_path), reason, kind))
        else:
            result.problems.append(Problem(str(src_path), out["reason"]))
        if self.bar is not None:
            self.bar.set_description(f"ingest {self.done}/{self.jobs} videos")

    def close(self) -> None:
        """Write the index and the log, whatever happened: a run killed between publishing a video and
        indexing it left the index behind the tree; an index that cannot be written must not cost the log
        of what was done."""
        result = self.result
        if self.bar is not None:
            self.bar.close()
        try:
            fmt.write_index(self.store, list(self.rows.values()))
        except fmt.StoreWriteError as e:
            result.problems.append(Problem(str(e.path), f"cannot {e.what}: {e.cause} (the next run writes it)",
                                           "store"))
        for p in result.problems:
            self.events.append({"event": p.kind, "file": p.file, "reason": p.reason})
        result.seconds = time.time() - self.started
        self.events.append({"event": "run", "at": self.created["at"], "ingested": len(result.ingested),
                            "replaced": len(result.replaced), "skipped": len(result.skipped),
                            "problems": len(result.problems), "frames": result.frames,
                            "seconds": round(result.seconds, 3), **({"part": list(self.share)} if self.share else {})})
        try:
            fmt.append_log(self.store, self.events)
        except fmt.StoreWriteError as e:
            result.problems.append(Problem(str(e.path), f"cannot {e.what}: {e.cause}", "store"))


def _run_all(jobs: list[dict[str, Any]], workers: int, bar: Bar | None, finish: Any) -> None:
    """All jobs (on worker processes when `workers` > 1); after a worker death, the unfinished jobs run one
    at a time, alone, so that a recording that kills its worker is named and failed, and every other one is
    still ingested."""
    if workers == 1:
        run_jobs(_ingest_one, jobs, 1, lambda job, f: finish(f.result()), bar)
        return
    todo = list(jobs)
    while todo:
        unfinished = _run_round(todo, workers, bar, finish)
        todo = []
        for i, job in enumerate(unfinished):
            if _run_round([job], 1, bar, finish):
                finish({"id": job["id"], "status": "failed",
                        "reason": "the worker process died while ingesting it (a crash or out of memory)"})
                todo = unfinished[i + 1:]  # back to the parallel pool for the rest
                break


def _run_round(jobs: list[dict[str, Any]], workers: int, bar: Bar | None, finish: Any) -> list[dict[str, Any]]:
    """Run jobs on a process pool; returns the jobs left unfinished because a worker process died (a crash
    in FFmpeg, the OOM killer): that breaks the whole pool, and which job did it is not known yet."""
    unfinished: list[dict[str, Any]] = []

    def done(job: dict[str, Any], f: Future) -> None:
        if is_broken(f):
            unfinished.append(job)
        else:
            finish(f.result())

    run_jobs(_ingest_one, jobs, workers, done, bar, in_process=False)
    return unfinished
