"""`ClipLoader`: batches of clips from babyfast stores, in a planned order that resumes exactly.

A batch goes through five stages, each a method with its own counter in `stats()`: plan (which clips: the
C++ planner) -> read (chunk bytes: the C++ reader) -> decode (DALI or PyAV) -> transform (augmentation, on
the consumer's device) -> collate (the `ClipBatch`: metadata, layout, dtype). A new decoder is a source's
`decode`; a new transform is `_transform`.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import torch

from babyfast._fork import rebuild_after_fork
from babyfast.imagenet import IMAGENET_MEAN, IMAGENET_STD
from babyfast.loader._mixing import MixedPlan
from babyfast.loader._selection import Anchor, Filters, select_segments
from babyfast.loader._state import STATE_FORMAT, SharedResume, check_state
from babyfast.loader.augment import Augment, transform_clips
from babyfast.loader.batch import ClipBatch, Layout
from babyfast.loader.plan import DEFAULT_WINDOW, ClipPlan, RankBatches, worker_batch_indices
from babyfast.loader.sources import ChunkError, StoreSource, VideoFileSource

log = logging.getLogger(__name__)

__all__ = ["ClipLoader", "StoreArg"]

StoreArg = Union[
    str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], Mapping[str, Union[str, "os.PathLike[str]"]]
]
Order = Literal["shuffle", "age", "age_mix"]
Device = Literal["auto", "cpu", "cuda"]
Decoder = Literal["auto", "dali", "pyav"]

_STAGES = ("plan", "read", "decode", "transform", "collate", "wait")
_JITTER_KEY = 0xD1B54A32D192ED03


def _dist_env(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None:
        rank = int(os.environ.get("RANK", 0))
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size < 1 or not (0 <= rank < world_size):
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return rank, world_size


def _stores(store: Any) -> list[tuple[str, Any]]:
    """(name, path) of each store: a path, a list of paths (named by their folder), or {name: path}."""
    if isinstance(store, Mapping):
        items = [(str(k), v) for k, v in store.items()]
    elif isinstance(store, (str, os.PathLike)):
        items = [(os.path.basename(os.path.normpath(os.fspath(store))), store)]
    else:
        items = [(os.path.basename(os.path.normpath(os.fspath(p))), p) for p in store]
    names = [n for n, _ in items]
    if not items:
        raise ValueError("store: give a store path, a list of them, or {name: path}")
    if len(set(names)) != len(names):
        raise ValueError(f"store names must differ, got {names}; pass {{name: path}} to name them")
    return items


def _coprime_step(n: int) -> int:
    """A step near n / golden ratio that shares no factor with n: replacement positions p + k * step visit
    every position of the epoch before any twice (a fixed large step would visit only the positions of one
    residue class when it shares a factor with n)."""
    step = max(1, int(n * 0.6180339887498949))
    while math.gcd(step, n) != 1:
        step += 1
    return step


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass
class _Planned:
    """A batch after the plan stage."""

    epoch: int
    index: int
    offset: int
    rows: np.ndarray       # segment rows
    starts: np.ndarray     # first stored frame of each clip
    positions: np.ndarray  # global epoch positions
    samples: np.ndarray    # index among this rank's clips of the epoch


class ClipLoader(torch.utils.data.IterableDataset):
    """Clips of `clip_len` frames, `batch_size` per batch, from one or several babyfast stores.

    Each batch is a `ClipBatch` (video uint8 ``[B, T, H, W, 3]`` on `device`, ids, frames, timestamps,
    ages, utterances, epoch positions).

    Which frames: a clip reads `clip_len` frames `frame_step` apart; clips start on a grid of `start_stride`
    stored frames (default: the GOP, so that a clip is one chunk read and decode), optionally moved by a
    seeded jitter inside the grid step (`jitter_starts`: more distinct clips from a short corpus, at up to
    twice the decoding). `anchor="utterance"` draws clips around the utterances of the transcripts instead
    of over whole videos. `subjects`, `exclude_subjects` and `age_days` select videos in the plan itself.
    Several stores (`store=[...]` or `{name: path}`) are read together; `weights` mixes them in those
    proportions (order "shuffle").

    Order and resume: a pure function of (seed, epoch, position) computed in C++; ranks read disjoint clips;
    DataLoader worker k of K yields batches k, k + K, ... so the rank still receives batches in order. Each
    new iteration (of the loader or of a DataLoader over it, with or without workers) continues from the
    resume point, which moves to the next epoch when an epoch's last batch is made (`babyfast.loader.
    state`). `state_dict()` / `load_state_dict()` follow torchdata's StatefulDataLoader protocol; a state
    counts clips, and resumes on another number of ranks with every remaining clip of the epoch read once.

    Devices: `device` is where batches are delivered; `decode_device` where frames are decoded ("auto":
    the GPU through DALI when delivering to CUDA and DALI is installed, else the CPU). CPU-decoded clips
    for a CUDA consumer are copied once as uint8 and transformed on the GPU.

    Example:
        >>> loader = ClipLoader("store.zarr", clip_len=16, batch_size=8)  # doctest: +SKIP
        >>> batch = next(iter(loader))  # doctest: +SKIP
        >>> batch.video.shape  # doctest: +SKIP
        torch.Size([8, 16, 224, 224, 3])
    """

    def __init__(self, store: StoreArg | None = None, *, clip_len: int = 16, batch_size: int = 8,
                 frame_step: int = 1, start_stride: int | None = None, jitter_starts: bool = False,
                 augment: Augment | None = None, device: str | torch.device = "cpu",
                 decode_device: Device = "auto", decoder: Decoder = "auto", layout: Layout = "THWC",
                 output: Literal["uint8", "float"] = "uint8", mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, order: Order = "shuffle", window: int = DEFAULT_WINDOW,
                 drop_last: bool = True, weights: Sequence[float] | Mapping[str, float] | None = None,
                 subjects: Sequence[str] | None = None, exclude_subjects: Sequence[str] = (),
                 age_days: tuple[float, float] | None = None, anchor: Anchor = "video", prefetch: int = 4,
                 threads: int = 2, on_error: Literal["skip", "raise"] = "skip",
                 _sources: list[tuple[str, Any]] | None = None) -> None:
        super().__init__()
        self._check_args(on_error, output, layout, decode_device, decoder, batch_size, clip_len, frame_step,
                         prefetch, threads, start_stride)
        self.augment = augment if augment is not None else Augment()
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but CUDA is not available; pass device='cpu'")
        self.clip_len, self.batch_size, self.frame_step, self.seed = clip_len, batch_size, frame_step, seed
        self.rank, self.world_size = _dist_env(rank, world_size)
        self.order, self.window, self.drop_last = order, window, drop_last
        self.prefetch, self.threads = prefetch, threads
        self.on_error, self.output, self.layout = on_error, output, layout
        self.anchor, self.jitter_starts = anchor, jitter_starts
        self.mean = torch.tensor(mean, dtype=torch.float32) * 255
        self.std = torch.tensor(std, dtype=torch.float32) * 255
        self.span = (clip_len - 1) * frame_step + 1
        named = _sources if _sources is not None else [(n, p) for n, p in _stores(store)]
        self.store_names = [n for n, _ in named]
        self.decode_device = self._decode_device(decode_device, decoder, named)
        self.sources = [src if _sources is not None else StoreSource(
            src, threads=threads, device=self.decode_device, decoder=decoder) for _, src in named]
        gops = sorted({max(1, int(s.gop)) for s in self.sources})
        self.start_stride = int(start_stride) if start_stride is not None else gops[0]
        for s in self.sources:  # every chunk of a batch in one DALI run: a clip spans <= ceil(span / G) + 1
            s.max_chunks = batch_size * (-(-self.span // max(1, s.gop)) + 1)
        self.filters = Filters(tuple(subjects) if subjects is not None else None, tuple(exclude_subjects),
                               tuple(age_days) if age_days is not None else None)  # type: ignore[arg-type]
        self.segments = select_segments(self.sources, self.span, self.start_stride, anchor, self.filters)
        self.weights = self._weights(weights)
        self.plan = self._make_plan()
        self._replace_step = _coprime_step(self.plan.num_candidates)
        if self._rank_batches(0).num_batches == 0:
            raise ValueError(f"{self.plan.per_consumer(self.world_size, drop_last)} clips per rank is less than "
                             f"one batch of {batch_size}; lower batch_size or use drop_last=False")
        # videos a source left out for damaged index rows are skipped before the first batch
        self.skipped: list[tuple[str, int, str]] = [e for s in self.sources for e in getattr(s, "excluded", [])]
        if self.skipped and on_error == "raise":
            raise ValueError(f"video {self.skipped[0][0]!r}: {self.skipped[0][2]}")
        self._resume = SharedResume()
        self._progress: tuple[int, int, int] | None = None  # after the last batch this process delivered
        self._worker_state: dict[str, Any] | None = None    # a DataLoader worker's own progress
        self._times: dict[str, float] = dict.fromkeys(_STAGES, 0.0)
        self._counts = {"batches": 0, "clips": 0, "skipped": 0}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        rebuild_after_fork(self)

    # ------------------------------------------------------------------------------------ construction
    @staticmethod
    def _check_args(on_error: str, output: str, layout: str, decode_device: str, decoder: str, batch_size: int,
                    clip_len: int, frame_step: int, prefetch: int, threads: int, start_stride: int | None) -> None:
        for name, value, allowed in (("on_error", on_error, ("skip", "raise")), ("output", output, ("uint8", "float")),
                                     ("layout", layout, ("THWC", "TCHW")),
                                     ("decode_device", decode_device, ("auto", "cpu", "cuda")),
                                     ("decoder", decoder, ("auto", "dali", "pyav"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        for name, value in (("batch_size", batch_size), ("clip_len", clip_len), ("frame_step", frame_step),
                            ("prefetch", prefetch), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if start_stride is not None and (not isinstance(start_stride, int) or start_stride < 1):
            raise ValueError(f"start_stride must be an int >= 1 or None (the GOP), got {start_stride!r}")

    def _decode_device(self, requested: str, decoder: str, named: list[tuple[str, Any]]) -> str:
        """Where frames are decoded; contradictory requests are refused, not ignored."""
        if requested == "cuda":
            if self.device.type != "cuda":
                raise ValueError(f"decode_device='cuda' delivers nothing to device={str(self.device)!r}: decode on "
                                 f"the GPU only for a CUDA consumer (decode_device='cpu' otherwise)")
            if decoder == "pyav":
                raise ValueError("decode_device='cuda' needs DALI (NVDEC); decoder='pyav' decodes on the CPU")
            return str(self.device)
        if requested == "cpu" or self.device.type != "cuda" or decoder == "pyav":
            return "cpu"
        # auto, for a CUDA consumer: the GPU when DALI is here; raw stores decode (zstd) on the CPU anyway
        return str(self.device) if importlib.util.find_spec("nvidia.dali") is not None else "cpu"

    def _weights(self, weights: Any) -> np.ndarray | None:
        if weights is None:
            return None
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(self.store_names))
            if unknown:
                raise ValueError(f"weights name stores {unknown} that are not loaded ({self.store_names})")
            weights = [float(weights.get(n, 0.0)) for n in self.store_names]
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.store_names),):
            raise ValueError(f"weights: one per store ({len(self.store_names)}: {self.store_names}), got {list(w)}")
        if self.order != "shuffle":
            raise ValueError(f"weights mix stores in a shuffled epoch; order={self.order!r} sorts all stores' clips "
                             f"by age together: pass weights=None for an age curriculum over several stores")
        for s, name in enumerate(self.store_names):
            if w[s] > 0 and not len(self.segments.part(s)):
                raise ValueError(f"store {name!r} has weight {w[s]} but no clip in the selection")
        return w

    def _make_plan(self) -> Any:
        seg = self.segments
        if self.weights is None:
            return ClipPlan(seg.frames, seg.age_days, span=self.span, stride=self.start_stride, order=self.order,
                            seed=self.seed, window=self.window)
        plans, rows = [], []
        for s in range(len(self.store_names)):
            part = seg.part(s)
            rows.append(part)
            plans.append(ClipPlan(seg.frames[part], seg.age_days[part], span=self.span, stride=self.start_stride,
                                  order="shuffle", seed=(self.seed + 0x9E3779B97F4A7C15 * (s + 1)) % 2**64)
                         if len(part) else None)
        keep = [s for s, p in enumerate(plans) if p is not None]
        mixed = MixedPlan([plans[s] for s in keep], [rows[s] for s in keep], [self.weights[s] for s in keep], self.seed)
        return mixed

    @classmethod
    def from_videos(cls, paths: Sequence[str | os.PathLike[str]], size: int | None = None,
                    **kwargs: Any) -> ClipLoader:
        """A loader over plain video files (no store, no ingest; slower: PyAV seeks and decodes per clip)."""
        source = VideoFileSource(paths, size=size, threads=kwargs.get("threads", 2))
        kwargs.setdefault("start_stride", 1)
        return cls(None, _sources=[("videos", source)], **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started with spawn receive the loader pickled; locks and threads do not pickle
        state = dict(self.__dict__)
        del state["_lock"]
        state["_pool"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        rebuild_after_fork(self)

    def _after_fork(self) -> None:
        self._pool = None  # the parent's threads do not exist in a forked worker
        self._lock = threading.Lock()  # another thread of the parent may have held it

    def _batch_pool(self) -> ThreadPoolExecutor:
        """The threads that make batches: one pool per process for the loader's lifetime (epochs reuse it;
        a forked DataLoader worker makes its own, see `babyfast._fork`)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="babyfast-batch")
        return self._pool

    # ------------------------------------------------------------------------------------------ state
    def _rank_batches(self, consumed: int) -> RankBatches:
        return RankBatches(self.plan, rank=self.rank, world_size=self.world_size, batch_size=self.batch_size,
                           drop_last=self.drop_last, offset=consumed)

    def __len__(self) -> int:
        """Batches of this rank in the epoch at the resume point."""
        return self._rank_batches(self._resume.get()[1]).num_batches

    @property
    def epoch(self) -> int:
        """The epoch the next iteration reads."""
        return self._resume.get()[0]

    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at the beginning of `epoch` (iterations move on by themselves; this is
        for code written for DistributedSampler)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self._resume.set((int(epoch), 0, 0))
        self._progress = None

    def settings(self) -> dict[str, Any]:
        """What a saved state must agree on with this loader (all but the number of ranks)."""
        return {"seed": self.seed, "clip_len": self.clip_len, "frame_step": self.frame_step,
                "start_stride": self.start_stride, "jitter_starts": self.jitter_starts,
                "batch_size": self.batch_size, "order": self.order, "window": self.window,
                "drop_last": self.drop_last, "anchor": self.anchor, "filters": self.filters.describe(),
                "stores": self.store_names, "weights": None if self.weights is None else self.weights.tolist(),
                "candidates": int(self.plan.num_candidates), "augment": repr(self.augment)}

    def _state(self, point: tuple[int, int, int], **worker: int) -> dict[str, Any]:
        epoch, consumed, samples = point
        return {"format": STATE_FORMAT, "epoch": epoch, "consumed": consumed, "samples": samples,
                "world_size": self.world_size, "rank": self.rank, "settings": self.settings(), **worker}

    def state_dict(self) -> dict[str, Any]:
        """Where this rank is: after the last batch delivered (in a DataLoader worker: that worker's own
        progress, which torchdata's StatefulDataLoader collects and hands back)."""
        if torch.utils.data.get_worker_info() is not None:
            return self._worker_state if self._worker_state is not None else self._state(self._resume.get())
        if self._resume.workers_iterated:
            raise RuntimeError("ClipLoader.state_dict(): DataLoader workers made the batches, so this process does "
                               "not know how far they got. Use torchdata's StatefulDataLoader(loader, ...)."
                               "state_dict(), or loader.state_from_batch(batch) with the last batch received")
        return self._state(self._progress if self._progress is not None else self._resume.get())

    def state_from_batch(self, batch: ClipBatch) -> dict[str, Any]:
        """The state right after `batch` was received (any DataLoader, any number of workers)."""
        offset = (
            int(batch.position[0] - self.rank - int(batch.sample[0]) * self.world_size) % self.plan.num_candidates
            if len(batch) else 0
        )
        return self._state(self._after(int(batch.epoch), offset, int(batch.batch_index)))

    def _after(self, epoch: int, consumed: int, index: int) -> tuple[int, int, int]:
        """The resume point after batch `index` of an epoch whose shares begin at `consumed`."""
        if index + 1 >= self._rank_batches(consumed).num_batches:
            return epoch + 1, 0, 0
        return epoch, consumed, (index + 1) * self.batch_size

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a state of `state_dict`, `state_from_batch` or a StatefulDataLoader; a state saved
        on another number of ranks continues after every clip the old ranks read. Every key and range is
        checked; a ValueError names what does not fit."""
        check_state(state, self.settings())
        epoch, consumed, samples = state["epoch"], state["consumed"], state["samples"]
        n = self.plan.num_candidates
        if consumed > n:
            raise ValueError(f"loader state: consumed = {consumed} is past the epoch's {n} clips")
        if samples % self.batch_size:
            raise ValueError(f"loader state: samples = {samples} is not a multiple of batch_size {self.batch_size}")
        share = self._rank_batches(consumed).num_batches * self.batch_size if state["world_size"] == self.world_size \
            else RankBatches(self.plan, 0, state["world_size"], self.batch_size, self.drop_last, consumed).num_clips
        if samples > share:
            raise ValueError(f"loader state: samples = {samples} is past the {share} clips of a rank's epoch")
        worker = state.get("worker")
        if state["world_size"] != self.world_size:
            if worker is not None:
                raise ValueError("loader state: a DataLoader worker's state cannot resume on another number of "
                                 "ranks; save the state of the whole rank (state_from_batch)")
            consumed = consumed + samples * state["world_size"]  # every rank read `samples` clips
            samples = 0
            if consumed >= n or self._rank_batches(consumed).num_batches == 0:
                epoch, consumed = epoch + 1, 0
        if samples == share:
            epoch, consumed, samples = epoch + 1, 0, 0
        info = torch.utils.data.get_worker_info()
        if worker is not None:
            if info is None or (info.id, info.num_workers) != (worker, state["num_workers"]):
                where = "the main process" if info is None else f"worker {info.id} of {info.num_workers}"
                raise ValueError(f"loader state of DataLoader worker {worker} of {state['num_workers']} loaded in "
                                 f"{where}; resume with the same number of workers (StatefulDataLoader does)")
            self._worker_state = {**self._state((epoch, consumed, samples)), "worker": worker,
                                  "num_workers": state["num_workers"], "worker_batches": state["worker_batches"]}
            return
        self._resume.set((epoch, consumed, samples))
        self._progress = None

    def stats(self) -> dict[str, Any]:
        """Seconds per stage (plan, read, decode, transform, collate; wait = time the consumer waited) and
        counts, for this process."""
        with self._lock:
            return {**{f"{k}_s": round(v, 4) for k, v in self._times.items()}, **self._counts}

    def _timed(self, stage: str, t0: float) -> float:
        t = time.perf_counter()
        with self._lock:
            self._times[stage] += t - t0
        return t

    # ------------------------------------------------------------------------------------------ stages
    def _plan_batch(self, epoch: int, rb: RankBatches, index: int) -> _Planned:
        positions = rb.positions(index)
        rows, starts = rb.plan.at(epoch, positions)
        seg = self.segments
        starts = seg.offset[rows] + starts
        if self.jitter_starts and self.start_stride > 1:
            room = seg.offset[rows] + seg.frames[rows] - self.span - starts  # later starts that still fit
            key = _mix(np.uint64((self.seed ^ _JITTER_KEY) & (2**64 - 1)) ^ _mix(np.uint64(epoch) + np.uint64(1))
                       ^ positions.astype(np.uint64))
            starts = starts + (_mix(key) % np.minimum(self.start_stride, room + 1).astype(np.uint64)).astype(np.int64)
        samples = index * self.batch_size + np.arange(len(rows), dtype=np.int64)
        return _Planned(epoch, index, rb.offset, rows.copy(), starts.copy(), positions, samples)

    def _read(self, p: _Planned, todo: list[int]) -> list[tuple[int, list[int], Any]]:
        """Stage 2: the chunk bytes of clips `todo`, per store."""
        offsets = np.arange(self.clip_len, dtype=np.int64) * self.frame_step
        out = []
        for s in sorted({int(self.segments.source[p.rows[i]]) for i in todo}):
            mine = [i for i in todo if self.segments.source[p.rows[i]] == s]
            requests = [(int(self.segments.video[p.rows[i]]), p.starts[i] + offsets) for i in mine]
            out.append((s, mine, self.sources[s].read(requests)))
        return out

    def _decode(self, read: list[tuple[int, list[int], Any]]) -> dict[int, Any]:
        """Stage 3: decoded frames (or a ChunkError) of each clip read."""
        got: dict[int, Any] = {}
        for s, mine, batch in read:
            got.update(zip(mine, self.sources[s].decode(batch), strict=False))
        return got

    def _read_decode(self, p: _Planned) -> list[Any]:
        """Decoded clips of the batch; a clip that fails is replaced by another candidate of the epoch
        (on_error="skip") or raises (on_error="raise")."""
        clips: list[Any] = [None] * len(p.rows)
        todo, attempt = list(range(len(p.rows))), 0
        while todo:
            t = time.perf_counter()
            read = self._read(p, todo)
            t = self._timed("read", t)
            got = self._decode(read)
            self._timed("decode", t)
            retry = []
            for i in todo:
                res = got[i]
                if isinstance(res, ChunkError):
                    if self.on_error == "raise":
                        raise res
                    with self._lock:
                        self.skipped.append((res.video, res.chunk, res.what))
                        self._counts["skipped"] += 1
                    log.warning("skipping clip at position %d: %s", p.positions[i], res)
                    retry.append(i)
                else:
                    clips[i] = res
            attempt += 1
            if retry and attempt > 16:
                raise RuntimeError(f"gave up replacing {len(retry)} clip(s) after 16 tries; last: {self.skipped[-1]}")
            for i in retry:  # a deterministic replacement: another candidate of the same epoch
                pos = (int(p.positions[i]) + attempt * self._replace_step) % self.plan.num_candidates
                row, start = self.plan.candidate(p.epoch, pos)
                p.rows[i], p.starts[i] = row, self.segments.offset[row] + start
            todo = retry
        return clips

    def _transform(self, clips: list[Any], p: _Planned) -> torch.Tensor:
        """Augmentation of the batch, on the consumer's device (CPU-decoded clips for a GPU consumer send
        their crop boxes there in one uint8 copy)."""
        sizes = np.array([c.shape[1:3] for c in clips])
        if self.augment.size is None and len({tuple(x) for x in sizes}) > 1:
            seen = sorted({(self._video_id(int(r)), tuple(x)) for r, x in zip(p.rows, sizes, strict=True)})
            raise ValueError(f"clips of one batch differ in frame size {seen[:4]} (a --no-crop store): give "
                             f"Augment(size=...) so that every clip is resized to one size")
        params = self.augment.draw(self.seed, p.epoch, p.positions, sizes[:, 0], sizes[:, 1])
        return transform_clips(clips, params, self.augment, self.device)

    def anchor_texts(self, epoch: int, positions: Sequence[int] | np.ndarray) -> list[str | None]:
        """The utterance (with `anchor="utterance"`; else None) of the clip at each epoch position: what a
        shuffled-pairs control pairs a clip with instead of its own."""
        pos = np.asarray(positions, dtype=np.int64) % self.plan.num_candidates
        rows, _ = self.plan.at(epoch, pos)
        out: list[str | None] = []
        for r in rows:
            a = int(self.segments.anchor[r])
            meta = self.sources[int(self.segments.source[r])].meta(int(self.segments.video[r])) if a >= 0 else None
            out.append(meta.utterances[a][2] if meta is not None and meta.utterances else None)
        return out

    def _video_id(self, row: int) -> str:
        return self.sources[int(self.segments.source[row])].ids[int(self.segments.video[row])]

    def _collate(self, video: torch.Tensor, p: _Planned) -> ClipBatch:
        seg = self.segments
        metas = [self.sources[int(seg.source[r])].meta(int(seg.video[r])) for r in p.rows]
        frame_index = p.starts[:, None] + np.arange(self.clip_len, dtype=np.int64)[None] * self.frame_step
        ts = np.stack([m.timestamps[fi] if m.timestamps is not None else fi / m.fps
                       for m, fi in zip(metas, frame_index, strict=True)])
        utterances, anchors = [], []
        for m, t, r in zip(metas, ts, p.rows, strict=True):
            lo, hi = float(t[0]), float(t[-1]) + 1.0 / m.fps
            utterances.append([u for u in (m.utterances or []) if u[0] < hi and u[1] > lo])
            a = int(seg.anchor[r])
            anchors.append(m.utterances[a][2] if a >= 0 and m.utterances else None)
        if self.output == "float":
            video = (video.to(torch.float32) - self.mean.to(video.device)) / self.std.to(video.device)
        if self.layout == "TCHW":
            video = video.permute(0, 1, 4, 2, 3).contiguous()
        return ClipBatch(video=video, store=torch.from_numpy(seg.source[p.rows].copy()),
                         video_id=[m.id for m in metas], start=torch.from_numpy(p.starts.copy()),
                         frame_index=torch.from_numpy(frame_index), timestamps=torch.from_numpy(ts),
                         subject=[m.subject for m in metas],
                         age_days=torch.tensor([m.age_days for m in metas], dtype=torch.float64),
                         utterances=utterances, anchor_text=anchors, epoch=p.epoch, batch_index=p.index,
                         position=torch.from_numpy(p.positions), sample=torch.from_numpy(p.samples))

    def _make_batch(self, epoch: int, rb: RankBatches, index: int) -> ClipBatch:
        t = time.perf_counter()
        planned = self._plan_batch(epoch, rb, index)
        t = self._timed("plan", t)
        clips = self._read_decode(planned)
        t = time.perf_counter()
        video = self._transform(clips, planned)
        t = self._timed("transform", t)
        batch = self._collate(video, planned)
        self._timed("collate", t)
        return batch

    # -------------------------------------------------------------------------------------- iteration
    def _start(self, worker: int, workers: int) -> tuple[tuple[int, int, int], int]:
        """(resume point, batches this worker already yielded of it)."""
        if self._worker_state is not None:
            s = self._worker_state
            return (s["epoch"], s["consumed"], s["samples"]), s["worker_batches"]
        return self._resume.get(), 0

    def __iter__(self) -> Iterator[ClipBatch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        self._resume.mark_workers(info is not None)
        start, yielded = self._start(worker, workers)
        epoch, consumed, samples = start
        rb = self._rank_batches(consumed)
        done = samples // self.batch_size
        last = rb.num_batches - 1
        indices = iter(worker_batch_indices(rb.num_batches, worker, workers, done)[yielded:])
        if info is None:
            self._progress = start
        pool = self._batch_pool()
        pending: deque[Future] = deque()
        try:
            for i in indices:
                pending.append(pool.submit(self._make_batch, epoch, rb, i))
                if len(pending) >= self.prefetch:
                    break
            while pending:
                t = time.perf_counter()
                batch = pending.popleft().result()
                self._timed("wait", t)
                i = next(indices, None)
                if i is not None:
                    pending.append(pool.submit(self._make_batch, epoch, rb, i))
                if batch.video.device != self.device:  # only when a source decoded elsewhere
                    batch = batch.to(self.device)
                with self._lock:
                    self._counts["batches"] += 1
                    self._counts["clips"] += len(batch)
                yielded += 1
                if info is None:
                    self._progress = self._after(epoch, consumed, batch.batch_index)
                else:
                    self._worker_state = {**self._state(start), "worker": worker, "num_workers": workers,
                                          "worker_batches": yielded}
                if batch.batch_index == last:
                    self._resume.advance(start, epoch)
                yield batch
            if done >= rb.num_batches:  # resumed at the very end of an epoch
                self._resume.advance(start, epoch)
        finally:
            for f in pending:  # an abandoned epoch: drop what was prefetched
                f.cancel()
            for f in pending:
                if not f.cancelled():
                    f.exception()  # wait, so that no batch of this epoch is still being made
        if info is not None:
            self._worker_state = None  # the next iteration of a persistent worker starts from the new point
