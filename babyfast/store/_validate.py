"""Whether a stored video's metadata can be trusted, and whether what ingest wrote is all there.

`load_video` is the one judge of a video's metadata: `babyfast check` reports what it refuses and the
loader skips the videos it refuses, so `check` says "all sound" exactly when the loader will not trip.
Every claim (frames, shapes, timestamps, utterances) is checked against the limits of
`babyfast.store._limits` and against the other claims and the files on disk before anything is allocated
from it.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from babyfast.store import _limits as limits
from babyfast.store import layout as fmt
from babyfast.store.reader import ChunkReader, LayoutError, VideoLayout, _parse_layout

log = logging.getLogger(__name__)

__all__ = ["StoredVideo", "load_video", "verify_complete", "overlapping_chunks"]

# a timestamps chunk longer than the video is allowed (another writer's choice) up to this many values
_MAX_TIMESTAMP_CHUNK = 65536


@dataclass(frozen=True)
class StoredVideo:
    """A video whose metadata passed `load_video`."""

    id: str
    attrs: dict[str, Any]
    layout: VideoLayout
    timestamps: np.ndarray  # (frames,) float64, finite, non-decreasing
    utterances: list[tuple[float, float, str]]


def _fail(where: Path, what: str) -> fmt.StoreError:
    return fmt.StoreError(f"{where}: {what}")


def _same(attrs: dict[str, Any], key: str, want: Any, where: Path, against: str) -> None:
    if attrs.get(key) != want:
        raise _fail(where, f"attribute {key!r} is {attrs.get(key)!r}, {against} says {want!r}")


def _vector_meta(meta_path: Path, length: int | None, dtypes: tuple[str, ...]) -> int:
    """Check a 1-d array's zarr.json before zarr reads it; returns its length."""
    try:
        meta = fmt.read_json(meta_path)
    except FileNotFoundError:
        raise _fail(meta_path.parent, "missing (no zarr.json)") from None
    shape, dtype = meta.get("shape"), meta.get("data_type")
    if not (isinstance(shape, list) and len(shape) == 1):
        raise _fail(meta_path, f"expected a 1-d array, got shape {shape!r}")
    try:
        n = fmt.bounded_int(shape[0], 0, limits.MAX_FRAMES, "its length")
    except ValueError as e:
        raise _fail(meta_path, str(e)) from None
    if length is not None and n != length:
        raise _fail(meta_path, f"holds {n} values, the video has {length} frames")
    if dtype not in dtypes:
        raise _fail(meta_path, f"data_type must be {' or '.join(dtypes)}, got {dtype!r}")
    grid = meta.get("chunk_grid")
    chunk = grid.get("configuration", {}).get("chunk_shape") if isinstance(grid, dict) and \
        isinstance(grid.get("configuration"), dict) else None
    if not (isinstance(chunk, list) and len(chunk) == 1):
        raise _fail(meta_path, f"expected a regular chunk grid of 1-d chunks, got {grid!r}")
    try:
        fmt.bounded_int(chunk[0], 1, max(n, _MAX_TIMESTAMP_CHUNK), "its chunk length")
    except ValueError as e:
        raise _fail(meta_path, str(e)) from None
    return n


def _read_vector(array_dir: Path) -> np.ndarray:
    import zarr

    from babyfast.store import codec as _codec  # noqa: F401  (registers babyfast.gop with zarr)

    try:
        return np.asarray(zarr.open_array(str(array_dir), mode="r")[:])
    except Exception as e:  # noqa: BLE001  (zarr's errors about damaged chunks are of many kinds)
        raise _fail(array_dir, f"unreadable ({type(e).__name__}: {e})") from e


def read_timestamps(video_dir: Path, frames: int) -> np.ndarray:
    """The source time of every stored frame: `frames` finite, non-decreasing float64 values."""
    tdir = video_dir / "timestamps"
    _vector_meta(tdir / "zarr.json", frames, ("float64",))
    ts = _read_vector(tdir)
    if ts.shape != (frames,):
        raise _fail(tdir, f"read {ts.shape} values, the video has {frames} frames")
    if frames and not np.all(np.isfinite(ts)):
        raise _fail(tdir, f"frame {int(np.flatnonzero(~np.isfinite(ts))[0])} has timestamp "
                          f"{ts[~np.isfinite(ts)][0]!r}")
    if frames > 1 and np.any(np.diff(ts) < 0):
        i = int(np.flatnonzero(np.diff(ts) < 0)[0])
        raise _fail(tdir, f"timestamps go back in time at frame {i + 1} ({ts[i]!r} then {ts[i + 1]!r})")
    return ts


def read_utterances(video_dir: Path) -> list[tuple[float, float, str]]:
    """The video's transcript, [] when it has none."""
    udir = video_dir / "utterances"
    if not udir.exists():
        return []
    n = _vector_meta(udir / "start" / "zarr.json", None, ("float64",))
    if n > limits.MAX_UTTERANCES:
        raise _fail(udir, f"{n} utterances, more than the {limits.MAX_UTTERANCES} a video may have")
    _vector_meta(udir / "end" / "zarr.json", n, ("float64",))
    _vector_meta(udir / "text" / "zarr.json", n, ("string",))
    start, end, text = (_read_vector(udir / name) for name in ("start", "end", "text"))
    if not (start.shape == end.shape == text.shape == (n,)):
        raise _fail(udir, f"start, end and text differ in length: {start.shape}, {end.shape}, {text.shape}")
    ok = np.isfinite(start) & np.isfinite(end) & (start >= 0) & (start <= end)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise _fail(udir, f"utterance {i} runs from {start[i]!r} to {end[i]!r} s")
    return list(zip(start.tolist(), end.tolist(), [str(t) for t in text], strict=True))


