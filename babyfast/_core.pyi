# Generated from the built extension by pybind11-stubgen 3.0.0 (make stubs); tests/test_core_stub.py checks it matches.
"""
babyfast C++ core: shard reader, clip planner, colour and resize kernels, YUV converter (no torch, no CUDA).
"""
from __future__ import annotations

import collections.abc
import typing

import numpy
import numpy.typing
import typing_extensions

__all__: list[str] = ['ChunkBatch', 'ClipPlanner', 'ShardReader', 'colour_crop', 'colour_has_avx2', 'crc32c', 'crc32c_has_hardware', 'resize_crop', 'resize_has_avx2', 'yuv420_to_rgb']
class ChunkBatch:
    """
    The chunks of one read, in one arena. Supports the buffer protocol (1-D, read-only uint8 over the whole
    arena); batch[i] is a zero-copy memoryview of chunk i's stored bytes (payload + 4-byte crc32c),
    batch.payload(i) the same without the crc suffix. Views keep the batch and its arena alive; the arena
    goes back to the reader's pool once the batch and all its views are gone.
    """
    def __getitem__(self, i: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
        """
        Zero-copy memoryview of chunk i's stored bytes (payload + 4-byte crc32c).
        """
    def __len__(self) -> int:
        ...
    def __repr__(self) -> str:
        ...
    def check(self, i: typing.SupportsInt | typing.SupportsIndex, context: str = '') -> None:
        """
        Raises chunk i's error (FileNotFoundError, OSError or ValueError) with `context` in front, if it failed; returns None otherwise.
        """
    def error(self, i: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
        """
        None when chunk i was read, else the message saying what went wrong.
        """
    def offset(self, i: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Byte offset of chunk i in the batch's buffer.
        """
    def ok(self, i: typing.SupportsInt | typing.SupportsIndex) -> bool:
        """
        True when chunk i was read (and verified, if asked).
        """
    def payload(self, i: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
        """
        Zero-copy memoryview of chunk i's payload (its stored bytes without the crc32c suffix).
        """
    def size(self, i: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Stored size of chunk i in bytes (0 for a failed chunk).
        """
    @property
    def arena_capacity(self) -> int:
        """
        Capacity of the (reused) arena behind this batch.
        """
    @property
    def failed(self) -> int:
        """
        How many chunks failed (only with on_error='mark').
        """
    @property
    def first_failed(self) -> typing.Any:
        """
        Index of the first failed chunk, or None.
        """
    @property
    def nbytes(self) -> int:
        """
        Length of the batch's buffer in bytes.
        """
class ShardReader:
    """
    Reads inner chunks of zarr v3 shards (sharding codec with index codecs [bytes(little), crc32c]) without
    zarr-python, on a thread pool, into reusable arenas, with the GIL released.
    
        reader = ShardReader(threads=2)
        batch = reader.read([("store/videos/v0/frames/c/0/0/0/0", 5, 64, "end")])
        stored = bytes(batch[0])  # exactly the bytes zarr-python holds for that inner chunk
    """
    def __init__(self, threads: typing.SupportsInt | typing.SupportsIndex = 2, index_cache: typing.SupportsInt | typing.SupportsIndex = 4096) -> None:
        ...
    def read(self, requests: typing.Any, verify: bool = True, on_error: str = 'raise') -> ChunkBatch:
        """
        Reads a batch of inner chunks.
        
        requests: sequence of (path, inner, chunks_per_shard, index_location) with index_location 'start'|'end'.
        verify: check each chunk's crc32c suffix.
        on_error: 'raise' raises the first failure (FileNotFoundError for a missing shard, ValueError for a
        corrupt index or a bad chunk); 'mark' returns the batch and reports failures through batch.error(i).
        """
    def shard_index(self, path: str, chunks_per_shard: typing.SupportsInt | typing.SupportsIndex, index_location: str = 'end') -> list:
        """
        The decoded index of one shard: a list of (offset, nbytes), None for an absent chunk.
        """
    def stats(self) -> dict:
        """
        Counters: index cache hits/misses/size, arenas created/reused/grown/idle, batches, chunks, bytes.
        """
    @property
    def threads(self) -> int:
        ...
class ClipPlanner:
    """
    Keyed, never-materialized clip order over all (video, start frame) candidates.
    
    Candidates of video v start at k*stride for k = 0 .. (frames[v] - clip_len) // stride. The order of an
    epoch is a pure function of (seed, epoch, position); consumer r of `world` takes positions r, r+world, ...
    Orders: 'shuffle' (a keyed permutation of everything), 'age' (youngest first, shuffled inside consecutive
    windows of `window` positions), 'age_mix' (age order with windows W, 2W, 4W, ... and a last window that
    holds the whole remainder). See babyfast.loader.plan.ClipPlan for the checked Python API.
    """
    def __init__(self, frames: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], ages: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, clip_len: typing.SupportsInt | typing.SupportsIndex, stride: typing.SupportsInt | typing.SupportsIndex | None = None, order: str = 'shuffle', seed: typing.SupportsInt | typing.SupportsIndex = 0, window: typing.SupportsInt | typing.SupportsIndex = 8192) -> None:
        ...
    def at(self, epoch: typing.SupportsInt | typing.SupportsIndex, positions: typing.Annotated[numpy.typing.ArrayLike, numpy.int64]) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.int64]]:
        """
        (video_index, start_frame) int64 arrays of the candidates at these epoch positions.
        """
    def candidate(self, epoch: typing.SupportsInt | typing.SupportsIndex, position: typing.SupportsInt | typing.SupportsIndex) -> tuple[int, int]:
        """
        (video_index, start_frame) at global epoch position.
        """
    def per_consumer(self, world: typing.SupportsInt | typing.SupportsIndex, drop_last: bool = True, offset: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
        """
        Clips per consumer in one epoch, of the positions from `offset` on: (N - offset) // world with drop_last, rounded up with pad.
        """
    def plan(self, epoch: typing.SupportsInt | typing.SupportsIndex, consumer: typing.SupportsInt | typing.SupportsIndex = 0, world: typing.SupportsInt | typing.SupportsIndex = 1, start: typing.SupportsInt | typing.SupportsIndex = 0, count: typing.SupportsInt | typing.SupportsIndex | None = None, drop_last: bool = True, offset: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.int64]]:
        """
        Clips start .. start+count-1 of `consumer`'s share of `epoch` as (video_index, start_frame) int64 arrays; count defaults to the rest of the share; shares begin at epoch position `offset`.
        """
    def window_bounds(self, position: typing.SupportsInt | typing.SupportsIndex) -> tuple[int, int]:
        """
        [begin, end) of the shuffle window holding epoch position `position`.
        """
    @property
    def clip_len(self) -> int:
        ...
    @property
    def num_candidates(self) -> int:
        ...
    @property
    def num_videos(self) -> int:
        ...
    @property
    def order(self) -> str:
        ...
    @property
    def seed(self) -> int:
        ...
    @property
    def stride(self) -> int:
        ...
    @property
    def window(self) -> int:
        ...
