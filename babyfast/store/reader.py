"""Chunk bytes of a babyfast store without zarr-python: (video id, chunk index) -> stored GOP bytes.

`ChunkReader` turns (video, chunk) pairs into shard byte-range requests from each video's
`videos/<id>/frames/zarr.json` (read once, cached) and hands them to the C++ `ShardReader`
(`babyfast._core`), which reads them on a thread pool with the GIL released into one reusable arena.
The bytes are exactly those zarr-python stores for the chunk: the encoded GOP followed by its 4-byte
crc32c; `batch.payload(i)` is the GOP alone.

This module must stay free of zarr: it is the fast path.
"""
from __future__ import annotations

import json
import logging
import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babyfast._core import ChunkBatch, ShardReader
from babyfast._fork import rebuild_after_fork
from babyfast.store import _limits as limits
from babyfast.store.layout import bounded_int

log = logging.getLogger(__name__)

__all__ = ["ChunkBatch", "ChunkReader", "LayoutError", "VideoLayout"]

_VIDEOS = "videos"
_FRAMES = "frames"


class LayoutError(ValueError):
    """A video's frames array is not laid out the way the fast reader can read it."""


@dataclass(frozen=True)
class VideoLayout:
    """Where a video's chunks are: what the reader needs from `videos/<id>/frames/zarr.json`."""

    video_id: str
    frames_dir: str  # the array's folder; shard s of a default-encoded array is frames_dir/c/<s>/0/0/0
    frames: int  # T
    height: int
    width: int
    gop: int  # G: frames per chunk
    shard_chunks: int  # S: chunks per shard
    index_location: str  # "start" | "end"
    _key_prefix: str = field(repr=False)  # "c/" or "c." (default encoding), "" (v2 encoding)
    _key_suffix: str = field(repr=False)  # "/0/0/0" or ".0.0.0"

    @property
    def num_chunks(self) -> int:
        """ceil(T / G): the last chunk may hold fewer than G real frames."""
        return -(-self.frames // self.gop)

    @property
    def num_shards(self) -> int:
        return -(-self.num_chunks // self.shard_chunks)

    def shard_path(self, shard: int) -> str:
        """The file holding shard `shard` (chunks shard*S .. shard*S + S - 1)."""
        return f"{self.frames_dir}{os.sep}{self._key_prefix}{shard}{self._key_suffix}"

    def shards_on_disk(self) -> set[int]:
        """The shard numbers that have an entry on disk, from one directory listing: what the array holds
        in fact, whatever its metadata claims."""
        prefix, suffix = self._key_prefix, self._key_suffix
        # "c/" + s + "/0/0/0" lists folder c for folders named s; "c." + s + ".0.0.0" lists files named so
        if prefix.endswith(os.sep):
            folder, head = Path(self.frames_dir, prefix), ""
        else:
            folder, head = Path(self.frames_dir), prefix
        tail = "" if suffix.startswith(os.sep) else suffix
        try:
            names = os.listdir(folder)
        except OSError:
            return set()
        found = set()
        for name in names:
            core = name[len(head):len(name) - len(tail)] if name.startswith(head) and name.endswith(tail) else ""
            if core.isdigit() and core.isascii():
                found.add(int(core))
        return found


def _expect(cond: bool, meta: Path, what: str, got: Any) -> None:
    if not cond:
        raise LayoutError(f"{meta}: {what}, got {got!r} (the fast reader reads babyfast store format 1 only)")


def _obj(value: Any, meta: Path, what: str) -> dict[str, Any]:
    """A JSON object of the metadata (absent: empty), or LayoutError."""
    if value is None:
        return {}
    _expect(isinstance(value, dict), meta, f"{what} must be a JSON object", value)
    return value


def _list(value: Any, meta: Path, what: str) -> list[Any]:
    if value is None:
        return []
    _expect(isinstance(value, list), meta, f"{what} must be a JSON list", value)
    return value


def _whole(value: Any, lo: int, hi: int, meta: Path, what: str) -> int:
    try:
        return bounded_int(value, lo, hi, what)
    except ValueError as e:
        raise LayoutError(f"{meta}: {e} (the fast reader reads babyfast store format 1 only)") from None


def _name(codec: Any) -> Any:
    return codec.get("name") if isinstance(codec, dict) else codec


def _parse_layout(video_id: str, frames_dir: Path, meta: dict[str, Any]) -> VideoLayout:
    """Validate a frames array's zarr.json (already parsed) and extract its layout; LayoutError otherwise.

    Every number is checked against `babyfast.store._limits`, so what the reader builds from a layout (one
    request per chunk asked for, one index read per shard) is bounded by the request, never by a claim.
    """
    path = frames_dir / "zarr.json"
    _expect(isinstance(meta, dict), path, "expected a JSON object", type(meta).__name__)
    _expect(meta.get("zarr_format") == 3 and meta.get("node_type") == "array", path,
            "expected a zarr v3 array", (meta.get("zarr_format"), meta.get("node_type")))
    shape = meta.get("shape")
    _expect(isinstance(shape, list) and len(shape) == 4 and shape[3] == 3, path,
            "shape must be (T, H, W, 3)", shape)
    _expect(meta.get("data_type") == "uint8", path, "data_type must be uint8", meta.get("data_type"))
    _expect(not meta.get("storage_transformers"), path, "storage_transformers must be empty",
            meta.get("storage_transformers"))
    assert isinstance(shape, list)  # checked by _expect above, which raises otherwise
    t = _whole(shape[0], 0, limits.MAX_FRAMES, path, "frames (shape[0])")
    h = _whole(shape[1], 1, limits.MAX_SIDE, path, "height (shape[1])")
    w = _whole(shape[2], 1, limits.MAX_SIDE, path, "width (shape[2])")
    grid = _obj(meta.get("chunk_grid"), path, "chunk_grid")
    _expect(grid.get("name") == "regular", path, "chunk_grid must be regular", grid.get("name"))
    shard_shape = _obj(grid.get("configuration"), path, "chunk_grid configuration").get("chunk_shape")
    codecs = _list(meta.get("codecs"), path, "codecs")
    _expect(len(codecs) == 1 and isinstance(codecs[0], dict) and codecs[0].get("name") == "sharding_indexed",
            path, "codecs must be exactly [sharding_indexed]", [_name(c) for c in codecs])
    conf = _obj(codecs[0].get("configuration"), path, "sharding configuration")
    inner_shape = conf.get("chunk_shape")
    _expect(isinstance(shard_shape, list) and len(shard_shape) == 4 and list(shard_shape[1:]) == [h, w, 3],
            path, f"shard shape must be (S*G, {h}, {w}, 3)", shard_shape)
    _expect(isinstance(inner_shape, list) and len(inner_shape) == 4 and list(inner_shape[1:]) == [h, w, 3],
            path, f"inner chunk shape must be (G, {h}, {w}, 3)", inner_shape)
    assert isinstance(shard_shape, list) and isinstance(inner_shape, list)  # checked by _expect above
    g = _whole(inner_shape[0], 1, limits.MAX_GOP, path, "the chunk length G")
    _expect(g * h * w * 3 <= limits.MAX_CHUNK_BYTES, path,
            f"a chunk must decode to at most {limits.MAX_CHUNK_BYTES} bytes", f"{g} x {h} x {w} x 3")
    shard_len = _whole(shard_shape[0], g, min(g * limits.MAX_SHARD_CHUNKS, limits.MAX_SHARD_FRAMES), path,
                       "the shard length S*G")
    _expect(shard_len % g == 0, path, f"shard length must be a multiple of the chunk length G={g}", shard_len)
    index_codecs = [(_name(c), _obj(c.get("configuration"), path, "index codec configuration").get("endian")
                     if isinstance(c, dict) else None)
                    for c in _list(conf.get("index_codecs"), path, "index_codecs")]
    _expect(index_codecs == [("bytes", "little"), ("crc32c", None)], path,
            "index_codecs must be [bytes(endian=little), crc32c]", conf.get("index_codecs"))
    location = conf.get("index_location", "end")
    _expect(location in ("start", "end"), path, "index_location must be 'start' or 'end'", location)
    inner_codecs = [_name(c) for c in _list(conf.get("codecs"), path, "inner chunk codecs")]
    _expect(bool(inner_codecs) and inner_codecs[-1] == "crc32c", path,
            "inner chunk codecs must end with crc32c", inner_codecs)
    cke = _obj(meta.get("chunk_key_encoding"), path, "chunk_key_encoding") or {"name": "default"}
    name = cke.get("name")
    sep = _obj(cke.get("configuration"), path, "chunk_key_encoding configuration").get(
        "separator", "/" if name == "default" else ".")
    _expect(name in ("default", "v2") and sep in ("/", "."), path,
            "chunk_key_encoding must be default or v2 with separator '/' or '.'", cke)
    # Keys use '/' as the store's separator; on disk that is the OS separator.
    prefix = ("c" + sep if name == "default" else "").replace("/", os.sep)
    suffix = (sep + "0") * 3
    return VideoLayout(video_id=video_id, frames_dir=str(frames_dir), frames=t, height=h, width=w, gop=g,
                       shard_chunks=shard_len // g, index_location=location,
                       _key_prefix=prefix, _key_suffix=suffix.replace("/", os.sep))


class ChunkReader:
    """Reads stored chunks of a babyfast store by (video id, chunk index), without zarr-python.

    Chunk c of a video is frames [c*G, (c+1)*G) (one GOP); `num_chunks(video)` is ceil(T/G).

    >>> reader = ChunkReader("demo/store", threads=2)            # doctest: +SKIP
    >>> batch = reader.read([("v0001", 0), ("v0002", 17)])       # doctest: +SKIP
    >>> gop = bytes(batch.payload(1))  # doctest: +SKIP  (the encoded GOP; batch[1] adds its crc32c)
    """

    def __init__(self, store_path: str | os.PathLike[str], threads: int = 2, verify: bool = True,
                 index_cache: int = 4096) -> None:
        """Open a store for reading.

        Args:
            store_path: the store's root folder (a zarr v3 group).
            threads: threads reading in parallel (the calling thread is one of them).
            verify: check every chunk's crc32c; a mismatch is reported as a corrupt chunk.
            index_cache: how many shard indexes to keep (LRU).
        """
        self._root = Path(store_path)
        if not (self._root / "zarr.json").is_file():
            raise FileNotFoundError(f"no zarr store at {str(self._root)!r} (no zarr.json there)")
        self._verify = bool(verify)
        self._threads = threads
        self._index_cache = index_cache
        self._reader: ShardReader | None = ShardReader(threads=threads, index_cache=index_cache)
        # The C++ reader's threads do not survive fork(): a forked child (a DataLoader worker) makes its own.
        rebuild_after_fork(self)
        self._layouts: dict[str, VideoLayout] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Pickles as its settings (for spawned DataLoader workers); the reader is rebuilt on arrival.
        return {"store_path": str(self._root), "threads": self._threads, "verify": self._verify,
                "index_cache": self._index_cache}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["store_path"], threads=state["threads"], verify=state["verify"],
                      index_cache=state["index_cache"])

    @property
    def store_path(self) -> Path:
        return self._root

    @property
    def shard_reader(self) -> ShardReader:
        """The C++ reader underneath (stats(), shard_index())."""
        return self._own_reader()

    def _after_fork(self) -> None:
        self._reader = None

    def _own_reader(self) -> ShardReader:
        if self._reader is None:
            log.debug("forked: a new shard reader for process %d", os.getpid())
            self._reader = ShardReader(threads=self._threads, index_cache=self._index_cache)
        return self._reader

    def layout(self, video_id: str) -> VideoLayout:
        """The layout of a video's frames array; KeyError if the store has no such video."""
        lay = self._layouts.get(video_id)
        if lay is None:
            lay = self._load(video_id)
        return lay

    def num_chunks(self, video_id: str) -> int:
        """How many chunks (GOPs) the video has: ceil(T / G)."""
        return self.layout(video_id).num_chunks

    def _load(self, video_id: str) -> VideoLayout:
        if not isinstance(video_id, str) or not video_id or video_id in (".", "..") or "/" in video_id \
                or os.sep in video_id:
            raise KeyError(f"no video {video_id!r} in store {str(self._root)!r} (not a valid video id)")
        frames_dir = self._root / _VIDEOS / video_id / _FRAMES
        meta_path = frames_dir / "zarr.json"
        try:
            with open(meta_path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > limits.MAX_METADATA_BYTES:
                    raise LayoutError(f"{meta_path}: {size} bytes, more than the {limits.MAX_METADATA_BYTES} "
                                      f"an array's metadata may hold")
                meta = json.loads(f.read())
        except FileNotFoundError:
            raise KeyError(f"no video {video_id!r} in store {str(self._root)!r} (no {meta_path})") from None
        except OSError as e:
            raise LayoutError(f"{meta_path}: cannot read: {e.strerror or e}") from e
        except (ValueError, RecursionError) as e:
            raise LayoutError(f"{meta_path}: not valid JSON ({e})") from e
        lay = _parse_layout(video_id, frames_dir, meta)
        self._layouts[video_id] = lay
        log.debug("layout of %s: %s", video_id, lay)
        return lay

    def request(self, video_id: str, chunk: int) -> tuple[str, int, int, str]:
        """The C++ request (shard path, inner index, chunks per shard, index location) for one chunk."""
        lay = self.layout(video_id)
        c = self._check_chunk(lay, video_id, chunk)
        s = lay.shard_chunks
        return (lay.shard_path(c // s), c % s, s, lay.index_location)

    @staticmethod
    def _check_chunk(lay: VideoLayout, video_id: str, chunk: Any) -> int:
        try:
            c = operator.index(chunk)
        except TypeError:
            raise TypeError(f"video {video_id!r}: chunk index must be an int, got {type(chunk).__name__}") from None
        n = lay.num_chunks
        if not 0 <= c < n:
            raise IndexError(f"video {video_id!r}: chunk {c} out of range (valid 0..{n - 1}, "
                             f"{n} chunks of {lay.gop} frames for {lay.frames} frames)")
        return c

    def read(self, pairs: Iterable[tuple[str, int]], on_error: str = "raise") -> ChunkBatch:
        """Read the stored bytes of each (video_id, chunk_index) pair, in order (repeats allowed).

        on_error='raise' raises the first failure, naming the video, the chunk and the shard file
        (FileNotFoundError for a missing shard, ValueError for a corrupt index or chunk);
        on_error='mark' returns the batch, with batch.error(i) saying what went wrong with item i.
        An unknown video (KeyError) or a chunk index out of range (IndexError) raises either way.
        """
        if on_error not in ("raise", "mark"):
            raise ValueError(f"on_error must be 'raise' or 'mark', got {on_error!r}")
        pairs = pairs if isinstance(pairs, (list, tuple)) else list(pairs)
        layouts = self._layouts
        requests = []
        for video_id, chunk in pairs:
            lay = layouts.get(video_id)
            if lay is None:
                lay = self._load(video_id)
            c = chunk if type(chunk) is int and 0 <= chunk < lay.num_chunks else self._check_chunk(lay, video_id, chunk)
            s = lay.shard_chunks
            # the path of the shard asked for, made here: a layout claiming 10**15 frames costs nothing
            requests.append((lay.shard_path(c // s), c % s, s, lay.index_location))
        batch = self._own_reader().read(requests, verify=self._verify, on_error="mark")
        if on_error == "raise" and batch.failed:
            i = batch.first_failed
            video_id, chunk = pairs[i]
            batch.check(i, context=f"video {video_id!r} chunk {chunk}")
        return batch

    def stats(self) -> dict[str, int]:
        """The C++ reader's counters (index cache, arenas, chunks and bytes read)."""
        return self._own_reader().stats()
