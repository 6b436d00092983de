"""`babyfast inspect` and `babyfast check`: what a store holds, and whether every chunk is sound."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from babyfast.store import layout as fmt

log = logging.getLogger(__name__)


def _du(path: Path, part: str) -> tuple[int, int]:
    """Bytes on disk under `path`, and under its sub-folder `part`, in one walk."""
    total = inside = 0
    for root, _dirs, files in os.walk(path):
        n = 0
        for f in files:
            try:
                n += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
        total += n
        if Path(root).relative_to(path).parts[:1] == (part,):
            inside += n
    return total, inside


def _source_bytes(store: str | os.PathLike[str], v: str) -> int:
    try:
        n = fmt.video_attrs(store, v).get("source_bytes")
        return n if isinstance(n, int) and n >= 0 else 0
    except (KeyError, fmt.StoreError):  # a missing or damaged video is `check`'s finding
        return 0


def summarize(store: str | os.PathLike[str]) -> dict[str, Any]:
    """Numbers about a store, from its index and video headers (no pixel is decoded)."""
    info = fmt.store_info(store)
    index = fmt.read_index(store)
    ids = list(index["id"])
    source_bytes = sum(_source_bytes(store, str(v)) for v in ids)
    disk_bytes, video_bytes = _du(info.path, fmt.VIDEOS)
    ages = index["age_days"][np.isfinite(index["age_days"])]
    subjects = sorted({s for s in index["subject"] if s})
    problems = [e for e in fmt.read_log(store) if e.get("event") in ("failed", "damaged")]
    return {
        "store": str(info.path), "format": info.format, "codec": info.codec, "gop": info.gop, "fps": info.fps,
        "frame_size": [info.width, info.height] if info.width else "per video (aspect kept)",
        "videos": len(ids), "hours": float(index["hours"].sum()), "frames": int(index["frames"].sum()),
        "chunks": int(index["chunks"].sum()), "subjects": subjects,
        "age_days": [float(ages.min()), float(ages.max())] if len(ages) else None,
        "bytes_on_disk": disk_bytes, "video_bytes": video_bytes, "source_bytes": source_bytes,
        "compression_vs_source": (source_bytes / video_bytes) if video_bytes else None,
        "logged_problems": len(problems),
    }


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def format_summary(s: dict[str, Any]) -> str:
    ages = "unknown" if s["age_days"] is None else f"{s['age_days'][0]:.0f}-{s['age_days'][1]:.0f} days"
    comp = "n/a" if s["compression_vs_source"] is None else f"{s['compression_vs_source']:.2f}x smaller than source" \
        if s["compression_vs_source"] >= 1 else f"{1 / s['compression_vs_source']:.2f}x larger than source"
    lines = [
        f"store      {s['store']} (format {s['format']})",
        f"codec      {s['codec']}, GOP {s['gop']}, {s['fps']:g} fps, frames {s['frame_size']}",
        f"videos     {s['videos']}  ({s['hours']:.3f} h, {s['frames']} frames, {s['chunks']} chunks)",
        f"subjects   {len(s['subjects'])}: {', '.join(s['subjects']) or '-'}",
        f"ages       {ages}",
        f"on disk    {_human(s['bytes_on_disk'])} (videos {_human(s['video_bytes'])}; "
        f"sources {_human(s['source_bytes'])}; {comp})",
    ]
    if s["logged_problems"]:
        lines.append(f"problems   {s['logged_problems']} in the ingest log ({fmt.LOG_FILE})")
    return "\n".join(lines)


@dataclass
class CheckResult:
    chunks: int = 0
    bad: list[tuple[str, int, str]] = field(default_factory=list)  # (video, chunk, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.bad


def _plan_video(reader: Any, info: fmt.StoreInfo, v: str, indexed_frames: int,
                result: CheckResult) -> tuple[dict[str, Any], Any] | None:
    """Check one video's metadata and shard indexes; returns (attrs, layout), or None when the loader
    would skip the whole video (the finding is recorded)."""
    from babyfast.store._validate import load_video, overlapping_chunks

    try:
        video = load_video(reader, info, v, indexed_frames=indexed_frames)
    except fmt.StoreError as e:
        result.bad.append((v, -1, str(e)))
        return None
    except Exception as e:  # noqa: BLE001  (as the loader: one video's damage is a finding, not the end)
        result.bad.append((v, -1, f"unreadable metadata ({type(e).__name__}: {e})"))
        return None
    lay = video.layout
    # load_video bounded the shards claimed by those on disk; a missing one is reported chunk by chunk
    for s in sorted(x for x in lay.shards_on_disk() if x < lay.num_shards):
        for c, what in overlapping_chunks(reader, lay, s):
            if c < lay.num_chunks:
                result.bad.append((v, c, what))
    return video.attrs, lay


def check(store: str | os.PathLike[str], threads: int = 2, progress: bool = True) -> CheckResult:
    """Everything the loader relies on: the root attributes, the index, each video's metadata (the same
    judge as the loader's, `babyfast.store._validate.load_video`), every shard index (no two chunks on the
    same bytes), and every chunk read through the C++ reader (chunk crc32c) and decoded. Names each bad one."""
    from babyfast.store.reader import ChunkReader

    info = fmt.store_info(store)
    result = CheckResult()
    reader = ChunkReader(info.path, threads=threads, verify=True)
    work = _check_index(store, info, reader, result)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(lay.num_chunks for _, _, lay in work), unit="chunk", desc="check", dynamic_ncols=True)
    try:
        _check_chunks(reader, work, threads, result, bar)
    finally:
        if bar is not None:
            bar.close()
    return result


def _check_index(store: str | os.PathLike[str], info: Any, reader: Any, result: CheckResult) -> list[tuple]:
    """The index against the tree, and each video's metadata; returns (id, attrs, layout) of the videos whose
    chunks can be read."""
    index = fmt.read_index(store)
    ids = [str(v) for v in index["id"]]
    walked = set(fmt.video_ids(store))
    indexed = set(ids)
    for v in sorted(walked - indexed):
        result.bad.append((v, -1, "video is not in the index"))
    for v in sorted(indexed - walked):
        result.bad.append((v, -1, "indexed video is missing from videos/"))
    bad_rows = fmt.index_problems(index, info.gop)
    seen: set[str] = set()
    work = []
    for i, v in enumerate(ids):
        if v in seen:
            result.bad.append((v, -1, f"the index lists video {v!r} more than once"))
            continue
        seen.add(v)
        if v not in walked:
            continue
        if i in bad_rows:
            result.bad.append((v, -1, bad_rows[i]))
            continue
        planned = _plan_video(reader, info, v, int(index["frames"][i]), result)
        if planned is not None:
            work.append((v, *planned))
    return work


def _check_chunks(reader: Any, work: list[tuple], threads: int, result: CheckResult, bar: Any) -> None:
    """Read every chunk of `work` (crc32c checked by the C++ reader), 64 at a time, and decode it in threads."""
    from babyfast.store.codec import decode_video_chunk

    attrs = {v: a for v, a, _ in work}

    def decode(item: tuple[tuple[str, int], Any]) -> str | None:
        (v, c), payload = item
        try:
            decode_video_chunk(payload, attrs[v])
        except Exception as e:  # noqa: BLE001  (any decoder failure is a finding, not a crash)
            return f"does not decode: {e}"
        return None

    def batches(size: int = 64):
        part: list[tuple[str, int]] = []
        for v, _, lay in work:
            for c in range(lay.num_chunks):
                part.append((v, c))
                if len(part) == size:
                    yield part
                    part = []
        if part:
            yield part

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for part in batches():
            batch = reader.read(part, on_error="mark")
            good = []
            for j, (v, c) in enumerate(part):
                err = batch.error(j)
                if err is not None:
                    result.bad.append((v, c, err))
                else:
                    good.append(((v, c), bytes(batch.payload(j))))
            for (key, _), err in zip(good, pool.map(decode, good), strict=True):
                if err is not None:
                    result.bad.append((key[0], key[1], err))
            result.chunks += len(part)
            if bar is not None:
                bar.update(len(part))
