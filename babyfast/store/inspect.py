"""`babyfast inspect` and `babyfast check`: what a store holds, and whether every chunk is sound."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from babyfast.store import format as fmt

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


def summarize(store: str | os.PathLike[str]) -> dict[str, Any]:
    """Numbers about a store, from its index and video headers (no pixel is decoded)."""
    info = fmt.store_info(store)
    index = fmt.read_index(store)
    ids = list(index["id"])
    source_bytes = sum(int(fmt.video_attrs(store, v).get("source_bytes") or 0) for v in ids)
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


def check(store: str | os.PathLike[str], threads: int = 2, progress: bool = True) -> CheckResult:
    """Read every chunk through the C++ reader (shard index and chunk crc32c), decode it, name the bad ones."""
    from babyfast.store.codec import decode_video_chunk
    from babyfast.store.reader import ChunkReader

    info = fmt.store_info(store)
    result = CheckResult()
    reader = ChunkReader(info.path, threads=threads, verify=True)
    index = fmt.read_index(store)
    pairs = [(str(v), c) for v, n in zip(index["id"], index["chunks"]) for c in range(int(n))]
    walked = set(fmt.video_ids(store))
    for v in sorted(walked - set(index["id"])):
        result.bad.append((v, -1, "video is not in the index"))
    for v in sorted(set(index["id"]) - walked):
        result.bad.append((v, -1, "indexed video is missing from videos/"))
    unreadable = set()
    for v in sorted(walked & set(index["id"])):
        try:
            n = reader.num_chunks(v)
        except Exception as e:  # noqa: BLE001  (a broken video is a finding; the others are still checked)
            result.bad.append((v, -1, f"unreadable array metadata: {e}"))
            unreadable.add(v)
            continue
        want = int(index["chunks"][list(index["id"]).index(v)])
        if n != want:
            result.bad.append((v, -1, f"the index says {want} chunks, the array has {n}"))
            unreadable.add(v)
    pairs = [p for p in pairs if p[0] in walked and p[0] not in unreadable]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pairs), unit="chunk", desc="check", dynamic_ncols=True)
    attrs: dict[str, dict[str, Any]] = {}

    def decode(item: tuple[tuple[str, int], Any]) -> str | None:
        (v, c), payload = item
        if v not in attrs:
            attrs[v] = fmt.video_attrs(store, v)
        try:
            decode_video_chunk(payload, attrs[v])
        except Exception as e:  # noqa: BLE001  (any decoder failure is a finding, not a crash)
            return f"does not decode: {e}"
        return None

    batch_size = 64
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i in range(0, len(pairs), batch_size):
            part = pairs[i:i + batch_size]
            batch = reader.read(part, on_error="mark")
            good = []
            for j, (v, c) in enumerate(part):
                err = batch.error(j)
                if err is not None:
                    result.bad.append((v, c, err))
                else:
                    good.append(((v, c), bytes(batch.payload(j))))
            for (key, _), err in zip(good, pool.map(decode, good)):
                if err is not None:
                    result.bad.append((key[0], key[1], err))
            result.chunks += len(part)
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()
    return result
