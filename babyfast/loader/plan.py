"""Which clip every rank and DataLoader worker reads: the checked Python face of the C++ clip planner.

A *candidate* is a (video, start frame) pair: video ``v`` has candidates at start frames ``k * stride`` for
``k = 0 .. (frames[v] - span) // stride`` (none when it is shorter than ``span``, the stored frames a clip
covers: ``(clip_len - 1) * frame_step + 1``). The loader passes
the GOP length as ``stride`` so every clip starts on a chunk boundary. The N candidates are never listed:
the order of an epoch is a keyed permutation, a pure function of ``(seed, epoch, position)`` computed in
C++ (``babyfast._core.ClipPlanner``), with O(videos) memory for any N up to 2**62.

Orders
    ``shuffle``  every epoch a fresh keyed permutation of all N candidates.
    ``age``      candidates laid out youngest video first (unknown ages, NaN, last; ties by video index,
                 then start frame), and shuffled inside consecutive windows of ``window`` positions, so
                 every clip of window w is at most as old as every clip of window w + 1.
    ``age_mix``  the age layout with growing windows: window i holds epoch positions
                 ``[W * (2**i - 1), W * (2**(i+1) - 1))`` (sizes W, 2W, 4W, ... for ``W = window``); the
                 last window L, the first whose successor would not fit whole (``W * (2**(L+2) - 1) > N``),
                 runs to N, so it holds between ``W * 2**L`` and ``3 * W * 2**L`` positions. The epoch
                 begins as a strict youngest-first curriculum and ends as a full shuffle of the remainder.
                 ``window_bounds(position)`` returns the window of any position.

Sharding
    Consumer r of ``world`` takes the epoch positions r, r + world, r + 2 * world, ...: ``N // world``
    of them with ``drop_last`` (the last ``N % world`` positions are read by nobody), or
    ``ceil(N / world)`` with pad (``drop_last=False``), where positions past the end wrap to the start of
    the epoch (position p reads p mod N). Each candidate is read exactly once per epoch across all
    consumers, up to that policy.

Ranks and workers (:class:`RankBatches`)
    Consumers are the ranks. A rank's clips are cut into batches of ``batch_size`` in order, and
    DataLoader worker k of K yields batches k, k + K, k + 2K, ... of the rank. ``torch.utils.data``
    DataLoader (``in_order=True``, its default) takes one batch from each worker in turn, so the rank
    receives batches 0, 1, 2, ... whatever K is. The resume state of a rank is therefore just
    ``(epoch, batches_done)``: the number of batches the training loop has *received* (not the number
    workers have prefetched). After a restart with any number of workers, ``worker_batches(k, K,
    batches_done)`` continues with batch ``batches_done`` exactly as an uninterrupted run would.

Example:
    >>> import numpy as np
    >>> from babyfast.loader.plan import ClipPlan, RankBatches
    >>> plan = ClipPlan(np.array([100, 40, 250]), np.array([300.0, 90.0, np.nan]), span=16, seed=7)
    >>> plan.num_candidates  # 6 + 2 + 15 GOP-aligned starts with stride = span
    23
    >>> videos, starts = plan.plan(epoch=0, consumer=1, world=2)
    >>> len(videos) == plan.per_consumer(world=2) == 11
    True
    >>> batches = RankBatches(plan, rank=1, world_size=2, batch_size=3)  # 3 whole batches of its 11 clips
    >>> list(batches.worker_batches(worker=1, num_workers=2, batches_done=1))
    [2]
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from babyfast import _core

log = logging.getLogger(__name__)

ORDERS = ("shuffle", "age", "age_mix")
DEFAULT_WINDOW = 8192
MAX_CANDIDATES = 2**62

__all__ = ["ORDERS", "DEFAULT_WINDOW", "ClipPlan"]  # RankBatches, worker_batch_indices: the loader's machinery


def _int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """`value` as a Python int within [minimum, maximum], or a TypeError/ValueError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} = {value} is not allowed; it must be {allowed}")
    return value


