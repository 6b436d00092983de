"""`ClipBatch`: what the loader yields, typed, with `pin_memory()` and `to(device)` for DataLoader pinning."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import torch

__all__ = ["ClipBatch", "Layout"]

Layout = Literal["THWC", "TCHW"]


@dataclass
class ClipBatch:
    """A batch of B clips of T frames.

    video:       uint8 `[B, T, H, W, 3]` (layout "THWC") or `[B, T, 3, H, W]` ("TCHW"); normalized float
                 with `output="float"`.
    store:       index of the store each clip came from (int64 `[B]`; 0 with one store).
    video_id:    the video of each clip, in its store.
    start:       first stored frame read (int64 `[B]`); frame_index: every frame read (int64 `[B, T]`).
    timestamps:  source time of each frame in seconds (float64 `[B, T]`).
    subject, age_days: the child (age NaN when unknown).
    utterances:  per clip, the (start, end, text) of every utterance overlapping it.
    anchor_text: with `anchor="utterance"`, the utterance each clip was drawn around (else None).
    epoch, batch_index: which batch of which epoch of this rank.
    position:    global epoch positions of the clips (int64 `[B]`).
    sample:      index of each clip among this rank's clips of the epoch (int64 `[B]`).
    """

    video: torch.Tensor
    store: torch.Tensor
    video_id: list[str]
    start: torch.Tensor
    frame_index: torch.Tensor
    timestamps: torch.Tensor
    subject: list[str]
    age_days: torch.Tensor
    utterances: list[list[tuple[float, float, str]]]
    anchor_text: list[str | None]
    epoch: int
    batch_index: int
    position: torch.Tensor
    sample: torch.Tensor

    def __len__(self) -> int:
        return len(self.video_id)

    def _map(self, fn: Any) -> ClipBatch:
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self)
                                if isinstance(getattr(self, f.name), torch.Tensor)})

    def pin_memory(self, device: Any = None) -> ClipBatch:
        """Tensors in page-locked memory (what `DataLoader(pin_memory=True)` calls)."""
        return self._map(lambda t: t.pin_memory() if t.device.type == "cpu" else t)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> ClipBatch:
        """The video on `device` (the metadata tensors stay where they are: they are small and read on the
        host)."""
        return replace(self, video=self.video.to(device, non_blocking=non_blocking))

    def __getitem__(self, key: str) -> Any:
        # batch["video"] keeps working for code written against the loader's earlier dict batches
        if key not in {f.name for f in fields(self)}:
            raise KeyError(f"ClipBatch has no field {key!r}; fields: {', '.join(f.name for f in fields(self))}")
        return getattr(self, key)
