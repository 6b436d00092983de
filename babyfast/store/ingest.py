"""`babyfast ingest SRC STORE`: recordings -> a GOP-chunked zarr v3 store, resumable and idempotent.

Each video is written under `.partial/` by a worker process and renamed into `videos/<id>` only when
complete, so a crash or a kill never leaves a half-written video visible, and the next run redoes it.
A video whose id is already complete with the same sha256 is skipped. Bad input (empty, truncated,
not a video, audio only, undecodable frames) never stops the run: each problem is listed at the end and
kept in the store's ingest log, and the exit code says whether any file failed.
"""
from __future__ import annotations

import csv
import datetime as _dt
import logging
import math
import multiprocessing as mp
import os
import platform
import queue
import re
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from babyfast.store import format as fmt
from babyfast.store.codec import CODECS, DEFAULT_QUALITY
from babyfast.store.source import (VIDEO_EXTENSIONS, SourceError, SourceReport, iter_frames, open_source,
                                   sha256_file, stream_duration)

log = logging.getLogger(__name__)

_ID_BAD = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class IngestOptions:
    fps: float = 10.0
    size: int = 256
    gop: int = 16
    codec: str = "h264"
    quality: int | None = None
    crop: bool = True
    shard_chunks: int = 32
    workers: int = 1

    def validate(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of {', '.join(CODECS)}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {self.size}")
        if self.codec == "jpeg" and self.gop != 1:
            raise ValueError(f"codec 'jpeg' stores one frame per chunk: gop must be 1, got {self.gop}")
        if self.gop < 1 or self.shard_chunks < 1 or self.workers < 1:
            raise ValueError(f"gop, shard_chunks and workers must be >= 1, got {self.gop}, "
                             f"{self.shard_chunks}, {self.workers}")


@dataclass
class Problem:
    file: str
    reason: str
    kind: str = "failed"  # failed: nothing written for this file; damaged: written, with frames missing


@dataclass
class IngestResult:
    store: Path
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def video_id(src_root: Path, path: Path) -> str:
    """A store id for a recording: its path below SRC without extension, '/' -> '__', safe characters."""
    rel = path.relative_to(src_root).with_suffix("")
    return "__".join(_ID_BAD.sub("_", part) for part in rel.parts)


def find_sources(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(src).parts))


def _read_csv(path: Path, columns: tuple[str, ...]) -> tuple[list[dict[str, str]], list[Problem]]:
    problems: list[Problem] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}; "
                                 f"expected {','.join(columns)}")
            rows = []
            for lineno, row in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                if not any(row.values()):
                    continue
                if any(row.get(c, "") == "" for c in columns if c != "text"):
                    problems.append(Problem(str(path), f"line {lineno}: empty field in {row}", "csv"))
                    continue
                row["_line"] = str(lineno)
                rows.append(row)
            return rows, problems
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from e


def _match_ids(rows: list[dict[str, str]], ids: dict[str, set[str]], path: Path) -> tuple[dict[str, list], list[Problem]]:
    """Group CSV rows by store id; a row may name the id, the relative path or the file name. A name that
    fits several recordings (day1.mp4 in two folders) is reported, never guessed."""
    out: dict[str, list] = {}
    problems = []
    for row in rows:
        key = row["video"]
        found = ids.get(key) or ids.get(Path(key).with_suffix("").as_posix()) or set()
        if len(found) != 1:
            what = f"names unknown video {key!r}" if not found else \
                f"{key!r} fits several recordings ({', '.join(sorted(found))}); name one by its path"
            problems.append(Problem(str(path), f"line {row['_line']}: {what}", "csv"))
            continue
        out.setdefault(next(iter(found)), []).append(row)
    return out, problems