def load_video(reader: ChunkReader, info: fmt.StoreInfo, video_id: str,
               indexed_frames: int | None = None) -> StoredVideo:
    """A stored video's metadata, checked; StoreError naming the file and what is wrong otherwise.

    The array's layout, the video's attributes, the index row, the store's root attributes and the
    timestamps must agree on frames, chunks, GOP and frame size; timestamps are finite and never go back;
    utterances have start <= end.
    """
    vdir = info.path / fmt.VIDEOS / video_id
    meta = vdir / "zarr.json"
    try:
        attrs = fmt.video_attrs(info.path, video_id)
    except KeyError:
        raise _fail(vdir, "no such video (no zarr.json)") from None
    try:
        lay = reader.layout(video_id)
    except KeyError as e:
        raise _fail(vdir / "frames", f"missing ({e.args[0] if e.args else e})") from None
    except LayoutError as e:
        raise fmt.StoreError(f"unreadable array metadata: {e}") from e
    _same(attrs, "frames", lay.frames, meta, "its frames array")
    _same(attrs, "chunks", lay.num_chunks, meta, "its frames array")
    _same(attrs, "gop", lay.gop, meta, "its frames array")
    _same(attrs, "height", lay.height, meta, "its frames array")
    _same(attrs, "width", lay.width, meta, "its frames array")
    if lay.gop != info.gop:
        raise _fail(vdir / "frames", f"chunks of {lay.gop} frames, the store's root says gop {info.gop}")
    if info.height is not None and (lay.height, lay.width) != (info.height, info.width):
        raise _fail(vdir / "frames", f"frames are {lay.height}x{lay.width}, the store's root says "
                                     f"{info.height}x{info.width}")
    _same(attrs, "codec", info.codec, meta, "the store's root")
    fps = attrs.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
        raise _fail(meta, f"attribute 'fps' must be a positive number, got {fps!r}")
    age = attrs.get("age_days")
    if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float)) or not math.isfinite(age)):
        raise _fail(meta, f"attribute 'age_days' must be a number or null, got {age!r}")
    if attrs.get("subject") is not None and not isinstance(attrs["subject"], str):
        raise _fail(meta, f"attribute 'subject' must be a string or null, got {attrs['subject']!r}")
    if indexed_frames is not None and indexed_frames != lay.frames:
        raise _fail(vdir, f"the index says {indexed_frames} frames, the frames array has {lay.frames}")
    # The claims agree; now against the disk, before anything is read that is as long as the video: each
    # shard file vouches for at most MAX_SHARD_FRAMES frames. A video missing more than half its shards is
    # not worth reading, and the bound keeps what its metadata can make us allocate proportional to its files.
    present = sum(1 for s in lay.shards_on_disk() if s < lay.num_shards)
    if lay.num_shards > 2 * present + 1:
        raise _fail(vdir / "frames", f"the array claims {lay.frames} frames in {lay.num_shards} shard files, "
                                     f"{present} are on disk")
    timestamps = read_timestamps(vdir, lay.frames)
    utterances = read_utterances(vdir)
    return StoredVideo(id=video_id, attrs=attrs, layout=lay, timestamps=timestamps, utterances=utterances)


def verify_complete(frames_dir: Path, video_id: str, frames: int) -> None:
    """Check that every chunk of a frames array written by ingest is in its shard files, before it is
    published; StoreError naming the missing chunks otherwise."""
    from babyfast._core import ShardReader

    lay = _parse_layout(video_id, frames_dir, fmt.read_json(frames_dir / "zarr.json"))
    if lay.frames != frames:
        raise _fail(frames_dir, f"the array holds {lay.frames} frames, {frames} were written")
    reader = ShardReader(threads=1, index_cache=0)
    s = lay.shard_chunks
    missing: list[int] = []
    for shard in range(lay.num_shards):  # the shards of the frames written: bounded by what was written
        first = shard * s
        want = min(s, lay.num_chunks - first)
        try:
            entries = reader.shard_index(lay.shard_path(shard), s, lay.index_location)
        except (OSError, ValueError):  # no shard file, or a damaged one: none of its chunks is there
            missing.extend(range(first, first + want))
            continue
        missing.extend(first + i for i in range(want) if entries[i] is None)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise _fail(frames_dir, f"{len(missing)} of {lay.num_chunks} chunks are not in the shard files "
                                f"(chunks {shown}); not published")


def overlapping_chunks(reader: ChunkReader, lay: VideoLayout, shard: int) -> list[tuple[int, str]]:
    """Chunks of one shard whose index entry points at bytes another entry also points at: (chunk, what).
    Their crc32c cannot tell: each copy is intact, only one of them is the right GOP. A shard that cannot
    be read is the chunk reads' finding, not this one's."""
    path = lay.shard_path(shard)
    try:
        entries = reader.shard_reader.shard_index(path, lay.shard_chunks, lay.index_location)
    except (OSError, ValueError):
        return []
    first = shard * lay.shard_chunks
    spans = sorted((e[0], e[1], first + i) for i, e in enumerate(entries) if e is not None and e[1] > 0)
    name = os.path.relpath(path, lay.frames_dir)
    found: dict[int, str] = {}
    end, owner = -1, -1
    for off, n, chunk in spans:
        if off < end:  # which of the two is the right GOP is unknowable: both are reported
            found.setdefault(chunk, f"its bytes in {name} overlap those of chunk {owner} (a damaged shard index)")
            found.setdefault(owner, f"its bytes in {name} overlap those of chunk {chunk} (a damaged shard index)")
        if off + n > end:
            end, owner = off + n, chunk
    return sorted(found.items())