def colour_crop(src: typing.Any, box: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(4)"], flip: bool, matrix: typing.Any, offset: typing.Any, out: typing.Any, simd: bool = True) -> None:
    """
    out[:] = clamp(round(src[:, y0:y0+h, x0:x0+w] @ matrix.T + offset)), each row mirrored when `flip`.
    
    src: uint8 (frames, H, W, 3) numpy array with packed pixels; box: (y0, x0, h, w); matrix: 3x3 and
    offset: 3 entries, in 0..255 units (|matrix| <= 16, |offset| <= 4096); out: C-contiguous uint8
    (frames, h, w, 3), not overlapping src. Fixed point with 11-14 fractional bits, the most that fit the
    largest weight (within 0.03 grey levels of the exact value before rounding for |matrix| < 2, 0.19 at
    the limit); AVX2 when the CPU has it (`simd=False` forces the portable path, same bytes).
    """
def colour_has_avx2() -> bool:
    """
    True when colour_crop uses its AVX2 kernel on this machine.
    """
def crc32c(data: typing_extensions.Buffer, crc: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
    """
    crc32c (Castagnoli) of a contiguous buffer, continuing from `crc`; SSE4.2 when the CPU has it.
    """
def crc32c_has_hardware() -> bool:
    """
    True when crc32c() uses the SSE4.2 instruction on this machine.
    """
def resize_crop(src: typing.Any, box: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(4)"], flip: bool, out: typing.Any, matrix: typing.Any = None, offset: typing.Any = None, simd: bool = True) -> None:
    """
    out[:] = the antialiased bilinear resize of src[:, y0:y0+h, x0:x0+w] to out's height and width (torch's
    antialias=True, align_corners=False), each row mirrored when `flip`, rounded once. With `matrix` and
    `offset`, the box is first mapped as colour_crop maps it (the same bytes), in the same pass.
    
    src: uint8 (frames, H, W, 3) numpy array with packed pixels, any row and frame strides; box: (y0, x0, h,
    w); out: C-contiguous uint8 (frames, out_h, out_w, 3), not overlapping src; matrix 3x3 and offset 3
    entries, as colour_crop takes them. Fixed point (16-bit weights,
    values kept at 1/256 of a grey level between the passes): within 0.02 grey levels of the exact resize
    before the rounding for the loader's boxes. AVX2 when the CPU has it, 16 frames at a time (`simd=False` forces the
    portable path, same bytes).
    """
def resize_has_avx2() -> bool:
    """
    True when resize_crop uses its AVX2 kernel on this machine.
    """
def yuv420_to_rgb(y: typing.Any, u: typing.Any, v: typing.Any, out: typing.Any, simd: bool = True) -> None:
    """
    out[:] = the BT.601 limited-range RGB of 8-bit YUV 4:2:0 planes, rounded (within one grey level of the
    float64 value; swscale's unscaled path is 0.7-1.6 levels dark on average).
    
    y: uint8 (>= H, >= W) plane; u, v: uint8 (>= (H+1)//2, >= (W+1)//2) planes with the same row stride
    (a decoder's planes, line padding included); out: uint8 (H, W, 3) with packed pixels, whose shape
    gives the frame's size. AVX2 when the CPU has it (`simd=False` forces the portable path, same bytes).
    """