def load_sidecars(transcripts: Path | None, ages: Path | None, ids: dict[str, set[str]]):
    """Utterances and ages per video id, and the problems found in the CSV files."""
    utterances: dict[str, list[tuple[float, float, str]]] = {}
    meta: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    if transcripts is not None:
        rows, probs = _read_csv(transcripts, ("video", "start", "end", "text"))
        problems += probs
        grouped, probs = _match_ids(rows, ids, transcripts)
        problems += probs
        for vid, rs in grouped.items():
            for r in rs:
                try:
                    start, end = float(r["start"]), float(r["end"])
                    if not (0 <= start <= end):
                        raise ValueError(f"start {start} and end {end} must satisfy 0 <= start <= end")
                except ValueError as e:
                    problems.append(Problem(str(transcripts), f"line {r['_line']}: {e}", "csv"))
                    continue
                utterances.setdefault(vid, []).append((start, end, r["text"]))
    if ages is not None:
        rows, probs = _read_csv(ages, ("video", "subject", "age_days"))
        problems += probs
        grouped, probs = _match_ids(rows, ids, ages)
        problems += probs
        for vid, rs in grouped.items():
            if len(rs) > 1:
                lines = ", ".join(x["_line"] for x in rs)
                problems.append(Problem(str(ages), f"lines {lines}: several rows for video {vid!r}; "
                                                   f"using the last", "csv"))
            r = rs[-1]
            try:
                age = float(r["age_days"])
                if not (age >= 0 and math.isfinite(age)):
                    raise ValueError(f"age_days must be a non-negative number, got {r['age_days']!r}")
            except ValueError as e:
                problems.append(Problem(str(ages), f"line {r['_line']}: {e}", "csv"))
                continue
            meta[vid] = {"subject": r["subject"], "age_days": age}
    return utterances, meta, problems


# ---------------------------------------------------------------------------------------------- worker

