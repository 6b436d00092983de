"""Store format 1: layout, validation and the per-video index.

Layout (a zarr v3 group, readable by plain zarr-python):

    zarr.json                      root attrs {"babyfast": {"format": 1, "height", "width", "fps", "gop",
                                   "codec", "quality", "shard_chunks", "created": {...}}}
    videos/<id>/zarr.json          group attrs: source, sha256, subject, age_days, start_time, source_fps,
                                   frames, chunks, source_bytes, ...
    videos/<id>/frames             (T, H, W, 3) uint8, chunk (G, H, W, 3) = one GOP, sharded
    videos/<id>/timestamps         (T,) float64: source time (s) of each stored frame
    videos/<id>/utterances/{start,end,text}   when a transcript was given
    index/{id,frames,chunks,subject,age_days,hours}   one row per video, so planning never walks the tree
    ingest_log.jsonl               one JSON line per ingest event (failures with file and reason)
    .partial/                      videos being written; never visible under videos/ until complete
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ROOT_KEY = "babyfast"
VIDEOS = "videos"
INDEX = "index"
PARTIAL = ".partial"
LOG_FILE = "ingest_log.jsonl"
INDEX_COLUMNS = ("id", "frames", "chunks", "subject", "age_days", "hours")


class StoreError(ValueError):
    """A store that is missing, malformed, or of a format this version cannot read."""


@dataclass(frozen=True)
class StoreInfo:
    """The root attributes of a store, validated."""

    path: Path
    format: int
    height: int | None  # None when videos keep their own aspect ratio (ingest --no-crop)
    width: int | None
    fps: float
    gop: int
    codec: str
    shard_chunks: int
    attrs: dict[str, Any]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise StoreError(f"{path}: not valid JSON ({e})") from e


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def store_info(path: str | os.PathLike[str]) -> StoreInfo:
    """Validate the store at `path` from its root metadata alone (no zarr import, no tree walk)."""
    root = Path(path)
    meta_path = root / "zarr.json"
    if not root.exists():
        raise StoreError(f"{root}: no such store")
    if not meta_path.is_file():
        raise StoreError(f"{root}: not a zarr v3 store (no zarr.json)")
    meta = _read_json(meta_path)
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "group":
        raise StoreError(f"{meta_path}: expected a zarr v3 group, got zarr_format={meta.get('zarr_format')!r} "
                         f"node_type={meta.get('node_type')!r}")
    attrs = (meta.get("attributes") or {}).get(ROOT_KEY)
    if not isinstance(attrs, dict):
        raise StoreError(f"{meta_path}: not a babyfast store (no '{ROOT_KEY}' root attribute)")
    version = attrs.get("format")
    if version != FORMAT_VERSION:
        raise StoreError(f"{root}: store format {version!r} is not supported by this babyfast "
                         f"(reads format {FORMAT_VERSION})")
    try:
        return StoreInfo(path=root, format=version, height=_opt_int(attrs["height"]),
                         width=_opt_int(attrs["width"]),
                         fps=float(attrs["fps"]), gop=int(attrs["gop"]), codec=str(attrs["codec"]),
                         shard_chunks=int(attrs["shard_chunks"]), attrs=attrs)
    except (KeyError, TypeError, ValueError) as e:
        raise StoreError(f"{meta_path}: malformed '{ROOT_KEY}' attribute ({e!r}): {attrs}") from e


def open_store(path: str | os.PathLike[str], mode: str = "r"):
    """Open a babyfast store as a zarr group after validating its format. Returns (group, StoreInfo)."""
    import zarr

    from babyfast.store import codec as _codec  # noqa: F401  (registers babyfast.gop with zarr)

    info = store_info(path)
    return zarr.open_group(str(info.path), mode=mode), info


def create_store(path: str | os.PathLike[str], *, height: int | None, width: int | None, fps: float, gop: int, codec: str,
                 quality: int, shard_chunks: int, created: dict[str, Any]) -> StoreInfo:
    """Create an empty store, or check that an existing one has the same frame geometry and codec."""
    import zarr

    root = Path(path)
    wanted = {"format": FORMAT_VERSION, "height": height, "width": width, "fps": fps, "gop": gop,
              "codec": codec, "quality": quality, "shard_chunks": shard_chunks}
    if (root / "zarr.json").exists():
        info = store_info(root)
        have = {k: info.attrs.get(k) for k in wanted}
        if have != wanted:
            diff = {k: (have[k], wanted[k]) for k in wanted if have[k] != wanted[k]}
            raise StoreError(f"{root}: existing store was made with other settings (have, asked): {diff}")
        return info
    if root.exists() and any(root.iterdir()):
        raise StoreError(f"{root}: exists, is not empty and is not a babyfast store; refusing to write into it")
    group = zarr.open_group(str(root), mode="w")
    group.attrs[ROOT_KEY] = {**wanted, "created": created}
    return store_info(root)


def video_ids(path: str | os.PathLike[str]) -> list[str]:
    """Complete videos, by walking `videos/` (the index is the fast way; this is the source of truth)."""
    vdir = Path(path) / VIDEOS
    if not vdir.is_dir():
        return []
    return sorted(p.name for p in vdir.iterdir() if (p / "zarr.json").is_file())


def video_attrs(path: str | os.PathLike[str], video_id: str) -> dict[str, Any]:
    meta = Path(path) / VIDEOS / video_id / "zarr.json"
    if not meta.is_file():
        raise KeyError(f"{path}: no video {video_id!r}")
    return _read_json(meta).get("attributes") or {}


def partial_dir(path: str | os.PathLike[str], name: str) -> Path:
    """A fresh private folder under `.partial/` where a node is built before it is renamed into place."""
    d = Path(path) / PARTIAL / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    d.parent.mkdir(parents=True, exist_ok=True)
    return d


def _fsync_tree(path: Path) -> None:
    """Flush every file and folder under `path` to disk, so that a rename that publishes it is durable."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(path: str | os.PathLike[str], built: Path, dest: str) -> None:
    """Move a fully written node from `.partial/` to `dest`, replacing an older one.

    The new node is flushed to disk first. An older node is moved aside to `.partial/~old.*/<dest>` and
    moved back if the second rename fails; `clear_partials` also moves it back after a crash between the two
    renames, so a replacement never loses the version already there.
    """
    root = Path(path)
    target = root / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    _fsync_tree(built)
    old_root = None
    if target.exists():
        old_root = partial_dir(root, "~old")  # "~" cannot start a video id
        aside = old_root / dest
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.rename(target, aside)
        try:
            os.rename(built, target)
        except OSError:
            os.rename(aside, target)
            raise
    else:
        os.rename(built, target)
    _fsync_dir(target.parent)
    if old_root is not None:
        shutil.rmtree(old_root, ignore_errors=True)


