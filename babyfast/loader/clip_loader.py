"""`ClipLoader`: batches of clips from a babyfast store, in a planned order that resumes exactly."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from babyfast.loader.augment import Augment, colour_affine, crop_resize_flip
from babyfast.loader.plan import DEFAULT_WINDOW, ClipPlan, RankBatches, worker_batch_indices
from babyfast.loader.sources import ChunkError, StoreSource, VideoFileSource

log = logging.getLogger(__name__)

_STAGES = ("plan", "read_decode", "augment", "wait")
_REPLACE_STEP = 0x9E3779B97F4A7C15  # odd and large: successive replacement positions spread over the epoch


def _dist_env(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None:
        rank = int(os.environ.get("RANK", 0))
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size < 1 or not (0 <= rank < world_size):
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return rank, world_size


class ClipLoader(torch.utils.data.IterableDataset):
    """Clips of `clip_len` frames, `batch_size` per batch, from a babyfast store.

    Each batch is a dict: ``video`` (uint8 ``[B, T, H, W, 3]`` on `device`, or normalized float
    ``[B, T, H, W, 3]`` with ``output="float"``), ``video_id`` (list of str), ``start`` (first stored frame,
    int64 ``[B]``), ``frame_index`` (int64 ``[B, T]``), ``timestamps`` (source seconds, float64 ``[B, T]``),
    ``subject`` (list), ``age_days`` (float64 ``[B]``, NaN unknown), ``utterances`` (per clip, the
    ``(start, end, text)`` overlapping it), ``epoch``, ``batch_index`` and ``position`` (global epoch
    positions, int64 ``[B]``).

    The order is a pure function of (seed, epoch, position) computed in C++; ranks read disjoint clips;
    inside ``torch.utils.data.DataLoader(loader, batch_size=None, num_workers=K)`` worker k yields batches
    k, k + K, ... so the rank still receives batches 0, 1, 2, ... . `state_dict()` after a batch (or
    `state_from_batch(batch)` when a DataLoader runs the loader in workers) resumes exactly.

    Example:
        >>> loader = ClipLoader("store.zarr", clip_len=16, batch_size=8, device="cpu")  # doctest: +SKIP
        >>> batch = next(iter(loader))  # doctest: +SKIP
        >>> batch["video"].shape  # doctest: +SKIP
        torch.Size([8, 16, 224, 224, 3])
    """

    def __init__(self, store: str | os.PathLike[str] | None = None, clip_len: int = 16, batch_size: int = 8,
                 augment: Augment | None = None, device: str | torch.device = "cpu", seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, order: str = "shuffle",
                 drop_last: bool = True, prefetch: int = 4, threads: int = 2, on_error: str = "skip",
                 output: str = "uint8", mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), window: int = DEFAULT_WINDOW,
                 stride: int | None = None, decoder: str = "auto", _source: Any = None) -> None:
        super().__init__()
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if output not in ("uint8", "float"):
            raise ValueError(f"output must be 'uint8' or 'float', got {output!r}")
        if batch_size < 1 or clip_len < 1 or prefetch < 1 or threads < 1:
            raise ValueError(f"batch_size, clip_len, prefetch and threads must be >= 1, got {batch_size}, "
                             f"{clip_len}, {prefetch}, {threads}")
        self.augment = augment if augment is not None else Augment()
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but CUDA is not available; pass device='cpu'")
        self.source = _source if _source is not None else StoreSource(
            store, threads=threads, device=str(self.device), decoder=decoder)
        # every chunk of a batch in one DALI run: a clip spans at most ceil(span / G) + 1 chunks
        self.source.max_chunks = batch_size * (-(-self.augment.span(clip_len) // max(1, self.source.gop)) + 1)
        self.clip_len, self.batch_size, self.seed = clip_len, batch_size, seed
        self.rank, self.world_size = _dist_env(rank, world_size)
        self.order, self.drop_last, self.prefetch, self.threads = order, drop_last, prefetch, threads
        self.on_error, self.output = on_error, output
        self.mean = torch.tensor(mean, dtype=torch.float32) * 255
        self.std = torch.tensor(std, dtype=torch.float32) * 255
        span = self.augment.span(clip_len)
        longest = int(self.source.frames_per_video.max())
        if span > longest:
            raise ValueError(f"a clip spans {span} frames (clip_len={clip_len}, temporal_stride="
                             f"{self.augment.temporal_stride}) but the longest video has {longest}")
        self.plan = ClipPlan(self.source.frames_per_video, self.source.ages, clip_len=span,
                             stride=stride or max(1, self.source.gop), order=order, seed=seed, window=window)
        self.batches = RankBatches(self.plan, rank=self.rank, world_size=self.world_size, batch_size=batch_size,
                                   drop_last=drop_last, drop_last_batch=drop_last)
        if self.batches.num_batches == 0:
            raise ValueError(f"{self.plan.per_consumer(self.world_size, drop_last)} clips per rank is less than "
                             f"one batch of {batch_size}; lower batch_size or use drop_last=False")
        self.epoch = 0
        self.batches_done = 0
        # videos the source left out for damaged index rows are skipped before the first batch
        self.skipped: list[tuple[str, int, str]] = list(getattr(self.source, "excluded", []))
        if self.skipped and on_error == "raise":
            raise ValueError(f"video {self.skipped[0][0]!r}: {self.skipped[0][2]}")
        self._times = dict.fromkeys(_STAGES, 0.0)
        self._counts = {"batches": 0, "clips": 0, "skipped": 0}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started with spawn receive the loader pickled; locks and threads do not pickle
        state = dict(self.__dict__)
        del state["_lock"]
        state["_pool"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _batch_pool(self) -> ThreadPoolExecutor:
        """The threads that make batches: one pool per process for the loader's lifetime (epochs reuse it;
        a forked DataLoader worker makes its own, since the parent's threads do not exist there)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="babyfast-batch")
            self._pool_pid = os.getpid()
        return self._pool

    @classmethod
    def from_videos(cls, paths: Sequence[str | os.PathLike[str]], size: int | None = None, **kwargs: Any) -> ClipLoader:
        """A loader over plain video files (no store, no ingest; slower: PyAV seeks and decodes per clip)."""
        source = VideoFileSource(paths, size=size, threads=kwargs.get("threads", 2))
        kwargs.setdefault("stride", 1)
        return cls(None, _source=source, **kwargs)

    # ------------------------------------------------------------------------------------------ state
    def __len__(self) -> int:
        return self.batches.num_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.batches_done = int(epoch), 0

    def _fingerprint(self) -> dict[str, Any]:
        return {"seed": self.seed, "clip_len": self.clip_len, "batch_size": self.batch_size, "order": self.order,
                "world_size": self.world_size, "rank": self.rank, "candidates": self.plan.num_candidates,
                "augment": repr(self.augment)}

    def state_dict(self) -> dict[str, Any]:
        """Where this rank is: the next batch to deliver. Save it after each batch the loop received."""
        return {"epoch": self.epoch, "batches_done": self.batches_done, **self._fingerprint()}

    def state_from_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The state right after `batch` was received (use this when a DataLoader runs us in workers)."""
        epoch, done = int(batch["epoch"]), int(batch["batch_index"]) + 1
        if done >= self.batches.num_batches:
            epoch, done = epoch + 1, 0
        return {"epoch": epoch, "batches_done": done, **self._fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self._fingerprint()
        diff = {k: (state.get(k), v) for k, v in mine.items() if k in state and state[k] != v}
        if diff:
            raise ValueError(f"loader state was saved with other settings (saved, now): {diff}")
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])

    def stats(self) -> dict[str, Any]:
        """Per-stage seconds (plan, read_decode, augment, wait = time the consumer waited) and counts."""
        with self._lock:
            return {**{f"{k}_s": round(v, 4) for k, v in self._times.items()}, **self._counts}

    # ------------------------------------------------------------------------------------------ batches
    def _make_batch(self, epoch: int, index: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        videos, starts = self.batches.batch(epoch, index)
        positions = self.batches.positions(index)
        frame_offsets = np.arange(self.clip_len, dtype=np.int64) * self.augment.temporal_stride
        videos, starts = videos.copy(), starts.copy()
        t1 = time.perf_counter()
        clips: list[np.ndarray | None] = [None] * len(videos)
        todo = list(range(len(videos)))
        attempt = 0
        while todo:
            got = self.source.frames([(int(videos[i]), starts[i] + frame_offsets) for i in todo])
            retry = []
            for i, res in zip(todo, got):
                if isinstance(res, ChunkError):
                    if self.on_error == "raise":
                        raise res
                    with self._lock:
                        self.skipped.append((res.video, res.chunk, res.what))
                        self._counts["skipped"] += 1
                    log.warning("skipping clip at position %d: %s", positions[i], res)
                    retry.append(i)
                else:
                    clips[i] = res
            attempt += 1
            if retry and attempt > 16:
                raise RuntimeError(f"gave up replacing {len(retry)} clip(s) after 16 tries; last: {self.skipped[-1]}")
            for i in retry:  # a deterministic replacement: another candidate of the same epoch
                pos = (int(positions[i]) + attempt * _REPLACE_STEP) % self.plan.num_candidates
                videos[i], starts[i] = self.plan.candidate(epoch, pos)
            todo = retry
        t2 = time.perf_counter()
        sizes = np.array([c.shape[1:3] for c in clips])
        if self.augment.size is None and len({tuple(x) for x in sizes}) > 1:
            seen = sorted({(self.source.ids[int(v)], tuple(x)) for v, x in zip(videos, sizes)})
            raise ValueError(f"clips of one batch differ in frame size {seen[:4]} (a --no-crop store): give "
                             f"Augment(size=...) so that every clip is resized to one size")
        params = self.augment.draw(self.seed, epoch, positions, sizes[:, 0], sizes[:, 1])
        shaped = [crop_resize_flip(c, params.box[i], bool(params.flip[i]), self.augment.size)
                  for i, c in enumerate(clips)]
        # numpy clips came from the CPU decoders; torch clips from DALI, already on the GPU
        video = torch.stack(shaped) if isinstance(shaped[0], torch.Tensor) else torch.from_numpy(np.stack(shaped))
        colour = params.affine() if self.augment.has_colour else None
        if colour is not None and (self.device.type == "cpu" or video.is_cuda):
            video = colour_affine(video, *colour)
            colour = None  # applied
        metas = [self.source.meta(int(v)) for v in videos]
        frame_index = starts[:, None] + frame_offsets[None]
        ts = np.stack([m.timestamps[fi] if m.timestamps is not None else fi / m.fps for m, fi in zip(metas, frame_index)])
        utterances = []
        for m, t in zip(metas, ts):
            lo, hi = float(t[0]), float(t[-1]) + 1.0 / m.fps
            utterances.append([u for u in (m.utterances or []) if u[0] < hi and u[1] > lo])
        t3 = time.perf_counter()
        with self._lock:
            self._times["plan"] += t1 - t0
            self._times["read_decode"] += t2 - t1
            self._times["augment"] += t3 - t2
        return {"video": video, "video_id": [m.id for m in metas], "start": torch.from_numpy(starts),
                "frame_index": torch.from_numpy(frame_index), "timestamps": torch.from_numpy(ts),
                "subject": [m.subject for m in metas],
                "age_days": torch.tensor([m.age_days for m in metas], dtype=torch.float64),
                "utterances": utterances, "epoch": epoch, "batch_index": index,
                "position": torch.from_numpy(positions),
                "_colour": colour}  # still to apply, on the consumer's device

    def _deliver(self, batch: dict[str, Any]) -> dict[str, Any]:
        colour = batch.pop("_colour")
        video = batch["video"]
        if self.device.type != "cpu" and not video.is_cuda:  # CPU-decoded clips for a GPU consumer
            video = video.pin_memory().to(self.device, non_blocking=True)
            if colour is not None:
                video = colour_affine(video, *colour)
        if self.output == "float":
            video = (video.to(torch.float32) - self.mean.to(video.device)) / self.std.to(video.device)
        batch["video"] = video
        return batch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, done = self.epoch, self.batches_done
        indices = worker_batch_indices(self.batches.num_batches, worker, workers, done)
        pool = self._batch_pool()
        pending: deque[Future] = deque()
        it = iter(indices)
        try:
            for _ in range(self.prefetch):
                i = next(it, None)
                if i is None:
                    break
                pending.append(pool.submit(self._make_batch, epoch, i))
            while pending:
                t = time.perf_counter()
                batch = pending.popleft().result()
                with self._lock:
                    self._times["wait"] += time.perf_counter() - t
                i = next(it, None)
                if i is not None:
                    pending.append(pool.submit(self._make_batch, epoch, i))
                batch = self._deliver(batch)
                with self._lock:
                    self._counts["batches"] += 1
                    self._counts["clips"] += len(batch["video_id"])
                if info is None:
                    self.batches_done = batch["batch_index"] + 1
                yield batch
            if info is None:
                self.epoch, self.batches_done = epoch + 1, 0
        finally:
            for f in pending:  # an abandoned epoch: drop what was prefetched
                f.cancel()
            for f in pending:
                if not f.cancelled():
                    f.exception()  # wait, so that no batch of this epoch is still being made