def _frames_array(frames: Any) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 1:
        raise ValueError(f"frames must be 1-D (one frame count per video), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("frames is empty: the planner needs at least one video")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"frames must hold integers (frame counts), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.unsignedinteger) and int(arr.max()) > np.iinfo(np.int64).max:
        bad = int(np.argmax(arr))
        raise ValueError(f"frames[{bad}] = {int(arr[bad])} does not fit in int64")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if (arr < 0).any():
        bad = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"frames[{bad}] = {int(arr[bad])} is negative; frame counts must be >= 0")
    return arr


def _ages_array(ages: Any, num_videos: int) -> np.ndarray | None:
    if ages is None:
        return None
    arr = np.asarray(ages)
    if arr.ndim != 1 or arr.shape[0] != num_videos:
        raise ValueError(f"ages must be 1-D with one entry per video ({num_videos}), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"ages must be numbers (days; NaN = unknown), got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if np.isinf(arr).any():
        bad = int(np.flatnonzero(np.isinf(arr))[0])
        raise ValueError(f"ages[{bad}] = {arr[bad]} is not finite; use NaN for an unknown age")
    return arr


class ClipPlan:
    """The clip order of every epoch over all (video, start frame) candidates of a store.

    Args:
        frames: frame count per video (int, shape [V]); the store index's ``frames`` column.
        ages: age in days per video (float, shape [V], NaN = unknown, ordered last), or None. Needed by
            the ``age`` and ``age_mix`` orders; ignored by ``shuffle``.
        span: stored frames a clip covers (>= 1).
        stride: distance between candidate start frames (>= 1); None means ``span``. Pass the GOP
            length to keep clips chunk-aligned.
        order: ``"shuffle"``, ``"age"`` or ``"age_mix"`` (see the module docstring).
        seed: key of every permutation, an int in [0, 2**64).
        window: shuffle window in candidates for ``age`` (and the first window of ``age_mix``), >= 1.

    Raises:
        ValueError / TypeError naming the argument and its value; ValueError when no video is as long as
        ``span`` (naming the longest) or when there are more than 2**62 candidates.

    Example:
        >>> plan = ClipPlan([64, 64], None, span=32, stride=16)
        >>> videos, starts = plan.plan(epoch=0)
        >>> plan.num_candidates, sorted(zip(videos.tolist(), starts.tolist()))
        (6, [(0, 0), (0, 16), (0, 32), (1, 0), (1, 16), (1, 32)])
    """

    def __init__(
        self,
        frames: Any,
        ages: Any,
        span: int,
        stride: int | None = None,
        order: str = "shuffle",
        seed: int = 0,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self._frames = _frames_array(frames)
        self._ages = _ages_array(ages, self._frames.shape[0])
        span = _int("span", span, 1)
        stride = span if stride is None else _int("stride", stride, 1)
        if order not in ORDERS:
            raise ValueError(f"order = {order!r} is not a clip order; allowed: {', '.join(map(repr, ORDERS))}")
        seed = _int("seed", seed, 0, 2**64 - 1)
        window = _int("window", window, 1)
        if order != "shuffle":
            if self._ages is None:
                raise ValueError(f"order = {order!r} sorts videos by age: pass ages (days per video, NaN = unknown)")
            if np.isnan(self._ages).all():
                log.warning("order = %r but every age is unknown (NaN): videos keep their index order", order)
        self._core = _core.ClipPlanner(self._frames, self._ages, span, stride, order, seed, window)
        log.debug(
            "clip plan: %d candidates over %d videos (span=%d, stride=%d, order=%s, window=%d)",
            self.num_candidates, self.num_videos, span, stride, order, window,
        )

    # -- description -------------------------------------------------------------------------------------
    @property
    def num_candidates(self) -> int:
        """N, the number of (video, start frame) candidates in one epoch."""
        return self._core.num_candidates

    @property
    def num_videos(self) -> int:
        return self._core.num_videos

    @property
    def span(self) -> int:
        """Stored frames a clip covers."""
        return self._core.clip_len

    @property
    def stride(self) -> int:
        return self._core.stride

    @property
    def order(self) -> str:
        return self._core.order

    @property
    def seed(self) -> int:
        return self._core.seed

    @property
    def window(self) -> int:
        return self._core.window

    @property
    def frames(self) -> np.ndarray:
        """Frame count per video (a read-only view)."""
        view = self._frames.view()
        view.flags.writeable = False
        return view

    @property
    def ages(self) -> np.ndarray | None:
        """Age in days per video (a read-only view), or None."""
        if self._ages is None:
            return None
        view = self._ages.view()
        view.flags.writeable = False
        return view

    def __repr__(self) -> str:
        return (
            f"ClipPlan(videos={self.num_videos}, candidates={self.num_candidates}, span={self.span}, "
            f"stride={self.stride}, order={self.order!r}, seed={self.seed}, window={self.window})"
        )

    def __reduce__(self) -> tuple:
        # DataLoader workers started by spawn/forkserver receive the plan pickled: rebuild the C++ side.
        return (ClipPlan, (self._frames, self._ages, self.span, self.stride, self.order, self.seed, self.window))

    # -- planning ----------------------------------------------------------------------------------------
    def per_consumer(self, world: int = 1, drop_last: bool = True, offset: int = 0) -> int:
        """Clips each of `world` consumers gets per epoch from position `offset` on: ``(N - offset) //
        world``, or rounded up with pad."""
        world = _int("world", world, 1)
        offset = _int("offset", offset, 0, self.num_candidates)
        return self._core.per_consumer(world, bool(drop_last), offset)

    def plan(
        self,
        epoch: int,
        consumer: int = 0,
        world: int = 1,
        start: int = 0,
        count: int | None = None,
        drop_last: bool = True,
        offset: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clips ``start .. start + count - 1`` of `consumer`'s share of `epoch` (whose shares begin at epoch
        position `offset`: positions ``offset + consumer + k * world``).

        Returns ``(video_index, start_frame)``, two int64 arrays of `count` entries (default: the rest of
        the share). Computed in C++ with the GIL released, so threads may plan concurrently.
        """
        epoch = _int("epoch", epoch, 0)
        world = _int("world", world, 1)
        consumer = _int("consumer", consumer, 0, world - 1)
        offset = _int("offset", offset, 0, self.num_candidates)
        share = self._core.per_consumer(world, bool(drop_last), offset)
        start = _int("start", start, 0, share)
        count = share - start if count is None else _int("count", count, 0, share - start)
        return self._core.plan(epoch, consumer, world, start, count, bool(drop_last), offset)

    def at(self, epoch: int, positions: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(video_index, start_frame)`` arrays of the candidates at these epoch positions (each in [0, N))."""
        epoch = _int("epoch", epoch, 0)
        pos = np.ascontiguousarray(positions, dtype=np.int64)
        if pos.ndim != 1:
            raise ValueError(f"positions must be 1-D, got shape {pos.shape}")
        if pos.size and (pos.min() < 0 or pos.max() >= self.num_candidates):
            raise IndexError(f"positions must lie in [0, {self.num_candidates}), "
                             f"got {int(pos.min())}..{int(pos.max())}")
        return self._core.at(epoch, pos)

    def candidate(self, epoch: int, position: int) -> tuple[int, int]:
        """``(video_index, start_frame)`` at global epoch position `position` in [0, N)."""
        epoch = _int("epoch", epoch, 0)
        position = _int("position", position, 0)
        if position >= self.num_candidates:
            raise IndexError(f"position = {position} is outside the epoch [0, {self.num_candidates})")
        return self._core.candidate(epoch, position)

    def window_bounds(self, position: int) -> tuple[int, int]:
        """``[begin, end)`` of the shuffle window that holds epoch position `position`."""
        position = _int("position", position, 0)
        if position >= self.num_candidates:
            raise IndexError(f"position = {position} is outside the epoch [0, {self.num_candidates})")
        return self._core.window_bounds(position)


def worker_batch_indices(num_batches: int, worker: int, num_workers: int, batches_done: int = 0) -> range:
    """Batches that DataLoader worker `worker` of `num_workers` yields, in order, after `batches_done`.

    Worker k takes batches ``batches_done + k, batches_done + k + K, ...`` below `num_batches`; taking
    one from each worker in turn gives ``batches_done, batches_done + 1, ...`` for every K.
    """
    num_batches = _int("num_batches", num_batches, 0)
    num_workers = _int("num_workers", num_workers, 1)
    worker = _int("worker", worker, 0, num_workers - 1)
    batches_done = _int("batches_done", batches_done, 0, num_batches)
    return range(batches_done + worker, num_batches, num_workers)


@dataclass(frozen=True)
class RankBatches:
    """The batches of one rank in every epoch, and which DataLoader worker yields which.

    Rank `rank` of `world_size` is consumer `rank` of the plan, its share starting at epoch position
    `offset` (0, or where a run resumed on another number of ranks continues). One drop-last policy cuts
    the share into batches of `batch_size`: with `drop_last` the share is ``(N - offset) // world_size``
    clips and only whole batches of it are read (every rank reads the same number, no clip twice); without,
    positions past the end wrap to the start of the epoch so that every clip is read and every batch is
    whole. Resume state: ``(epoch, batches_done)``, see the module docstring.

    Example:
        >>> plan = ClipPlan([1000] * 8, None, span=10, seed=3)
        >>> rb = RankBatches(plan, rank=0, world_size=2, batch_size=16)
        >>> rb.num_clips, rb.num_batches
        (400, 25)
        >>> [i for i, videos, starts in rb.iter_worker(epoch=0, worker=1, num_workers=4, batches_done=20)]
        [21]
    """

    plan: Any  # a ClipPlan, or anything with its per_consumer / plan / at (e.g. a MixedPlan)
    rank: int = 0
    world_size: int = 1
    batch_size: int = 1
    drop_last: bool = True
    offset: int = 0

    def __post_init__(self) -> None:
        if not all(hasattr(self.plan, m) for m in ("per_consumer", "at", "num_candidates")):
            raise TypeError(f"plan must be a ClipPlan, got {type(self.plan).__name__}")
        _int("world_size", self.world_size, 1)
        _int("rank", self.rank, 0, self.world_size - 1)
        _int("batch_size", self.batch_size, 1)
        _int("offset", self.offset, 0, self.plan.num_candidates)

    @property
    def num_clips(self) -> int:
        """Clips this rank reads per epoch (whole batches)."""
        return self.num_batches * self.batch_size

    @property
    def num_batches(self) -> int:
        """Batches this rank reads per epoch (the same on every rank)."""
        share = self.plan.per_consumer(self.world_size, self.drop_last, self.offset)
        return share // self.batch_size if self.drop_last else math.ceil(share / self.batch_size)

    def positions(self, index: int) -> np.ndarray:
        """Global epoch positions of the clips of batch `index`: consumer r reads offset + r, offset + r +
        world, ...; without drop_last positions past the end wrap to the start."""
        index = _int("index", index, 0, self.num_batches - 1)
        local = index * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        return (self.offset + local * self.world_size + self.rank) % self.plan.num_candidates

    def batch(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(video_index, start_frame)`` arrays of batch `index` of this rank in `epoch`."""
        return self.plan.at(epoch, self.positions(index))

    def worker_batches(self, worker: int, num_workers: int, batches_done: int = 0) -> range:
        """Batch indices worker `worker` of `num_workers` yields after `batches_done` were received."""
        return worker_batch_indices(self.num_batches, worker, num_workers, batches_done)

    def iter_worker(
        self, epoch: int, worker: int = 0, num_workers: int = 1, batches_done: int = 0
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(batch_index, video_index, start_frame)`` for every batch of this worker, in order."""
        for index in self.worker_batches(worker, num_workers, batches_done):
            videos, starts = self.batch(epoch, index)
            yield index, videos, starts
