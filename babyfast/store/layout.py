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
    .lock                          held (flock) by the one ingest writing the store; says who and since when
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from babyfast._atomic import temp_target, write_bytes
from babyfast.store import _limits as limits

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ROOT_KEY = "babyfast"
VIDEOS = "videos"
INDEX = "index"
PARTIAL = ".partial"
LOG_FILE = "ingest_log.jsonl"
LOCK_FILE = ".lock"
INDEX_COLUMNS = ("id", "frames", "chunks", "subject", "age_days", "hours")
# The chunk codecs of format 1; babyfast.store.codec implements them (and imports this list, so that
# validating a store's root needs neither zarr nor PyAV).
CODECS = ("h264", "hevc", "av1", "vp9", "jpeg", "raw")


class StoreError(ValueError):
    """A store that is missing, malformed, or of a format this version cannot read."""


class StoreWriteError(StoreError):
    """A write into the store failed (a full disk, a read-only store, permissions): which path, what was
    being done, and the operating system's reason."""

    def __init__(self, path: str | os.PathLike[str], what: str, cause: str) -> None:
        self.path, self.what, self.cause = Path(path), what, cause
        super().__init__(f"{path}: cannot {what}: {cause}")


@contextmanager
def writing(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn an OSError of the writes inside into a StoreWriteError naming `path`, `what` and the cause.
    Nested, the outermost says what was being done and the innermost why it failed."""
    try:
        yield
    except StoreWriteError as e:
        raise StoreWriteError(path, what, e.cause) from e
    except OSError as e:
        cause = e.strerror or str(e)
        if e.filename and os.fspath(e.filename) != os.fspath(path):
            cause += f" ({os.fspath(e.filename)})"
        raise StoreWriteError(path, what, cause) from e


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


def read_json(path: Path) -> dict[str, Any]:
    """A metadata file of the store as a JSON object; StoreError naming the file for anything else."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limits.MAX_METADATA_BYTES:
                raise StoreError(f"{path}: {size} bytes, more than the {limits.MAX_METADATA_BYTES} a metadata "
                                 f"file may hold")
            meta = json.loads(f.read())
    except FileNotFoundError:
        raise
    except OSError as e:
        raise StoreError(f"{path}: cannot read: {e.strerror or e}") from e
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
        raise StoreError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise StoreError(f"{path}: expected a JSON object, got a JSON {type(meta).__name__}")
    return meta


def bounded_int(value: Any, lo: int, hi: int, what: str) -> int:
    """`value` as an int in [lo, hi]; ValueError saying `what` and the value otherwise (no bool, no 2.5)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{what} must be a whole number, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{what} must be in [{lo}, {hi}], got {value}")
    return int(value)


def _opt_side(v: Any, what: str) -> int | None:
    return None if v is None else bounded_int(v, 1, limits.MAX_SIDE, what)


def _positive(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{what} must be a positive number, got {v!r}")
    return float(v)


def store_info(path: str | os.PathLike[str]) -> StoreInfo:
    """Validate the store at `path` from its root metadata alone (no zarr import, no tree walk)."""
    root = Path(path)
    meta_path = root / "zarr.json"
    if not root.exists():
        raise StoreError(f"{root}: no such store")
    if not meta_path.is_file():
        raise StoreError(f"{root}: not a zarr v3 store (no zarr.json)")
    meta = read_json(meta_path)
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
        if attrs["codec"] not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {attrs['codec']!r}")
        height, width = _opt_side(attrs["height"], "height"), _opt_side(attrs["width"], "width")
        if (height is None) != (width is None):
            raise ValueError(f"height and width are both set or both null, got {height!r} and {width!r}")
        gop = bounded_int(attrs["gop"], 1, limits.MAX_GOP, "gop")
        if attrs["codec"] == "jpeg" and gop != 1:
            raise ValueError(f"codec 'jpeg' stores one frame per chunk: gop must be 1, got {gop}")
        return StoreInfo(path=root, format=version, height=height, width=width,
                         fps=_positive(attrs["fps"], "fps"), gop=gop, codec=attrs["codec"],
                         shard_chunks=bounded_int(attrs["shard_chunks"], 1, limits.MAX_SHARD_CHUNKS, "shard_chunks"),
                         attrs=attrs)
    except (KeyError, TypeError, ValueError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise StoreError(f"{meta_path}: malformed '{ROOT_KEY}' attribute ({what}): {attrs}") from e


def open_store(path: str | os.PathLike[str], mode: Literal["r", "r+", "a", "w", "w-"] = "r"):
    """Open a babyfast store as a zarr group after validating its format. Returns (group, StoreInfo)."""
    import zarr

    from babyfast.store import codec as _codec  # noqa: F401  (registers babyfast.gop with zarr)

    info = store_info(path)
    return zarr.open_group(str(info.path), mode=mode), info


def create_store(path: str | os.PathLike[str], *, height: int | None, width: int | None, fps: float, gop: int,
                 codec: str, quality: int, shard_chunks: int, created: dict[str, Any]) -> StoreInfo:
    """Create an empty store, or check that an existing one has the same frame geometry and codec."""
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
    check_new_store(root)
    # the root metadata in one atomic write: a store is never seen (nor left by a crash) without its attributes
    meta = {"zarr_format": 3, "node_type": "group", "attributes": {ROOT_KEY: {**wanted, "created": created}}}
    with writing(root, "create the store"):
        (root / VIDEOS).mkdir(parents=True, exist_ok=True)
        write_bytes(root / VIDEOS / "zarr.json", json.dumps(_GROUP_META).encode())
        write_bytes(root / "zarr.json", json.dumps(meta, indent=2).encode())
    return store_info(root)


_GROUP_META = {"zarr_format": 3, "node_type": "group", "attributes": {}}


def repair_groups(path: str | os.PathLike[str]) -> list[str]:
    """Write group metadata into every folder of the hierarchy that lacks it (stores written before it
    was added had none at `videos/`), so that plain zarr-python walks the store (`members()`, `tree()`).
    Returns the folders repaired, relative to the store."""
    root = Path(path)
    fixed = []

    def walk(folder: Path) -> bool:
        """Whether `folder` holds a node below it (and so must be a group itself)."""
        holds = False
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith(".") and not (child / "zarr.json").is_file():
                holds |= walk(child)
            elif child.is_dir() and (child / "zarr.json").is_file():
                holds = True
                if read_json(child / "zarr.json").get("node_type") == "group":
                    walk(child)
        if holds and folder != root and not (folder / "zarr.json").is_file():
            with writing(folder / "zarr.json", "write group metadata"):
                write_bytes(folder / "zarr.json", json.dumps(_GROUP_META).encode())
            fixed.append(str(folder.relative_to(root)))
        return holds

    walk(root)
    return sorted(fixed)


def _being_created(entry: Path) -> bool:
    """Whether `entry` is something `create_store` writes before the root metadata that marks a store: the
    lock file, the temporary name of a zarr.json, or `videos/` holding at most its group metadata."""
    if entry.name == LOCK_FILE or temp_target(entry.name) == "zarr.json":
        return True
    if entry.name == VIDEOS and entry.is_dir():
        return all(p.name == "zarr.json" or temp_target(p.name) == "zarr.json" for p in entry.iterdir())
    return False


def check_new_store(path: str | os.PathLike[str]) -> None:
    """Refuse a folder that holds files and is not a babyfast store. Called before the store lock is taken,
    so a folder that another ingest is making a store of at this moment is accepted (`_being_created`)."""
    root = Path(path)
    if not root.exists():
        return
    if not root.is_dir():
        raise StoreError(f"{root}: exists and is not a folder; refusing to write a store there")
    foreign = not all(_being_created(p) for p in root.iterdir())
    # the root metadata may appear between the listing and here: a store, however it was seen
    if (root / "zarr.json").exists():
        store_info(root)
        return
    if foreign:
        raise StoreError(f"{root}: exists, is not empty and is not a babyfast store; refusing to write into it")


def video_ids(path: str | os.PathLike[str]) -> list[str]:
    """Complete videos, by walking `videos/` (the index is the fast way; this is the source of truth)."""
    vdir = Path(path) / VIDEOS
    if not vdir.is_dir():
        return []
    return sorted(p.name for p in vdir.iterdir() if (p / "zarr.json").is_file())


def video_attrs(path: str | os.PathLike[str], video_id: str) -> dict[str, Any]:
    """A video's group attributes; KeyError if there is no such video, StoreError if they are unreadable."""
    meta = Path(path) / VIDEOS / video_id / "zarr.json"
    if not meta.is_file():
        raise KeyError(f"{path}: no video {video_id!r}")
    attrs = read_json(meta).get("attributes")
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise StoreError(f"{meta}: 'attributes' must be a JSON object, got {type(attrs).__name__}")
    return attrs


def partial_dir(path: str | os.PathLike[str], name: str) -> Path:
    """A fresh private folder under `.partial/` where a node is built before it is renamed into place."""
    d = Path(path) / PARTIAL / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    with writing(path, "make a folder for a partial write"):
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
    renames, so a replacement never loses the version already there. (Folders only: a single file is
    written with `babyfast._atomic`.)
    """
    root = Path(path)
    target = root / dest
    with writing(target, "publish"):
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
    """Clean up after interrupted writes: half-built nodes are removed; a node moved aside by `publish`
    whose replacement never arrived is moved back. Only the holder of the store's lock (see
    `babyfast.store._lock`) calls this, before its run writes anything: every partial there belongs to
    a run that has ended, and its workers with it."""
    root = Path(path)
    pdir = root / PARTIAL
    if not pdir.is_dir():
        return []
    names = sorted(p.name for p in pdir.iterdir())
    with writing(pdir, "clean up interrupted writes"):
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
    try:
        with writing(Path(path) / INDEX, "write the index"):
            group = zarr.open_group(str(built), mode="w")
            group.attrs["videos"] = len(rows)
            for name, values in index_columns(rows).items():
                arr = group.create_array(name, shape=values.shape, dtype=values.dtype if name not in ("id", "subject")
                                         else str, chunks=(max(1, len(values)),))
                if len(values):
                    arr[:] = values
            publish(path, built, INDEX)
    finally:
        shutil.rmtree(built, ignore_errors=True)


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
        rows = []
        for v in ids:
            try:
                rows.append(index_row(v, video_attrs(info.path, v)))
            except (KeyError, TypeError, ValueError) as e:  # StoreError included
                raise StoreError(f"{info.path}: index missing, and video {v!r} has unreadable attributes ({e}); "
                                 f"run babyfast check") from e
        return index_columns(rows)
    # the lengths come from the columns' metadata, checked before zarr allocates anything for them
    n = {}
    for name in INDEX_COLUMNS:
        meta_path = idir / name / "zarr.json"
        try:
            shape = read_json(meta_path).get("shape")
        except FileNotFoundError:
            raise StoreError(f"{idir}: index column {name!r} is missing (no {meta_path})") from None
        if not (isinstance(shape, list) and len(shape) == 1):
            raise StoreError(f"{meta_path}: an index column has shape [videos], got {shape!r}")
        try:
            n[name] = bounded_int(shape[0], 0, limits.MAX_VIDEOS, "the number of indexed videos")
        except ValueError as e:
            raise StoreError(f"{meta_path}: {e}") from e
    if len(set(n.values())) != 1:
        raise StoreError(f"{idir}: index columns differ in length: {n}")
    try:
        group = zarr.open_group(str(idir), mode="r")
        out = {name: np.asarray(cast(zarr.Array, group[name])[:]) for name in INDEX_COLUMNS}
    except Exception as e:  # noqa: BLE001  (zarr's errors about a damaged array are of many kinds)
        raise StoreError(f"{idir}: unreadable index ({type(e).__name__}: {e}); run babyfast check") from e
    for name in ("frames", "chunks"):
        if out[name].shape != (n[name],) or not np.issubdtype(out[name].dtype, np.integer):
            raise StoreError(f"{idir}: index column {name!r} must hold {n[name]} integers, got "
                             f"{out[name].dtype} {out[name].shape}")
    return out


def index_problems(index: dict[str, np.ndarray], gop: int) -> dict[int, str]:
    """Rows of the index whose frame or chunk counts cannot be true: row -> what is wrong."""
    frames, chunks = index["frames"].astype(np.int64), index["chunks"].astype(np.int64)
    bad = {}
    for i in np.flatnonzero((frames < 0) | (frames > limits.MAX_FRAMES) | (chunks != -(-frames // gop))):
        bad[int(i)] = (f"the index says {int(frames[i])} frames in {int(chunks[i])} chunks of {gop} (at most "
                       f"{limits.MAX_FRAMES} frames, in ceil(frames / gop) chunks)")
    return bad


def append_log(path: str | os.PathLike[str], events: list[dict[str, Any]]) -> None:
    """Append events to the store's ingest log, atomically (the whole file is rewritten then renamed)."""
    if not events:
        return
    log_path = Path(path) / LOG_FILE
    new = b"".join(json.dumps(e, sort_keys=True).encode() + b"\n" for e in events)
    with writing(log_path, "write the ingest log"):
        old = log_path.read_bytes() if log_path.exists() else b""
        write_bytes(log_path, old + new)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The ingest log's events; a damaged line is skipped with a warning."""
    log_path = Path(path) / LOG_FILE
    if not log_path.exists():
        return []
    events = []
    for i, line in enumerate(log_path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            events.append(event)
        else:
            log.warning("%s: line %d is not a JSON object; skipped", log_path, i)
    return events
