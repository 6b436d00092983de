"""The loop's side of the loader: a `ClipLoader` built from the data config, batches across epochs, and the
loader state after the last batch the loop received."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch

from babyfast.loader.augment import Augment
from babyfast.loader.batch import ClipBatch
from babyfast.loader.clip_loader import ClipLoader

from .config import DataConfig

__all__ = ["make_loader", "BatchStream"]


def make_loader(cfg: DataConfig, seed: int, rank: int, world_size: int, device: torch.device) -> ClipLoader:
    """The run's loader. With DataLoader workers the clips are decoded on the CPU in the workers (a
    forked process cannot use the GPU) and moved to the device by the loop."""
    deliver = "cpu" if cfg.workers > 0 else device
    scale: tuple[float, float] = tuple(cfg.scale)  # pyright: ignore[reportAssignmentType]  # 2 by the config
    augment = Augment(size=cfg.size, scale=scale, flip=cfg.flip)
    return ClipLoader(cfg.store, clip_len=cfg.clip_len, batch_size=cfg.batch_size, frame_step=cfg.frame_step,
                      start_stride=cfg.start_stride, jitter_starts=cfg.jitter_starts, anchor=cfg.anchor,  # type: ignore[arg-type]
                      augment=augment, device=deliver, seed=seed, rank=rank, world_size=world_size,
                      order=cfg.order, window=cfg.window,  # type: ignore[arg-type]
                      prefetch=cfg.prefetch, threads=cfg.threads, decoder=cfg.decoder)  # type: ignore[arg-type]


class BatchStream:
    """Batches forever (epoch after epoch: each new iteration of the loader is the next epoch), on the
    device, with the state to resume after each.

    With `workers` > 0 the loader runs inside a `torch.utils.data.DataLoader` with persistent workers;
    the state comes from the batch itself (`ClipLoader.state_from_batch`), the same as without workers.
    """

    def __init__(self, loader: ClipLoader, workers: int, device: torch.device) -> None:
        self.loader, self.workers, self.device = loader, workers, device
        self._iterable: Any = loader if workers == 0 else torch.utils.data.DataLoader(
            loader, batch_size=None, num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=True)
        self._it: Iterator[ClipBatch] | None = None
        self._state: dict[str, Any] | None = None

    def next(self) -> ClipBatch:
        for _ in range(2):  # a fresh epoch yields at least one batch (the loader refuses empty epochs)
            if self._it is None:
                self._it = iter(self._iterable)
            try:
                batch = next(self._it)
            except StopIteration:
                self._it = None
                continue
            if batch.video.device != self.device:
                batch = batch.to(self.device, non_blocking=True)
            self._state = self.loader.state_from_batch(batch)
            return batch
        raise RuntimeError("the loader yielded no batch in a fresh epoch")

    def state_dict(self) -> dict[str, Any]:
        """Loader state right after the last batch received (the start state before any)."""
        return self._state if self._state is not None else self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)
        self._it, self._state = None, None

    def close(self) -> None:
        """Stop the loader's prefetching (or its workers) before the process moves on."""
        it, self._it = self._it, None
        close = getattr(it, "close", None) or getattr(it, "_shutdown_workers", None)
        if close is not None:
            close()

    @property
    def fps(self) -> float:
        info = getattr(self.loader.sources[0], "info", None)
        return float(info.fps) if info is not None else math.nan