def _ingest_one(job: dict[str, Any], progress: Any = None) -> dict[str, Any]:
    """Write one video to `.partial/`, then rename it into `videos/<id>`. Runs in a worker process."""
    import zarr
    from zarr.codecs import Crc32cCodec

    from babyfast.store.codec import GopCodec

    store, vid, src, opts = Path(job["store"]), job["id"], Path(job["source"]), job["options"]
    t_start = time.time()
    built = None
    try:
        sha = sha256_file(src)
        if job.get("existing_sha") == sha:
            return {"id": vid, "status": "skipped"}
        report = SourceReport()
        frames_iter = iter_frames(src, opts["fps"], opts["size"], opts["crop"], report)
        built = fmt.partial_dir(store, vid)
        group = zarr.open_group(str(built), mode="w")
        g, s = opts["gop"], opts["shard_chunks"]
        block = g * s
        arr = None
        n = 0
        buf: list[np.ndarray] = []
        times: list[float] = []

        def flush() -> None:
            nonlocal arr, n
            if not buf:
                return
            data = np.stack(buf)
            if arr is None:
                h, w = data.shape[1:3]
                arr = group.create_array(
                    "frames", shape=(0, h, w, 3), dtype="uint8", chunks=(g, h, w, 3), shards=(block, h, w, 3),
                    serializer=GopCodec(codec=opts["codec"], quality=opts["quality"], fps=round(opts["fps"])),
                    compressors=[Crc32cCodec()], fill_value=0, config={"write_empty_chunks": True},
                )
            arr.resize((n + len(data), *data.shape[1:]))
            arr[n:n + len(data)] = data
            n += len(data)
            if progress is not None:
                progress.put(len(data))
            buf.clear()

        for t, frame in frames_iter:
            buf.append(frame)
            times.append(t)
            if len(buf) == block:
                flush()
        flush()
        group.create_array("timestamps", data=np.asarray(times, dtype=np.float64), chunks=(max(1, len(times)),))
        utts = job.get("utterances") or []
        if utts:
            ug = group.create_group("utterances")
            utts = sorted(utts)
            ug.create_array("start", data=np.array([u[0] for u in utts], dtype=np.float64))
            ug.create_array("end", data=np.array([u[1] for u in utts], dtype=np.float64))
            text = ug.create_array("text", shape=(len(utts),), dtype=str, chunks=(len(utts),))
            text[:] = np.array([u[2] for u in utts], dtype=str)
        h, w = arr.shape[1:3]
        attrs = {
            "source": str(src.resolve()), "source_name": src.name, "sha256": sha, "source_bytes": src.stat().st_size,
            "source_fps": report.source_fps, "source_codec": report.codec, "source_size": [report.width, report.height],
            "rotation": report.rotation, "subject": (job.get("meta") or {}).get("subject"),
            "age_days": (job.get("meta") or {}).get("age_days"), "start_time": times[0] if times else 0.0,
            "fps": opts["fps"], "frames": n, "chunks": -(-n // g), "gop": g, "height": h, "width": w,
            "codec": opts["codec"], "utterances": len(utts), "bad_packets": report.bad_packets,
            "ingested_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        group.attrs.update(attrs)
        fmt.publish(store, built, f"{fmt.VIDEOS}/{vid}")
        out = {"id": vid, "status": "ingested", "attrs": attrs, "seconds": time.time() - t_start}
        if report.bad_packets:
            where = ", ".join(f"{t:.2f}s" for t in sorted(report.bad_times)[:5])
            out["damaged"] = f"{report.bad_packets} undecodable packet(s) (near {where}); held the previous frame"
        return out
    except (SourceError, OSError) as e:
        return {"id": vid, "status": "failed", "reason": str(e)}
    except Exception as e:  # noqa: BLE001  (bad input of any kind must not stop the run)
        log.debug("ingest of %s failed", src, exc_info=True)
        return {"id": vid, "status": "failed", "reason": f"{type(e).__name__}: {e}"}
    finally:
        if built is not None and built.exists():
            shutil.rmtree(built, ignore_errors=True)


def _estimate_frames(path: Path, fps: float) -> int:
    try:
        container, stream = open_source(path)
    except SourceError:
        return 0
    with container:
        seconds = stream_duration(container, stream)
    return int(seconds * fps) if seconds else 0


# ---------------------------------------------------------------------------------------------- driver

def ingest(src: str | os.PathLike[str], store: str | os.PathLike[str], *, fps: float = 10.0, size: int = 256,
           gop: int = 16, codec: str = "h264", quality: int | None = None, crop: bool = True,
           shard_chunks: int = 32, workers: int = 1, transcripts: str | os.PathLike[str] | None = None,
           ages: str | os.PathLike[str] | None = None, progress: bool = True) -> IngestResult:
    """Ingest every recording under `src` into the store at `store` (created if missing).

    Example:
        >>> from babyfast.store.ingest import ingest
        >>> result = ingest("recordings/", "store.zarr", fps=10, size=256, gop=16)  # doctest: +SKIP
        >>> result.ok, len(result.ingested)  # doctest: +SKIP
    """
    opts = IngestOptions(fps=fps, size=size, gop=gop, codec=codec, quality=quality, crop=crop,
                         shard_chunks=shard_chunks, workers=workers)
    opts.validate()
    quality = DEFAULT_QUALITY[codec] if quality is None else quality
    src_root = Path(src)
    if not src_root.exists():
        raise FileNotFoundError(f"{src_root}: no such file or folder")
    started = time.time()
    sources = find_sources(src_root)
    base = src_root if src_root.is_dir() else src_root.parent
    result = IngestResult(store=Path(store))
    ids: dict[str, Path] = {}
    for p in sources:
        vid = video_id(base, p)
        if vid in ids:
            result.problems.append(Problem(str(p), f"same video id {vid!r} as {ids[vid]}; rename one"))
            continue
        ids[vid] = p
    lookup: dict[str, set[str]] = {}
    for vid, p in ids.items():
        rel = p.relative_to(base)
        for key in {vid, rel.as_posix(), rel.with_suffix("").as_posix(), p.name}:
            lookup.setdefault(key, set()).add(vid)
    transcripts = Path(transcripts) if transcripts else (src_root / "utterances.csv" if (src_root / "utterances.csv").is_file() else None)
    ages = Path(ages) if ages else (src_root / "ages.csv" if (src_root / "ages.csv").is_file() else None)
    utterances, meta, csv_problems = load_sidecars(transcripts, ages, lookup)
    result.problems += csv_problems

    created = {"by": "babyfast ingest", "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "host": platform.node(), "source": str(src_root.resolve())}
    fmt.create_store(store, height=size if crop else None, width=size if crop else None, fps=fps, gop=gop,
                     codec=codec, quality=quality, shard_chunks=shard_chunks, created=created)
    leftovers = fmt.clear_partials(store)
    if leftovers:
        log.info("%s: removed %d interrupted partial write(s): %s", store, len(leftovers), ", ".join(leftovers))
    existing = {v: fmt.video_attrs(store, v) for v in fmt.video_ids(store)}
    rows = {v: fmt.index_row(v, a) for v, a in existing.items()}
    existing_sha = {v: a.get("sha256") for v, a in existing.items()}

    jobs = []
    option_dict = {"fps": fps, "size": size, "gop": gop, "codec": codec, "quality": quality, "crop": crop,
                   "shard_chunks": shard_chunks}
    for vid, path in ids.items():
        jobs.append({"store": str(Path(store).resolve()), "id": vid, "source": str(path), "options": option_dict,
                     "existing_sha": existing_sha.get(vid), "utterances": utterances.get(vid),
                     "meta": meta.get(vid)})
    pending = [j for j in jobs if j["existing_sha"] is None]
    total = sum(_estimate_frames(Path(j["source"]), fps) for j in pending) if progress else 0
    log_events: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, unit="frame", desc=f"ingest 0/{len(jobs)} videos", dynamic_ncols=True)

    done = 0
    last_index = [time.time()]

    def finish(out: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        src_path = ids[out["id"]]
        if out["status"] == "skipped":
            result.skipped.append(out["id"])
        elif out["status"] == "ingested":
            result.ingested.append(out["id"])
            result.frames += out["attrs"]["frames"]
            rows[out["id"]] = fmt.index_row(out["id"], out["attrs"])
            if time.time() - last_index[0] > 30:  # progress survives a kill; the run's end writes it anyway
                fmt.write_index(store, list(rows.values()))
                last_index[0] = time.time()
            log_events.append({"event": "ingested", "id": out["id"], "file": str(src_path),
                               "frames": out["attrs"]["frames"], "seconds": round(out["seconds"], 3)})
            if "damaged" in out:
                result.problems.append(Problem(str(src_path), out["damaged"], "damaged"))
        else:
            result.problems.append(Problem(str(src_path), out["reason"]))
        if bar is not None:
            bar.set_description(f"ingest {done}/{len(jobs)} videos")

    try:
        if workers == 1:
            for job in jobs:
                q = _BarQueue(bar)
                finish(_ingest_one(job, q))
        else:
            with mp.get_context("spawn").Manager() as manager:
                _run_all(jobs, workers, manager.Queue(), bar, finish)
    finally:
        if bar is not None:
            bar.close()
        # always: a run killed between publishing a video and indexing it left the index behind the tree
        fmt.write_index(store, list(rows.values()))
        for p in result.problems:
            log_events.append({"event": p.kind, "file": p.file, "reason": p.reason})
        result.seconds = time.time() - started
        log_events.append({"event": "run", "at": created["at"], "ingested": len(result.ingested),
                           "skipped": len(result.skipped), "problems": len(result.problems),
                           "frames": result.frames, "seconds": round(result.seconds, 3)})
        fmt.append_log(store, log_events)
    return result


def _run_pool(jobs: list[dict[str, Any]], workers: int, ctx: Any, q: Any, bar: Any, finish: Any) -> list[dict]:
    """Run jobs on a process pool; returns the jobs left unfinished because a worker process died (a crash
    in FFmpeg, the OOM killer): that breaks the whole pool, and which job did it is not known yet."""
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(_ingest_one, job, q): job for job in jobs}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(q, bar)
            broken = [f for f in finished if isinstance(f.exception(), BrokenProcessPool)]
            for f in finished:
                if f not in broken:
                    finish(f.result())
            if broken:
                return [futures[f] for f in broken] + [futures[f] for f in pending]
        _drain(q, bar)
    return []


def _run_all(jobs: list[dict[str, Any]], workers: int, q: Any, bar: Any, finish: Any) -> None:
    """All jobs on worker processes; after a worker death, the unfinished jobs run one at a time, alone,
    so that a recording that kills its worker is named and failed, and every other one is still ingested."""
    ctx = mp.get_context("spawn")
    todo = list(jobs)
    while todo:
        unfinished = _run_pool(todo, workers, ctx, q, bar, finish)
        todo = []
        for i, job in enumerate(unfinished):
            if _run_pool([job], 1, ctx, q, bar, finish):
                finish({"id": job["id"], "status": "failed",
                        "reason": "the worker process died while ingesting it (a crash or out of memory)"})
                todo = unfinished[i + 1:]  # back to the parallel pool for the rest
                break


class _BarQueue:
    """The in-process stand-in for the workers' progress queue."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def put(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)


def _drain(q: Any, bar: Any) -> None:
    while True:
        try:
            n = q.get_nowait()
        except queue.Empty:
            return
        if bar is not None:
            bar.update(n)