def clear_partials(path: str | os.PathLike[str]) -> list[str]:
    """Clean up after interrupted writes (only called by the single writer, before it starts): half-built
    nodes are removed; a node moved aside by `publish` whose replacement never arrived is moved back."""
    root = Path(path)
    pdir = root / PARTIAL
    if not pdir.is_dir():
        return []
    names = sorted(p.name for p in pdir.iterdir())
    for entry in pdir.iterdir():
        if entry.name.startswith("~old.") and entry.is_dir():
            for aside in [*(entry / VIDEOS).glob("*"), entry / INDEX]:
                dest = root / aside.relative_to(entry)
                if aside.exists() and not dest.exists():
                    log.warning("%s: restoring %s, moved aside by a replacement that did not finish", root, dest)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(aside, dest)
    shutil.rmtree(pdir, ignore_errors=True)
    return names


def index_columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-video rows (see `index_row`) as the index's numpy columns, in row order."""
    return {
        "id": np.array([r["id"] for r in rows], dtype=str),
        "frames": np.array([r["frames"] for r in rows], dtype=np.int64),
        "chunks": np.array([r["chunks"] for r in rows], dtype=np.int64),
        "subject": np.array([r.get("subject") or "" for r in rows], dtype=str),
        "age_days": np.array([np.nan if r.get("age_days") is None else r["age_days"] for r in rows],
                             dtype=np.float64),
        "hours": np.array([r["frames"] / r["fps"] / 3600.0 for r in rows], dtype=np.float64),
    }


def write_index(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Rewrite `index/` from per-video rows, atomically as seen from `videos/` readers."""
    import zarr

    rows = sorted(rows, key=lambda r: r["id"])
    built = partial_dir(path, INDEX)
    group = zarr.open_group(str(built), mode="w")
    group.attrs["videos"] = len(rows)
    for name, values in index_columns(rows).items():
        arr = group.create_array(name, shape=values.shape, dtype=values.dtype if name not in ("id", "subject")
                                 else str, chunks=(max(1, len(values)),))
        if len(values):
            arr[:] = values
    publish(path, built, INDEX)


def index_row(video_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"id": video_id, "frames": attrs["frames"], "chunks": attrs["chunks"], "subject": attrs.get("subject"),
            "age_days": attrs.get("age_days"), "fps": attrs["fps"]}


def read_index(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The per-video index as numpy columns; rebuilt from the tree (with a warning) if it is missing."""
    import zarr

    info = store_info(path)
    idir = info.path / INDEX
    if not (idir / "zarr.json").is_file():
        ids = video_ids(info.path)
        if ids:
            log.warning("%s: index missing; reading %d video headers instead", info.path, len(ids))
        return index_columns([index_row(v, video_attrs(info.path, v)) for v in ids])
    group = zarr.open_group(str(idir), mode="r")
    out = {name: np.asarray(group[name][:]) for name in INDEX_COLUMNS}
    n = {name: len(v) for name, v in out.items()}
    if len(set(n.values())) != 1:
        raise StoreError(f"{idir}: index columns differ in length: {n}")
    return out


def append_log(path: str | os.PathLike[str], events: list[dict[str, Any]]) -> None:
    """Append events to the store's ingest log, atomically (the whole file is rewritten then renamed)."""
    if not events:
        return
    log_path = Path(path) / LOG_FILE
    old = log_path.read_bytes() if log_path.exists() else b""
    new = b"".join(json.dumps(e, sort_keys=True).encode() + b"\n" for e in events)
    tmp = log_path.with_name(f".{LOG_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(old + new)
    os.replace(tmp, log_path)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    log_path = Path(path) / LOG_FILE
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
